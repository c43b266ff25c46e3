"""Compare two speaker cross-validation runs fold by fold (same folds and seeds): paired differences.

Why paired: the folds' difficulty varies more (several points of UAR) than most changes do, so the
mean of the per-fold differences, with its standard error, says more than two means +- sd side by side.

A run is a ``kser cross-validate`` model directory, or runs of the retired GPU script
``benchmarks/accelerator_cv.py`` (its results files in ``benchmarks/measured/``) as
``RESULTS.jsonl:RUN[,RUN@seed+N...]``; several runs on a side (the same runs with other seeds) are
paired in order, fold by fold.

    python benchmarks/compare_cv.py runs/baseline runs/candidate [--metric=uar]
    python benchmarks/compare_cv.py R.jsonl:small,small@seed+100 R.jsonl:small-novalidate,small-novalidate@seed+100
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kser.cross_validation import format_mean_sd, mean_sd  # noqa: E402  (the report's own mean and sample sd)


def read_results(path: Path) -> list[dict]:
    """An accelerator_cv results file's jobs, the last one of each (run, fold, seed) winning (a rerun
    replaced a failure)."""
    latest: dict[tuple[str, int, int], dict] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            result = json.loads(line)
            latest[(result["run"], result["fold"], result["seed"])] = result
    return list(latest.values())


def run_key(result: dict, fold_seed: int) -> str:
    """``run`` for the default seeds (fold_seed + fold), ``run@seed+N`` for a repeat with offset N."""
    offset = result["seed"] - fold_seed - result["fold"]
    return result["run"] if offset == 0 else f"{result['run']}@seed+{offset}"


def load(spec: str, fold_seed: int = 0) -> dict[tuple[int, int], dict]:
    """Finished folds keyed by (fold, position of the run in ``spec``), each with its metrics and
    test speakers; from each fold's ``cv_fold.json`` (so a run still going can be compared) or from
    an accelerator_cv results file."""
    path, _, names = spec.partition(".jsonl:")
    if names:
        results = read_results(Path(path + ".jsonl"))
        folds = {}
        for position, name in enumerate(names.split(",")):
            found = [r for r in results if "uar" in r and run_key(r, fold_seed) == name]
            if not found:
                raise SystemExit(f"{path}.jsonl: no finished fold of {name!r}")
            folds.update({(r["fold"], position): {**r, "speakers": {"test": r["test_speakers"]}} for r in found})
        return folds
    folds = finished_folds(Path(spec))
    if not folds:
        raise SystemExit(f"{spec}: no finished fold (fold-*/cv_fold.json)")
    return {(index, 0): fold for index, fold in folds.items()}


def finished_folds(model_dir: Path) -> dict[int, dict]:
    """A ``kser cross-validate`` directory's finished folds (``fold-k/cv_fold.json``) by index."""
    reports = [json.loads(path.read_text()) for path in sorted(model_dir.glob("fold-*/cv_fold.json"))]
    return {report["fold"]: report for report in reports}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base")
    parser.add_argument("candidate")
    parser.add_argument("--metric", default="uar", choices=["uar", "accuracy", "macro_f1"])
    parser.add_argument("--fold_seed", type=int, default=0, help="accelerator_cv's --fold_seed (names runs with other seeds)")
    args = parser.parse_args()
    base, candidate = load(args.base, args.fold_seed), load(args.candidate, args.fold_seed)
    shared = sorted(set(base) & set(candidate))
    for index in shared:
        if base[index]["speakers"]["test"] != candidate[index]["speakers"]["test"]:
            raise SystemExit(f"fold {index[0]} tests other speakers in the two runs: not the same folds")
    print(f"{'fold':>6} {'test speakers':<12}{'base':>8}{'candidate':>11}{'diff':>8}")
    diffs = []
    for index in shared:
        a, b = 100 * base[index][args.metric], 100 * candidate[index][args.metric]
        diffs.append(b - a)
        label = f"{index[0]}" if index[1] == 0 else f"{index[0]}/{index[1]}"
        print(f"{label:>6} {' '.join(base[index]['speakers']['test']):<12}{a:>8.1f}{b:>11.1f}{b - a:>+8.1f}")
    if not diffs:
        raise SystemExit("the two runs share no finished fold")
    paired = mean_sd(diffs)
    summaries = [format_mean_sd(mean_sd([100 * run[i][args.metric] for i in shared]), digits=1) for run in (base, candidate)]
    print(
        f"{args.metric} over {len(diffs)} shared folds (mean ± sd): base {summaries[0]}, candidate {summaries[1]}; "
        f"paired difference {paired_difference(paired['mean'], standard_error(paired, len(diffs)))}"
    )


def standard_error(summary: dict[str, float | None], count: int) -> float | None:
    """The standard error of a :func:`mean_sd` mean over ``count`` values; None for one value."""
    return None if summary["sd"] is None else summary["sd"] / math.sqrt(count)


def paired_difference(mean: float, se: float | None) -> str:
    """``+1.2 ± 0.3 (se)``; with one fold there is no spread to give, and the text says so."""
    return f"{mean:+.1f} (one fold: no se)" if se is None else f"{mean:+.1f} ± {se:.1f} (se)"


if __name__ == "__main__":
    main()
