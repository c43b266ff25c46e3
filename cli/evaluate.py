"""``kser evaluate``: accuracy, UAR, macro F1, per-class report, confusion matrix and training curves
for one split of a records directory, written to MODEL_DIR/eval (or --output_dir)."""

from __future__ import annotations

from absl import flags

from kser.config import EVAL_BATCH_SIZE, EVAL_SPLIT
from kser.splits import SPLITS
from kser_cli.common import reports_errors

flags.DEFINE_string("model_dir", None, "A kser train output directory.", required=True)
flags.DEFINE_string("records_dir", None, "Records to evaluate on (kser build-records output).", required=True)
flags.DEFINE_enum("split", EVAL_SPLIT, list(SPLITS), "Which split to score.")
flags.DEFINE_string("output_dir", None, "Where the report goes (default MODEL_DIR/eval).")
flags.DEFINE_integer("batch_size", EVAL_BATCH_SIZE, "Batch size for scoring.")

FLAGS = flags.FLAGS


@reports_errors
def main(argv: list[str]) -> None:
    from kser.evaluation import evaluate, summary_table

    report = evaluate(FLAGS.model_dir, FLAGS.records_dir, FLAGS.split, FLAGS.output_dir, FLAGS.batch_size)
    print(summary_table(report))
    print(f"report: {FLAGS.output_dir or FLAGS.model_dir + '/eval'}/report.json (+ classification_report.txt, confusion_matrix.png, training_curves.png)")
