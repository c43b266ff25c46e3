"""``kser predict --export_dir=DIR FILE...``: emotion of each audio file, with an exported SavedModel.

Prints one line per file (label and class probabilities), with --windows one line per 3 s window,
and the real-time factor (processing / audio seconds, excluding the model load). A file that
cannot be read gets an error line on stderr and the others are still predicted; the exit status
is then 1 (0 when every file was predicted).
"""

from __future__ import annotations

import sys

from absl import flags

from kser_cli.common import reports_errors
from kser.errors import KserError

flags.DEFINE_string("export_dir", None, "Directory written by kser export.", required=True)
flags.DEFINE_boolean("windows", False, "Also print the prediction of every window of each file.")

FLAGS = flags.FLAGS


def format_prediction(prediction, show_windows: bool) -> list[str]:
    """The stdout lines of one predicted file."""
    probabilities = " ".join(f"{name}={p:.3f}" for name, p in prediction.probabilities.items())
    lines = [
        f"{prediction.path}\t{prediction.label}\t{probabilities}\t"
        f"({prediction.audio_seconds:.2f} s, RTF {prediction.rtf:.4f})"
    ]
    if show_windows:
        lines += [f"  {w.start_seconds:8.2f} s\t{w.label}\t{w.probability:.3f}" for w in prediction.windows]
    return lines


@reports_errors(allow_args=True)
def main(argv: list[str]) -> None:
    paths = argv[1:]
    if not paths:
        raise KserError("no audio files given: kser predict --export_dir=DIR FILE...")
    from kser.predict import load_exported, overall_rtf, predict_file

    exported = load_exported(FLAGS.export_dir)
    failed = 0
    results = []
    for path in paths:
        prediction = predict_file(exported, path, windows=FLAGS.windows)
        results.append(prediction)
        if prediction.ok:
            print("\n".join(format_prediction(prediction, FLAGS.windows)), flush=True)
        else:
            failed += 1
            print(f"{argv[0]}: error: {path}: {prediction.error}", file=sys.stderr, flush=True)
    rtf = overall_rtf(results)
    done = [r for r in results if r.ok]
    if rtf is not None:
        audio = sum(r.audio_seconds for r in done)
        seconds = sum(r.processing_seconds for r in done)
        print(f"real-time factor: {rtf:.4f} ({audio:.1f} s of audio in {seconds:.2f} s, {len(done)} file(s), "
              "excluding the model load)")
    if failed:
        print(f"{argv[0]}: {failed} of {len(paths)} file(s) could not be predicted", file=sys.stderr)
        sys.exit(1)
