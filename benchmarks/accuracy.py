"""Accuracy on real speech: speaker cross-validation of kser's configurations, as the README Results table.

Builds the corpus's records once per preprocessing variant, runs ``kser cross-validate`` for each
configuration below that has no finished report yet (a killed run resumes), then writes
OUT/accuracy.json and OUT/accuracy.md (the table rows, with the exact commands). Slow: hours on
2 CPU cores for all rows; not part of CI (`make bench-accuracy`).

    python benchmarks/accuracy.py --data_dir=../shared/data/ravdess16k --work_dir=runs/accuracy [--runs=small,gru]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import write_results  # noqa: E402

# Preprocessing variants of the records: kser's defaults, and the study's exact steps.
RECORDS: dict[str, list[str]] = {
    "kser": [],
    "study": ["--preprocessing=study"],
}


@dataclasses.dataclass(frozen=True)
class Run:
    """One row: an architecture, the records it reads, extra training flags and how many folds run."""

    arch: str
    records: str
    flags: tuple[str, ...] = ()
    max_folds: int | None = None  # None: all folds
    note: str = ""


# Rows of the Results table. The study's architectures are far slower than `small` on a CPU, so
# they run as many folds as a day of 2 cores allows (max_folds), on the same partition.
RUNS: dict[str, Run] = {
    "small": Run("small", "kser", note="the recommended recipe (kser train --arch=small defaults)"),
    "small-stem": Run(
        "small", "kser", ('--model_options={"stem_filters": 16, "pool_sizes": [[2, 2], [1, 2], [1, 2]]}',),
        note="half the compute: a strided stem (EXPERIMENTS.md, E04)",
    ),
    "small-study": Run("small", "study", ("--recipe=study",), note="small under the study's preprocessing and recipe"),
    "lstm_ft-study": Run("lstm_ft", "study", max_folds=1, note="the study's model 3 and its recipe"),
    "gru-study": Run("gru", "study", max_folds=1, note="the study's model 1 and its recipe"),
    "lstm-study": Run("lstm", "study", max_folds=1, note="the study's model 2 and its recipe"),
    "attn_pool-study": Run("attn_pool", "study", max_folds=1, note="model 2's trunk with attention pooling, the study's recipe"),
}


def kser(*args: str) -> list[str]:
    return [sys.executable, "-m", "kser_cli.main", *args]


def run_logged(command: list[str], log: Path) -> None:
    with open(log, "a") as handle:
        handle.write(f"\n$ {shlex.join(command)}\n")
        handle.flush()
        result = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parent.parent)
    if result.returncode != 0:
        raise SystemExit(f"failed ({result.returncode}): {shlex.join(command)}; see {log}")


def ensure_records(args: argparse.Namespace, variant: str) -> Path:
    records = Path(args.work_dir) / f"records-{variant}"
    if not (records / "manifest.json").is_file():
        command = kser(
            "build-records", f"--layout={args.layout}", "--split=none", f"--data_dir={args.data_dir}",
            f"--output_dir={records}", *RECORDS[variant],
        )
        run_logged(command, Path(args.work_dir) / "build.log")
    return records


def cv_args(args: argparse.Namespace, name: str, run: Run, records: Path) -> list[str]:
    extra = [f"--max_folds={run.max_folds}"] if run.max_folds else []
    return [
        "cross-validate", f"--arch={run.arch}", f"--folds={args.folds}", f"--records_dir={records}",
        f"--model_dir={Path(args.work_dir) / name}", *run.flags, *extra,
    ]


def row(args: argparse.Namespace, name: str, run: Run, report: dict) -> dict:
    from kser.cross_validation import format_mean_sd

    fmt = lambda metric: format_mean_sd(report[metric], digits=1, scale=100)  # noqa: E731
    records = Path(args.work_dir) / f"records-{run.records}"
    return {
        "name": name,
        "corpus": Path(args.data_dir).name,
        "protocol": f"speaker CV, {report['folds_run']} of {report['folds']} folds, {report['speakers']} test speakers",
        "arch": run.arch,
        "records": run.records,
        "parameters": report["model"]["parameters"],
        "gflops": report["model"]["gflops_per_clip"],
        "accuracy": fmt("accuracy"),
        "uar": fmt("uar"),
        "macro_f1": fmt("macro_f1"),
        "minutes_per_fold": round(report["seconds_per_fold"]["mean"] / 60, 1),
        "command": "kser " + shlex.join(cv_args(args, name, run, records)),
        "note": run.note,
    }


def markdown(rows: list[dict]) -> str:
    lines = [
        "| corpus | protocol | arch | records | params | GFLOPs | accuracy % | UAR % | macro F1 % | min/fold | command |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['corpus']} | {r['protocol']} | `{r['arch']}` | {r['records']} | {r['parameters']:,} | {r['gflops']} | "
            f"{r['accuracy']} | {r['uar']} | {r['macro_f1']} | {r['minutes_per_fold']} | `{r['command']}` |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "ravdess16k"))
    parser.add_argument("--layout", default="ravdess")
    parser.add_argument("--folds", type=int, default=6)
    parser.add_argument("--work_dir", default="runs/accuracy")
    parser.add_argument("--runs", default=",".join(RUNS), help="comma-separated names from RUNS")
    parser.add_argument("--report_only", action="store_true", help="only collect finished reports into the table")
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    Path(args.work_dir).mkdir(parents=True, exist_ok=True)
    names = [name for name in args.runs.split(",") if name]
    unknown = [name for name in names if name not in RUNS]
    if unknown:
        raise SystemExit(f"unknown run(s) {', '.join(unknown)}; known: {', '.join(RUNS)}")
    rows = []
    for name in names:
        run = RUNS[name]
        report_file = Path(args.work_dir) / name / "cv_report.json"
        if not report_file.is_file() and not args.report_only:
            records = ensure_records(args, run.records)
            started = time.monotonic()
            print(f"{name}: kser {shlex.join(cv_args(args, name, run, records))}", flush=True)
            run_logged(kser(*cv_args(args, name, run, records)), Path(args.work_dir) / f"{name}.log")
            print(f"{name}: done in {(time.monotonic() - started) / 60:.0f} min", flush=True)
        if report_file.is_file():
            rows.append(row(args, name, run, json.loads(report_file.read_text())))
    path = write_results(args.out, "accuracy", {"rows": rows})
    (Path(args.out) / "accuracy.md").write_text(markdown(rows))
    print(markdown(rows))
    print(f"results: {path} and {Path(args.out) / 'accuracy.md'}")


if __name__ == "__main__":
    main()
