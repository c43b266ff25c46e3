"""``kser evaluate``: accuracy, UAR, macro F1, per-class report, confusion matrix and training curves
for one split of a records directory, written to MODEL_DIR/eval (or --output_dir)."""

from __future__ import annotations

from typing import Any

from absl import flags

from kser.config import EVAL_BATCH_SIZE, EVAL_SPLIT, SPEAKER_STATS
from kser.errors import KserError
from kser.splits import SPLITS
from kser_cli.common import reports_errors

flags.DEFINE_string("model_dir", None, "A kser train output directory.", required=True)
flags.DEFINE_string("records_dir", None, "Records to evaluate on (kser build-records output).", required=True)
flags.DEFINE_enum("split", EVAL_SPLIT, list(SPLITS), "Which split to score.")
flags.DEFINE_string("output_dir", None, "Where the report goes (default MODEL_DIR/eval).")
flags.DEFINE_integer("batch_size", EVAL_BATCH_SIZE, "Batch size for scoring.")
flags.DEFINE_list("durations", [], "Also score each clip cut to its first seconds of speech, renormalised and padded as kser build-records pads a shorter recording, for these durations in seconds, e.g. 1,1.5,2: duration in report.json.")
flags.DEFINE_list("noise_snr", [], "Also score the clips mixed with white noise and with babble (other speakers' clips) at these SNRs in dB, e.g. 20,10,5,0: robustness in report.json and robustness.png.")

flags.DEFINE_enum("speaker_stats", "speaker", list(SPEAKER_STATS), "A --speaker_norm model: normalise each speaker with the statistics of its own clips in the split, or every clip with the training clips' (what predict and the exports do).")
flags.DEFINE_list("speakers", [], "Score only these speakers of the split, e.g. 03,07,08 (a cross-validation fold's test actors in records built with --split=none).")

FLAGS = flags.FLAGS


def _subset(records_dir: str, split: str, speakers: list[str]) -> Any:
    """``split``, or its clips of ``speakers`` only (a kser.data.Subset); KserError naming a speaker the split lacks."""
    if not speakers:
        return split
    from kser.data import Subset
    from kser.records_info import read_records_info

    present = read_records_info(records_dir).splits[split].speakers
    missing = [speaker for speaker in speakers if speaker not in present]
    if missing:
        raise KserError(f"--speakers {','.join(missing)}: not in the {split} split of {records_dir} (it holds {', '.join(present) or 'no speakers'})")
    return Subset((split,), speakers=frozenset(speakers), name=f"{split} (speakers {' '.join(sorted(speakers))})")


def _numbers(flag: str, what: str) -> list[float]:
    """A list flag's values as numbers; KserError saying what it takes."""
    try:
        return [float(value) for value in FLAGS[flag].value]
    except ValueError:
        raise KserError(f"--{flag} takes {what}; got {','.join(FLAGS[flag].value)}") from None


@reports_errors
def main(argv: list[str]) -> None:
    from kser.evaluation import evaluate, summary_table

    snrs = _numbers("noise_snr", "numbers in dB, e.g. 20,10,5,0")
    durations = _numbers("durations", "seconds, e.g. 1,1.5,2")
    if any(not seconds > 0 for seconds in durations):
        raise KserError(f"--durations must be > 0 s each; got {','.join(FLAGS.durations)}")
    split = _subset(FLAGS.records_dir, FLAGS.split, FLAGS.speakers)
    report = evaluate(FLAGS.model_dir, FLAGS.records_dir, split, FLAGS.output_dir, FLAGS.batch_size, noise_snrs=snrs, speaker_stats=FLAGS.speaker_stats, durations=durations)
    print(summary_table(report))
    figures = "confusion_matrix.png, training_curves.png" + (", robustness.png" if snrs else "")
    print(f"report: {FLAGS.output_dir or FLAGS.model_dir + '/eval'}/report.json (+ classification_report.txt, {figures})")
