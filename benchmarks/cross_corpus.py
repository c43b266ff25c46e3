"""A cross-validation's fold models scored on another corpus: each alone, and their average.

Why: speaker cross-validation measures new speakers of the same corpus; issue 22 asks every
results row for a second, harder figure, another corpus (URDU: another language, recording chain
and four of the six emotions). A cross-validation already keeps one model per fold, each trained
on most of the speakers, so this scores every finished fold model on the other corpus's test-only
records (``kser build-records --split=none``), reports their mean ± sd, and the average of their
class probabilities (one model's worth of answer from the whole cross-validation). Evaluation
only: nothing is trained; UAR averages over the classes the corpus holds, as ``kser evaluate`` does,
and, where the corpus declares fewer emotions than the models know, also with the models choosing
only among its emotions (``kser.evaluation.among_records_labels``).

    python benchmarks/cross_corpus.py --records_dir=records/urdu runs/cv [--name=urdu] [--out=benchmarks/results]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import write_results  # noqa: E402
from benchmarks.compare_cv import finished_folds  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a kser cross-validate model directory")
    parser.add_argument("--records_dir", required=True, help="test-only records of another corpus")
    parser.add_argument("--split", default="test")
    parser.add_argument("--speaker_stats", default="speaker", choices=("speaker", "training"),
                        help="a --speaker_norm run: each speaker's own statistics, or the training clips' (as predict)")
    parser.add_argument("--name", default="cross_corpus")
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()

    from kser import model_dir as model_files
    from kser.cross_validation import fold_dir, format_mean_sd, mean_sd
    from kser.evaluation import among_records_labels, metrics_for, predict_split
    from kser.records_info import read_records_info

    run, records_dir = Path(args.run), Path(args.records_dir)
    records_labels = read_records_info(records_dir).label_names
    folds = sorted(finished_folds(run))
    if not folds:
        raise SystemExit(f"{run} has no finished fold")
    labels, names, probabilities, rows = None, None, [], []
    for k in folds:
        directory = fold_dir(run, k)
        info = model_files.load_info(directory)
        y_true, member = predict_split(model_files.load_model(directory), info, records_dir, args.split, speaker_stats=args.speaker_stats)
        if labels is not None and (not np.array_equal(labels, y_true) or names != info.label_names):
            raise SystemExit(f"fold {k} saw other clips or labels than fold {folds[0]}")
        labels, names = y_true, info.label_names
        probabilities.append(member)
        metrics = metrics_for(y_true, member, names)
        among = among_records_labels(y_true, member, names, records_labels)
        rows.append({"fold": k, "uar": metrics["uar"], "accuracy": metrics["accuracy"], "among_records_labels_uar": among and among["uar"]})
        among_text = f"; among the records' labels: UAR {100 * among['uar']:.1f}" if among else ""
        print(f"fold {k}: UAR {100 * metrics['uar']:.1f}  accuracy {100 * metrics['accuracy']:.1f}{among_text}", flush=True)
    averaged = metrics_for(labels, np.mean(probabilities, axis=0), names)
    averaged_among = among_records_labels(labels, np.mean(probabilities, axis=0), names, records_labels)
    result = {
        "run": str(run),
        "records_dir": str(records_dir),
        "speaker_stats": args.speaker_stats,
        "folds": folds,
        "clips": int(labels.size),
        "classes_present": averaged["classes_present"],
        "per_fold": rows,
        "fold_models_uar": mean_sd([row["uar"] for row in rows]),
        "averaged_models": {"uar": averaged["uar"], "accuracy": averaged["accuracy"],
                            "recall": {name: averaged["per_class"][name]["recall"] for name in averaged["classes_present"]}},
    }
    if averaged_among is not None:  # the records declare fewer emotions than the models know
        result["among_records_labels"] = {
            "labels": averaged_among["labels"],
            "fold_models_uar": mean_sd([row["among_records_labels_uar"] for row in rows]),
            "averaged_models": averaged_among,
        }
    print(
        f"{run.name} on {records_dir.name} ({labels.size} clips, {len(folds)} fold models): "
        f"UAR {format_mean_sd(result['fold_models_uar'], digits=1, scale=100)} per model; "
        f"their average {100 * averaged['uar']:.1f}"
    )
    if averaged_among is not None:
        print(
            f"choosing only among the records' labels ({' '.join(averaged_among['labels'])}): UAR "
            f"{format_mean_sd(result['among_records_labels']['fold_models_uar'], digits=1, scale=100)} per model; "
            f"their average {100 * averaged_among['uar']:.1f}"
        )
    print(f"written: {write_results(args.out, args.name, result)}")


if __name__ == "__main__":
    main()
