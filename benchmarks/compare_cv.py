"""Compare two speaker cross-validation runs fold by fold (same folds and seeds): paired differences.

Why paired: the folds' difficulty varies more (several points of UAR) than most changes do, so the
mean of the per-fold differences, with its standard error, says more than two means +- sd side by side.

    python benchmarks/compare_cv.py runs/baseline runs/candidate [--metric=uar]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path


def load(model_dir: str) -> dict:
    report = json.loads((Path(model_dir) / "cv_report.json").read_text())
    return {fold["fold"]: fold for fold in report["per_fold"]}


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
    mean = sum(diffs) / len(diffs)
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1)) if len(diffs) > 1 else 0.0
    se = sd / math.sqrt(len(diffs)) if diffs else 0.0
    means = [sum(100 * run[i][args.metric] for i in shared) / len(shared) for run in (base, candidate)]
    print(f"{args.metric}: base {means[0]:.1f}, candidate {means[1]:.1f}; paired difference {mean:+.1f} ± {se:.1f} (se, {len(diffs)} folds)")


if __name__ == "__main__":
    main()
