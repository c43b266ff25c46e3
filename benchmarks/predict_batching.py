"""Benchmark: does sending several equal-length files to an export in one call beat one call each?

An export of full-size `small` (untrained: speed does not depend on the weights) scores N clips of
the same length either one row per call, as `kser predict` does, or B rows per call. Timing is the
median of --repeats passes after one warm-up call each; ratios compare to one row per call in the
same process, so the machine's load affects both sides alike.

    python benchmarks/predict_batching.py --out=benchmarks/results [--files=16 --seconds=3.5 --repeats=3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from benchmarks.common import table, write_results  # noqa: E402
from kser.config import AudioConfig, FeatureConfig  # noqa: E402
from kser.model_dir import ModelInfo  # noqa: E402
from kser.quiet import tensorflow  # noqa: E402

LABELS = ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--files", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=3.5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    tf = tensorflow()
    from kser import models
    from kser.audio_frontend import front_end_for, waveform_classifier
    from kser.export import export_model
    from kser.predict import load_exported

    info = ModelInfo(arch="small", label_names=LABELS, audio=AudioConfig(), features=FeatureConfig())
    model = waveform_classifier(front_end_for(info.audio, info.features), models.build("small", num_classes=len(LABELS)))
    rng = np.random.default_rng(0)
    clips = rng.standard_normal((args.files, int(args.seconds * info.audio.sample_rate))).astype(np.float32) * 0.1
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        exported = load_exported(export_model(model, info, Path(tmp) / "export"))
        for batch in (1, 4, args.files):
            def one_pass() -> float:
                started = time.perf_counter()
                for start in range(0, args.files, batch):
                    exported.serving(waveform=tf.constant(clips[start : start + batch]))["probabilities"].numpy()
                return time.perf_counter() - started

            one_pass()  # traces this batch shape
            seconds = statistics.median(one_pass() for _ in range(args.repeats))
            rows.append({"rows_per_call": batch, "seconds": round(seconds, 3), "ms_per_file": round(1000 * seconds / args.files, 1)})
    base = rows[0]["seconds"]
    for row in rows:
        row["ratio_vs_one_per_call"] = round(row["seconds"] / base, 3)
    print(table(rows, ["rows_per_call", "seconds", "ms_per_file", "ratio_vs_one_per_call"]))
    path = write_results(args.out, "predict_batching", {"files": args.files, "seconds_per_file": args.seconds, "rows": rows})
    print(f"results: {path}")


if __name__ == "__main__":
    main()
