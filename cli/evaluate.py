"""``kser evaluate``: accuracy, UAR, macro F1, per-class report, confusion matrix and training curves
for one split of a records directory, written to MODEL_DIR/eval (or --output_dir)."""

from __future__ import annotations

from absl import flags

from kser.config import EVAL_BATCH_SIZE, EVAL_SPLIT
from kser.errors import KserError
from kser.splits import SPLITS
from kser_cli.common import reports_errors

flags.DEFINE_string("model_dir", None, "A kser train output directory.", required=True)
flags.DEFINE_string("records_dir", None, "Records to evaluate on (kser build-records output).", required=True)
flags.DEFINE_enum("split", EVAL_SPLIT, list(SPLITS), "Which split to score.")
flags.DEFINE_string("output_dir", None, "Where the report goes (default MODEL_DIR/eval).")
flags.DEFINE_integer("batch_size", EVAL_BATCH_SIZE, "Batch size for scoring.")
flags.DEFINE_list("noise_snr", [], "Also score the clips mixed with white noise and with babble (other speakers' clips) at these SNRs in dB, e.g. 20,10,5,0: robustness in report.json and robustness.png.")

FLAGS = flags.FLAGS


@reports_errors
def main(argv: list[str]) -> None:
    from kser.evaluation import evaluate, summary_table

    try:
        snrs = [float(value) for value in FLAGS.noise_snr]
    except ValueError:
        raise KserError(f"--noise_snr takes numbers in dB, e.g. 20,10,5,0; got {','.join(FLAGS.noise_snr)}") from None
    report = evaluate(FLAGS.model_dir, FLAGS.records_dir, FLAGS.split, FLAGS.output_dir, FLAGS.batch_size, noise_snrs=snrs)
    print(summary_table(report))
    figures = "confusion_matrix.png, training_curves.png" + (", robustness.png" if snrs else "")
    print(f"report: {FLAGS.output_dir or FLAGS.model_dir + '/eval'}/report.json (+ classification_report.txt, {figures})")
