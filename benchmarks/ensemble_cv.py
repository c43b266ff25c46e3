"""Ensembles of finished cross-validations: per fold, the mean class probabilities of each run's fold model.

Why: averaging models is a generic way to trade inference cost for accuracy, and kser's
cross-validations already keep every fold's model. This scores the average of N runs' fold-k
models on fold k's test speakers (the runs must share the folds), beside each run alone, with the
paired difference against the best single run. Evaluation only: nothing is trained.

    python benchmarks/ensemble_cv.py --records_dir=R runs/e05 runs/e08 [--out=benchmarks/results]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import write_results  # noqa: E402
from benchmarks.compare_cv import finished_folds, paired_difference, standard_error  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="kser cross-validate model directories with the same folds")
    parser.add_argument("--records_dir", required=True)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    if len(args.runs) < 2:
        raise SystemExit("an ensemble needs two or more runs")

    from kser import model_dir as model_files
    from kser.cross_validation import fold_dir, format_mean_sd, mean_sd
    from kser.data import SPLITS, Subset
    from kser.evaluation import metrics_for, predict_split

    runs = [Path(run) for run in args.runs]
    reports = [finished_folds(run) for run in runs]
    shared = sorted(set.intersection(*(set(report) for report in reports)))
    if not shared:
        raise SystemExit("the runs share no finished fold")
    rows = []
    for k in shared:
        speakers = {tuple(report[k]["speakers"]["test"]) for report in reports}
        if len(speakers) != 1:
            raise SystemExit(f"fold {k} tests other speakers in different runs: not the same folds")
        subset = Subset(SPLITS, frozenset(speakers.pop()), name=f"fold {k} test")
        labels, probabilities, names = None, [], None
        for run in runs:
            directory = fold_dir(run, k)
            info = model_files.load_info(directory)
            y_true, member = predict_split(model_files.load_model(directory), info, Path(args.records_dir), subset)
            if labels is not None and (not np.array_equal(labels, y_true) or names != info.label_names):
                raise SystemExit(f"fold {k}: {run} saw other clips or labels than {runs[0]}")
            labels, names = y_true, info.label_names
            probabilities.append(member)
        members = [metrics_for(labels, member, names)["uar"] for member in probabilities]
        ensemble = metrics_for(labels, np.mean(probabilities, axis=0), names)
        rows.append({"fold": k, "members_uar": members, "ensemble_uar": ensemble["uar"], "ensemble_accuracy": ensemble["accuracy"]})
        print(f"fold {k}: members {', '.join(f'{100 * u:.1f}' for u in members)} -> ensemble {100 * ensemble['uar']:.1f}", flush=True)

    member_means = [mean_sd([row["members_uar"][i] for row in rows]) for i in range(len(runs))]
    best = int(np.argmax([m["mean"] for m in member_means]))
    differences = mean_sd([row["ensemble_uar"] - row["members_uar"][best] for row in rows])
    result = {
        "runs": [str(run) for run in runs],
        "folds": shared,
        "per_fold": rows,
        "members_uar": member_means,
        "ensemble_uar": mean_sd([row["ensemble_uar"] for row in rows]),
        "ensemble_accuracy": mean_sd([row["ensemble_accuracy"] for row in rows]),
        "paired_vs_best_member": {"member": str(runs[best]), "mean": differences["mean"], "se": standard_error(differences, len(rows))},
    }
    fmt = lambda value: format_mean_sd(value, digits=1, scale=100)  # noqa: E731
    se = result["paired_vs_best_member"]["se"]
    print(
        f"UAR over {len(rows)} folds: members {', '.join(fmt(m) for m in member_means)}; ensemble {fmt(result['ensemble_uar'])}; "
        f"paired vs {runs[best].name}: {paired_difference(100 * differences['mean'], None if se is None else 100 * se)}"
    )
    print(f"written: {write_results(args.out, 'ensemble_cv', result)}")


if __name__ == "__main__":
    main()
