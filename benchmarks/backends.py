"""Benchmark kser's own training path on each Keras backend: `small`'s training step and an epoch.

Each backend runs in its own process (Keras picks its backend once per process), through the
same code as `kser train` with features in the model: kser.inputs (tf.data where TensorFlow is
installed, else the PyDataset), kser.training.build_training_model and compile_for_training.
Per backend: the median training step (batch 32, one fixed batch, after warm-up) and the wall
time of the second epoch over the records' clips (the first compiles). Ratios are to the first
backend listed, measured in the same run.

    python benchmarks/backends.py --records_dir=R --out=benchmarks/results \
        [--backends=tensorflow,jax,jax/pydataset --python_for=torch=/path/to/python]

A backend of the form NAME/pydataset forces the PyDataset pipeline (KSER_INPUT_PIPELINE).
--python_for=BACKEND=PYTHON runs that backend with another interpreter (an environment without
TensorFlow, or one with torch).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.common import table, write_results  # noqa: E402

BATCH = 32


def measure(records_dir: str, steps: int) -> dict:
    """In this process's backend: step and epoch times of `small` trained as kser trains it."""
    import keras
    import numpy as np

    from kser.audio_frontend import front_end_for
    from kser.config import TrainConfig
    from kser.data import split_size
    from kser.inputs import input_pipeline, make_inputs
    from kser.records_info import read_records_info
    from kser.training import build_core, build_training_model, compile_for_training, resolve_config

    records = read_records_info(records_dir)
    split = next(name for name, info in records.splits.items() if info.clips)
    config = resolve_config(TrainConfig(arch="small", batch_size=BATCH, epochs=2, seed=0))
    keras.utils.set_random_seed(0)
    front_end = front_end_for(records.audio)
    core = build_core("small", len(records.label_names), front_end.output_feature_shape, {})
    model = build_training_model(core, front_end, config.augmentation, 0)
    batches = -(-split_size(records, split, "oversample") // BATCH)
    compile_for_training(model, config, batches)
    data = make_inputs(records_dir, split, training=True, balance="oversample", batch_size=BATCH, seed=0, output="waveforms",
                       mixup_alpha=config.mixup_alpha, steps=batches)
    x, y = next(iter(data))[:2]
    x, y = np.asarray(x), np.asarray(y)
    model.train_on_batch(x, y)  # compiles
    step = []
    for _ in range(steps):
        start = time.perf_counter()
        model.train_on_batch(x, y)
        step.append(time.perf_counter() - start)
    epochs = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            epochs.append(time.perf_counter() - self.start)

    model.fit(data, epochs=2, steps_per_epoch=batches, callbacks=[Timer()], verbose=0)
    return {
        "backend": keras.backend.backend(),
        "pipeline": input_pipeline(),
        "step_ms": round(1000 * statistics.median(step), 1),
        "epoch_s": round(epochs[-1], 2),
        "first_epoch_s": round(epochs[0], 2),
        "clips_per_epoch": batches * BATCH,
    }


def run_backend(name: str, python: str, records_dir: str, steps: int) -> dict:
    backend, _, pipeline = name.partition("/")
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(REPO)}
    if pipeline:
        env["KSER_INPUT_PIPELINE"] = pipeline
    result = subprocess.run(
        [python, __file__, "--worker", f"--records_dir={records_dir}", f"--steps={steps}"],
        env=env, capture_output=True, text=True, timeout=3600,
    )
    if result.returncode != 0:
        return {"backend": name, "error": result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "failed"}
    return {**json.loads(result.stdout.strip().splitlines()[-1]), "name": name, "python": python}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records_dir", required=True)
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--backends", default="tensorflow,jax,jax/pydataset")
    parser.add_argument("--python_for", action="append", default=[], help="BACKEND=PYTHON")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(args.records_dir, args.steps)))
        return
    pythons = dict(item.split("=", 1) for item in args.python_for)
    rows = [run_backend(name, pythons.get(name, sys.executable), args.records_dir, args.steps) for name in args.backends.split(",")]
    base = next((row for row in rows if "error" not in row), None)
    for row in rows:
        if "error" not in row and base is not None:
            row["step_x"] = round(row["step_ms"] / base["step_ms"], 2)
            row["epoch_x"] = round(row["epoch_s"] / base["epoch_s"], 2)
    path = write_results(args.out, "backends", {"records_dir": args.records_dir, "batch": BATCH, "rows": rows})
    ok = [row for row in rows if "error" not in row]
    if ok:
        print(table(ok, ["name", "pipeline", "step_ms", "step_x", "epoch_s", "epoch_x", "first_epoch_s"]))
    for row in rows:
        if "error" in row:
            print(f"{row['backend']}: {row['error']}")
    print(f"results: {path}")


if __name__ == "__main__":
    main()
