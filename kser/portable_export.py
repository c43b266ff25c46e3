"""The waveform -> probabilities model in ops that LiteRT and ONNX runtimes have, and its export.

Why a second inference graph beside the SavedModel's (kser.export): LiteRT (``ai_edge_litert``)
and ONNX Runtime run without TensorFlow, but only on builtin ops, so this graph keeps to those::

    waveform [batch, clip_samples] float32
      -> WaveformNormalization (per row zero mean, unit variance; silent rows become zeros)
      -> LogMelDeltas(dft="matmul") (the power spectrum as matmuls: the complex tensors of
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
from keras import ops

from kser.config import FeatureConfig
from kser.export_formats import INPUT_NAME, LITERT, LITERT_BATCH, ONNX, OUTPUT_NAME, PORTABLE_FILES, portable
from kser.features import LogMelDeltas


@keras.saving.register_keras_serializable(package="kser")
class WaveformNormalization(keras.layers.Layer):
    """Per row: zero mean and unit variance, or all zeros where the std is below ``silence_std``.

    The float32 ``keras.ops`` form of ``kser.waveform.normalize`` (which computes in float64), as
    runtimes without float64 need: on clip-long rows the two agree to about 1e-6.
    """

    def __init__(self, silence_std: float = 1e-6, **kwargs: Any) -> None:
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.silence_std = float(silence_std)

    def call(self, waveforms: Any) -> Any:
        x = ops.cast(waveforms, "float32")
        centred = x - ops.mean(x, axis=-1, keepdims=True)
        std = ops.sqrt(ops.mean(ops.square(centred), axis=-1, keepdims=True))
        scale = ops.where(std < self.silence_std, 0.0, 1.0 / ops.maximum(std, self.silence_std))
        return centred * scale

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "silence_std": self.silence_std}


def waveform_model(
    classifier: keras.Model,
    features: FeatureConfig,
    clip_samples: int,
    silence_std: float | None,
    batch_size: int | None = None,
) -> keras.Model:
    """``classifier`` (features -> probabilities) behind the portable waveform front end.

    ``silence_std``: the records' normalisation threshold, or None where the training clips
    were not normalised. ``batch_size``: static for LiteRT (see the module docstring).
    """
    waveform = keras.Input((clip_samples,), batch_size=batch_size, name="waveform")
    x = waveform
    if silence_std is not None:
        x = WaveformNormalization(silence_std, name="normalize")(x)
    x = LogMelDeltas(features, dft="matmul", name="log_mel_deltas")(x)
    return keras.Model(waveform, classifier(x, training=False), name="kser_waveform")


def _signature(model: keras.Model) -> list[Any]:
    import tensorflow as tf

    return [tf.TensorSpec(model.input.shape, "float32", name=INPUT_NAME)]


def _named(model: keras.Model) -> keras.Model:
    """``model`` with its output named ``probabilities``: both converters name a dict output by its
    key (else ``output_0`` / ``Identity:0``), so the artefacts' contract can name it."""
    return keras.Model(model.input, {OUTPUT_NAME: model.output}, name=model.name)


def export_litert(model: keras.Model, path: str | Path) -> Path:
    """``model`` as a LiteRT flatbuffer of builtin ops only (conversion fails on anything else).

    ``model``'s input needs a static batch size (``waveform_model(..., batch_size=1)``).
    """
    import tensorflow as tf

    if model.input.shape[0] is None:
        raise ValueError("LiteRT export needs a static batch size: build with batch_size=...")
    _named(model).export(
        str(path),
        format="litert",
        input_signature=_signature(model),
        verbose=False,
        target_spec={"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]},
    )
    return Path(path)


def export_onnx(model: keras.Model, path: str | Path) -> Path:
    """``model`` as an ONNX graph of standard ops (tf2onnx under Keras's TensorFlow backend)."""
    _named(model).export(str(path), format="onnx", input_signature=_signature(model), verbose=False)
    return Path(path)


def write_portable(
    classifier: keras.Model,
    features: FeatureConfig,
    clip_samples: int,
    silence_std: float | None,
    folder: Path,
    formats: tuple[str, ...],
) -> list[Path]:
    """The fixed-window artefacts of ``formats`` (litert, onnx; others are skipped) written into
    ``folder`` under their kser.export_formats names, the converters' chatter kept off the terminal."""
    from kser.quiet import silenced_stderr

    writers = {LITERT: (export_litert, LITERT_BATCH), ONNX: (export_onnx, None)}
    written = []
    for name in portable(formats):
        write, batch_size = writers[name]
        model = waveform_model(classifier, features, clip_samples, silence_std, batch_size=batch_size)
        with silenced_stderr():  # the converters' native logs and deprecation warnings
            written.append(write(model, folder / PORTABLE_FILES[name]))
    return written
