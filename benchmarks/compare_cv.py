"""Compare two speaker cross-validation runs fold by fold (same folds and seeds): paired differences.

Why paired: the folds' difficulty varies more (several points of UAR) than most changes do, so the
mean of the per-fold differences, with its standard error, says more than two means +- sd side by side.

    python benchmarks/compare_cv.py runs/baseline runs/candidate [--metric=uar]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kser.cross_validation import mean_sd  # noqa: E402  (the report's own mean and sample sd)


def load(model_dir: str) -> dict:
    """Finished folds by index, from each fold's ``cv_fold.json`` (so a run still going can be compared)."""
    folds = [json.loads(path.read_text()) for path in sorted(Path(model_dir).glob("fold-*/cv_fold.json"))]
    if not folds:
        raise SystemExit(f"{model_dir}: no finished fold (fold-*/cv_fold.json)")
    return {fold["fold"]: fold for fold in folds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base")
    parser.add_argument("candidate")
    parser.add_argument("--metric", default="uar", choices=["uar", "accuracy", "macro_f1"])
    args = parser.parse_args()
    base, candidate = load(args.base), load(args.candidate)
    shared = sorted(set(base) & set(candidate))
    for index in shared:
        if base[index]["speakers"]["test"] != candidate[index]["speakers"]["test"]:
            raise SystemExit(f"fold {index} tests other speakers in the two runs: not the same folds")
    print(f"{'fold':>4} {'test speakers':<12}{'base':>8}{'candidate':>11}{'diff':>8}")
    diffs = []
    for index in shared:
        a, b = 100 * base[index][args.metric], 100 * candidate[index][args.metric]
        diffs.append(b - a)
        print(f"{index:>4} {' '.join(base[index]['speakers']['test']):<12}{a:>8.1f}{b:>11.1f}{b - a:>+8.1f}")
    if not diffs:
        raise SystemExit("the two runs share no finished fold")
    paired = mean_sd(diffs)
    mean, se = paired["mean"], paired["sd"] / math.sqrt(len(diffs))
    summaries = ["{mean:.1f} ± {sd:.1f}".format(**mean_sd([100 * run[i][args.metric] for i in shared])) for run in (base, candidate)]
    print(
        f"{args.metric} over {len(diffs)} shared folds (mean ± sd): base {summaries[0]}, candidate {summaries[1]}; "
        f"paired difference {mean:+.1f} ± {se:.1f} (se)"
    )


if __name__ == "__main__":
    main()
