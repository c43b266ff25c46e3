"""A cross-validation's finished fold models scored on another corpus (kser.cross_corpus), results to a file.

The same figures as ``kser cross-validate --cross_corpus=DIR``, for a run whose folds are not all
finished, or with ``--speaker_stats=training``; written to benchmarks/results like every benchmark.

    python benchmarks/cross_corpus.py --records_dir=records/urdu runs/cv [--name=urdu] [--out=benchmarks/results]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

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

    from kser.cross_corpus import score_fold_models, summary
    from kser.cross_validation import fold_dir

    run = Path(args.run)
    folds = sorted(finished_folds(run))
    if not folds:
        raise SystemExit(f"{run} has no finished fold")
    result = score_fold_models([fold_dir(run, k) for k in folds], args.records_dir, args.split, args.speaker_stats, log=print)
    result = {"run": str(run), "folds": folds, **result}
    print(summary(run.name, result))
    print(f"written: {write_results(args.out, args.name, result)}")


if __name__ == "__main__":
    main()
