"""``kser export``: a trained model directory -> TensorFlow SavedModel (raw 16 kHz waveform in, emotion out),
and on request (--format) the fixed-window ``model.tflite`` / ``model.onnx`` beside it.

The SavedModel holds normalisation, windowing, log-mel features and the classifier, so serving it
needs only TensorFlow. Signatures: serving_default (waveform -> probabilities, label) and windows
(per-window probabilities, labels and start times). The LiteRT and ONNX files score one clip-long
window per row (normalisation and features inside); windowing and trimming stay with the caller.
"""

from __future__ import annotations

import sys
from pathlib import Path

from absl import flags

from kser.config import WINDOW_HOP_SECONDS
from kser.export_formats import DEFAULT_FORMATS, EXPORT_FORMATS, QUANTIZATIONS
from kser_cli.common import reports_errors

flags.DEFINE_string("model_dir", None, "Training run directory holding model.keras and kser_model.json.", required=True)
flags.DEFINE_string("export_dir", None, "Where the export goes (must be new or empty unless --overwrite).", required=True)
flags.DEFINE_boolean("overwrite", False, "Replace an existing export in --export_dir.")
flags.DEFINE_float("window_hop_seconds", WINDOW_HOP_SECONDS, "Hop between the 3 s windows that score recordings longer than one clip.")
flags.DEFINE_string(
    "format", ",".join(DEFAULT_FORMATS),
    f"What to write, a comma list of {', '.join(EXPORT_FORMATS)}: the SavedModel (any length; kser predict uses it), "
    "model.tflite (LiteRT) and model.onnx (one clip-long window per row, runnable without TensorFlow).",
)

flags.DEFINE_enum(
    "quantize", "none", list(QUANTIZATIONS),
    "Post-training quantisation of model.tflite: float16 weights (half the size, the same UAR). Needs litert in --format.",
)

FLAGS = flags.FLAGS


def _shape(tensor: dict) -> str:
    """``[N, 48000]``: an unknown batch is N, an unknown length after it "samples"."""
    names = ("N",) + ("samples",) * (len(tensor["shape"]) - 1)
    return "[" + ", ".join(name if size is None else str(size) for name, size in zip(names, tensor["shape"])) + "]"


def _summary(export_dir: Path, metadata: dict) -> list[str]:
    """The lines printed after an export: one per artefact, with its input and output."""
    lines = [f"  labels: {' '.join(metadata['label_names'])}"]
    for artefact in metadata["artefacts"]:
        source, target = artefact["input"], artefact["output"]
        lines.append(
            f"  {artefact['format']}: {export_dir / artefact['file']}: {source['dtype']} {source['name']} {_shape(source)} "
            f"at {metadata['sample_rate']} Hz -> {target['name']} {_shape(target)}; windowing: {artefact['windowing']}"
        )
    if "signatures" in metadata:
        lines.append(f"  SavedModel signatures: {', '.join(metadata['signatures'])}")
    return lines


@reports_errors(writes_to="export_dir")
def main(argv: list[str]) -> None:
    from kser.export_formats import check_quantize, parse_formats, trim_warning

    formats = parse_formats(FLAGS.format)  # before any slow work
    check_quantize(formats, FLAGS.quantize)
    from kser.export import EXPORT_INFO_FILE, export_saved_model
    from kser.export_info import read_export_info
    from kser.model_dir import load_info

    export_dir = export_saved_model(
        FLAGS.model_dir, FLAGS.export_dir, window_hop_seconds=FLAGS.window_hop_seconds, overwrite=FLAGS.overwrite,
        formats=formats, quantize=FLAGS.quantize,
    )
    info = load_info(FLAGS.model_dir)
    warning = trim_warning(formats, info.audio.trim_db)
    if warning:
        print(f"{argv[0]}: warning: {warning}", file=sys.stderr)
    print(f"exported {FLAGS.model_dir} ({info.arch}) -> {export_dir}")
    print("\n".join(_summary(export_dir, read_export_info(export_dir / EXPORT_INFO_FILE))))
    print(f"  details: {export_dir / EXPORT_INFO_FILE}")
