"""The waveform -> probabilities model in ops that LiteRT and ONNX runtimes have, and its export.

Why a second inference graph beside the SavedModel's (kser.export): LiteRT (``ai_edge_litert``)
and ONNX Runtime run without TensorFlow, but only on builtin ops, so this graph keeps to those::

    waveform [batch, clip_samples] float32
      -> the trained model's AudioFrontEnd (kser.audio_frontend: per-row normalisation and
         features) with dft="matmul" (the power spectrum as matmuls: the complex tensors of
         ``rfft`` do not convert to ONNX)
      -> the trained classifier -> probabilities [batch, classes]

It scores one clip-long window per row: trimming silence and sliding windows over longer
recordings (the SavedModel's ``score_rows``) use ragged tensors and loops over rows, which stay
with the caller. Both formats come from Keras's own ``model.export``, with the input named
``waveform`` and the output ``probabilities`` (kser.export_formats gives the contract):

* LiteRT: builtin ops only (Keras's exporter allows Flex ops, which need TensorFlow at run
  time, unless told otherwise), and a static batch size, since the recurrent layers' loops
  only lower to builtins when every tensor shape is known;
* ONNX: through tf2onnx, with a dynamic batch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras

from kser.audio_frontend import with_dft
from kser.export_formats import INPUT_NAME, LITERT, LITERT_BATCH, OUTPUT_NAME, PORTABLE_FILES, QUANTIZATIONS, portable


def portable_model(model: keras.Model, batch_size: int | None = None) -> keras.Model:
    """``model`` (a waveform classifier) with the portable DFT, and a static batch where given."""
    return with_dft(model, "matmul", batch_size=batch_size)


def _signature(model: keras.Model) -> list[Any]:
    import tensorflow as tf

    return [tf.TensorSpec(model.input.shape, "float32", name=INPUT_NAME)]


def _named(model: keras.Model) -> keras.Model:
    """``model`` with its output named ``probabilities``: both converters name a dict output by its
    key (else ``output_0`` / ``Identity:0``), so the artefacts' contract can name it."""
    return keras.Model(model.input, {OUTPUT_NAME: model.output}, name=model.name)


def export_litert(model: keras.Model, path: str | Path, quantize: str = "none") -> Path:
    """``model`` as a LiteRT flatbuffer of builtin ops only (conversion fails on anything else).

    ``model``'s input needs a static batch size (``portable_model(..., batch_size=1)``).
    ``quantize`` (kser.export_formats.QUANTIZATIONS): "float16" weights, post-training.
    """
    import tensorflow as tf

    if model.input.shape[0] is None:
        raise ValueError("LiteRT export needs a static batch size: build with batch_size=...")
    target_spec: dict[str, Any] = {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]}
    options: dict[str, Any] = {}
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize must be one of {QUANTIZATIONS}, got {quantize!r}")
    if quantize == "float16":
        options["optimizations"] = [tf.lite.Optimize.DEFAULT]
        target_spec["supported_types"] = [tf.float16]
    _named(model).export(
        str(path),
        format="litert",
        input_signature=_signature(model),
        verbose=False,
        target_spec=target_spec,
        **options,
    )
    return Path(path)


def _convert_erfc_to_onnx() -> None:
    """Teach tf2onnx TensorFlow's Erfc, as ``1 - Erf(x)`` (ONNX has Erf, no Erfc).

    Why: the exact GELU (``tf.nn.gelu(approximate=False)``, Whisper's activation) is written with
    Erfc, which tf2onnx 1.17 has no handler for. Registered once, only where none exists."""
    import numpy as np
    from tf2onnx import utils
    from tf2onnx.handler import tf_op

    if any("Erfc" in handlers for handlers in tf_op.get_opsets().get("", [])):
        return

    class Erfc:
        @classmethod
        def version_9(cls, ctx: Any, node: Any, **kwargs: Any) -> None:
            source, output, name = node.input[0], node.output[0], node.name
            shapes, dtypes = node.output_shapes, node.output_dtypes
            dtype = utils.map_onnx_to_numpy_type(ctx.get_dtype(source))
            one = ctx.make_const(utils.make_name("erfc_one"), np.array(1.0, dtype=dtype))
            ctx.remove_node(name)
            erf = ctx.make_node("Erf", [source], op_name_scope=name, name="erf")
            ctx.make_node("Sub", [one.output[0], erf.output[0]], outputs=[output], name=name, shapes=shapes, dtypes=dtypes)

    tf_op("Erfc")(Erfc)


def export_onnx(model: keras.Model, path: str | Path) -> Path:
    """``model`` as an ONNX graph of standard ops (tf2onnx under Keras's TensorFlow backend)."""
    _convert_erfc_to_onnx()
    _named(model).export(str(path), format="onnx", input_signature=_signature(model), verbose=False)
    return Path(path)


def write_portable(model: keras.Model, folder: Path, formats: tuple[str, ...], quantize: str = "none") -> list[Path]:
    """The fixed-window artefacts of ``formats`` (litert, onnx; others are skipped) of ``model``
    (a waveform classifier) written into ``folder`` under their kser.export_formats names, the
    converters' chatter kept off the terminal; ``quantize`` applies to model.tflite."""
    from kser.quiet import silenced_stderr

    written = []
    for name in portable(formats):
        path = folder / PORTABLE_FILES[name]
        with silenced_stderr():  # the converters' native logs and deprecation warnings
            if name == LITERT:
                written.append(export_litert(portable_model(model, batch_size=LITERT_BATCH), path, quantize))
            else:
                written.append(export_onnx(portable_model(model), path))
    return written
