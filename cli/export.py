"""``kser export``: a trained model directory -> TensorFlow SavedModel (raw 16 kHz waveform in, emotion out).

The SavedModel holds normalisation, windowing, log-mel features and the classifier, so serving it
needs only TensorFlow. Signatures: serving_default (waveform -> probabilities, label) and windows
(per-window probabilities, labels and start times).
"""

from __future__ import annotations

from absl import flags

from kser.config import WINDOW_HOP_SECONDS
from kser_cli.common import reports_errors

flags.DEFINE_string("model_dir", None, "Training run directory holding model.keras and kser_model.json.", required=True)
flags.DEFINE_string("export_dir", None, "Where the SavedModel goes (must be new or empty unless --overwrite).", required=True)
flags.DEFINE_boolean("overwrite", False, "Replace an existing export in --export_dir.")
flags.DEFINE_float("window_hop_seconds", WINDOW_HOP_SECONDS, "Hop between the 3 s windows that score recordings longer than one clip.")

FLAGS = flags.FLAGS


@reports_errors(writes_to="export_dir")
def main(argv: list[str]) -> None:
    from kser.export import EXPORT_INFO_FILE, export_saved_model
    from kser.model_dir import load_info

    export_dir = export_saved_model(
        FLAGS.model_dir, FLAGS.export_dir, window_hop_seconds=FLAGS.window_hop_seconds, overwrite=FLAGS.overwrite
    )
    info = load_info(FLAGS.model_dir)
    print(f"exported {FLAGS.model_dir} ({info.arch}) -> {export_dir}")
    print(f"  labels: {' '.join(info.label_names)}")
    print(f"  input: float32 waveform [batch, samples] at {info.audio.sample_rate} Hz, any length; "
          f"{info.audio.clip_seconds:g} s windows every {FLAGS.window_hop_seconds:g} s")
    print(f"  signatures: serving_default, windows, kser_constants; details in {export_dir / EXPORT_INFO_FILE}")
