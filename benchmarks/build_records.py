"""Benchmark `kser build-records`: clips/s with one worker (the baseline) and with all cores.

Runs on the synthetic demo generator's speech-like clips (16 kHz WAV, 1.5-3 s, like CREMA-D),
each configuration on a fresh output directory, best of --repeats. Writes
OUT/build_records.json and prints a table.

    python benchmarks/build_records.py --out=benchmarks/results [--actors=24 --sentences=4]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import table, write_results  # noqa: E402
from kser.config import BuildConfig  # noqa: E402
from kser.demo_data import generate_demo_dataset  # noqa: E402
from kser_tfrecords_builder import build_records  # noqa: E402


def time_build(data_dir: Path, workers: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as out:
            config = BuildConfig(data_dir=str(data_dir), output_dir=out, workers=workers)
            started = time.perf_counter()
            result = build_records(config, progress_stream=open(os.devnull, "w"))
            best = min(best, time.perf_counter() - started)
    return result.manifest["total_clips"] / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--actors", type=int, default=24)
    parser.add_argument("--sentences", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--source_rate", type=int, default=16_000, help="rate of the generated files (44100: resampling on)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "audio"
        summary = generate_demo_dataset(data, actors=args.actors, sentences=args.sentences, sample_rate=args.source_rate)
        cores = os.cpu_count() or 1
        time_build(data, 1, 1)  # warm-up: imports TensorFlow, fills the page cache
        baseline = time_build(data, 1, args.repeats)
        parallel = time_build(data, 0, args.repeats)
    rows = [
        {"config": "1 worker (baseline)", "clips_per_s": f"{baseline:.1f}", "ratio": "1.00"},
        {"config": f"{cores} workers (default)", "clips_per_s": f"{parallel:.1f}", "ratio": f"{parallel / baseline:.2f}"},
    ]
    path = write_results(
        args.out,
        f"build_records_{args.source_rate}",
        {"clips": summary.num_files, "source_rate": args.source_rate, "clips_per_second": {"one_worker": baseline, "all_cores": parallel}, "speedup": parallel / baseline},
    )
    print(table(rows, ["config", "clips_per_s", "ratio"]))
    print(f"{summary.num_files} clips at {args.source_rate} Hz; results in {path}")


if __name__ == "__main__":
    main()
