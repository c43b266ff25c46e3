"""``kser predict --export_dir=DIR [--runtime=tf|litert|onnx] PATH...``: emotion of audio files, with an export.

--runtime picks the artefact: ``tf`` the SavedModel (the default where the export holds one),
``litert`` model.tflite, ``onnx`` model.onnx; the host cuts the windows for the last two, and
every runtime gives the same output formats.

Each PATH is an audio file or a folder, searched recursively for audio files. --format picks the
output (tsv, csv, json or jsonl; see kser.prediction_output), written to stdout or, with --output,
atomically to a file. Per-file errors, warnings (clips too short or silent to mean much) and the
real-time factor (processing / audio seconds, excluding the model load) go to stderr. A file that
cannot be read is still listed, with its error, and the others are predicted; the exit status is
then 1 (0 when every file was predicted).
"""

from __future__ import annotations

import sys
from pathlib import Path

from absl import flags

from kser.output_dirs import check_writable
from kser.predict import RUNTIMES
from kser.prediction_output import FORMATS
from kser_cli.common import reports_errors
from kser.errors import KserError

flags.DEFINE_string("export_dir", None, "Directory written by kser export.", required=True)
flags.DEFINE_boolean("windows", False, "Also give the prediction of every window of each file.")
flags.DEFINE_enum("format", FORMATS[0], list(FORMATS), "Output format.")
flags.DEFINE_string("output", None, "Write the output to this file (atomically) instead of stdout.")
flags.DEFINE_enum(
    "runtime", None, list(RUNTIMES),
    "What runs the model: tf (the SavedModel), litert (model.tflite) or onnx (model.onnx). "
    "Default: tf when the export holds a SavedModel, else the artefact it holds.",
)

flags.DEFINE_list("labels", [], "Choose only among these of the model's labels, e.g. ANG,HAP,NEU,SAD (their probabilities renormalised); default: all.")

FLAGS = flags.FLAGS


def _check_output(path: str | None, inputs: list[tuple[str, str | None]]) -> None:
    """Refuse an unusable --output, or one that is an input, before the model is loaded."""
    if path is None:
        return
    target = Path(path)
    if target.is_dir():
        raise KserError(f"--output {target} is a folder; give a file name")
    if not target.parent.is_dir():
        raise KserError(f"--output {target}: folder {target.parent} does not exist")
    from kser.predict import input_at

    replaced = input_at(target, inputs)
    if replaced is not None:
        raise KserError(f"--output {target} is the input {replaced}: writing the predictions would replace it; choose another file")
    check_writable(target.parent, "the folder of --output")  # not only after every file is predicted


@reports_errors(allow_args=True)
def main(argv: list[str]) -> None:
    paths = argv[1:]
    if not paths:
        raise KserError("no audio files or folders given: kser predict --export_dir=DIR PATH...")
    from kser.atomic import write_text
    from kser.predict import FilePrediction, find_inputs, load_exported, predict_file, restricted_to
    from kser.prediction_output import PredictionWriter, summary

    inputs = find_inputs(paths)
    _check_output(FLAGS.output, inputs)
    exported = load_exported(FLAGS.export_dir, runtime=FLAGS.runtime)
    if FLAGS.labels:
        exported = restricted_to(exported, FLAGS.labels)
    writer = PredictionWriter(FLAGS.format, exported.label_names, FLAGS.windows)
    to_stdout = FLAGS.output is None and writer.streams
    if to_stdout:
        sys.stdout.write(writer.header())
    results = []
    for path, problem in inputs:
        prediction = FilePrediction(path=path, error=problem) if problem else predict_file(exported, path, windows=FLAGS.windows)
        results.append(prediction)
        if not prediction.ok:
            print(f"{argv[0]}: error: {path}: {prediction.error}", file=sys.stderr, flush=True)
        for warning in prediction.warnings:
            print(f"{argv[0]}: warning: {path}: {warning}", file=sys.stderr, flush=True)
        if to_stdout:
            sys.stdout.write(writer.file_text(prediction))
            sys.stdout.flush()
    if FLAGS.output is not None:
        write_text(FLAGS.output, writer.document(results))
    elif not writer.streams:
        sys.stdout.write(writer.document(results))
    totals = summary(results)
    if totals["real_time_factor"] is not None:
        print(
            f"real-time factor: {totals['real_time_factor']:.4f} ({totals['audio_seconds']:.1f} s of audio in "
            f"{totals['processing_seconds']:.2f} s, {totals['predicted']} file(s), excluding the model load)",
            file=sys.stderr,
        )
    if totals["with_warnings"]:
        print(f"{argv[0]}: {totals['with_warnings']} file(s) predicted with warnings", file=sys.stderr)
    if totals["failed"]:
        print(f"{argv[0]}: {totals['failed']} of {totals['files']} file(s) could not be predicted", file=sys.stderr)
        sys.exit(1)
    if FLAGS.output is not None:
        print(f"predictions: {FLAGS.output} ({FLAGS.format})", file=sys.stderr)
