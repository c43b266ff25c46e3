"""Benchmark data-parallel training: steps/s of full-size `small` on one process vs two workers.

Each configuration trains the model that ``kser train`` builds with features in the model
(kser.training.build_training_model: waveforms -> AudioFrontEnd -> small), compiled as kser
compiles it, on a fixed global batch of 3 s waveforms with ``train_on_batch``; a step's time is the
median after warm-up steps, taken on the chief. Configurations, in one run:

- ``tensorflow``: one process, Keras's TensorFlow backend, no distribution (the baseline);
- ``multi_worker x1``: kser's multi-worker engine (keras.distribution on JAX) with one process;
- ``multi_worker x2``: two worker processes on 127.0.0.1, each feeding half of the global batch.

On a 2-core CPU machine two workers share the same two cores and cannot be faster; the point is
the cost of the machinery. On a machine with accelerators each process uses what JAX sees.

    python benchmarks/distributed.py --out=benchmarks/results [--steps=6 --batch=32]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.common import table, write_results  # noqa: E402

WARMUP = 2


def worker(process_id: int, processes: int, port: int, batch: int, steps: int, out: str) -> None:
    """One process of a configuration (processes == 0: plain TensorFlow, no distribution)."""
    if processes:
        workers = [f"127.0.0.1:{port + i}" for i in range(processes)]
        os.environ["TF_CONFIG"] = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": process_id}})
    from kser.config import AudioConfig, DistributionConfig, TrainConfig
    from kser.distribution import setup

    dist = setup(DistributionConfig("multi_worker" if processes else "none"), log=lambda line: None)
    import keras
    import numpy as np

    from kser.audio_frontend import front_end_for
    from kser.training import build_core, build_training_model, compile_for_training, resolve_config

    keras.utils.set_random_seed(0)
    front_end = front_end_for(AudioConfig())
    samples = front_end.clip_samples
    config = resolve_config(TrainConfig(arch="small", batch_size=batch, seed=0))
    with dist.scope():
        core = build_core("small", 6, front_end.output_feature_shape, {})
        model = build_training_model(core, front_end, None, 0)
        compile_for_training(model, config, steps_per_epoch=100)
    rng = np.random.default_rng(0)
    waveforms = rng.standard_normal((batch, samples)).astype("float32")
    labels = np.eye(6, dtype="float32")[rng.integers(0, 6, batch)]
    local = dist.local_batch_size(batch)
    rows = slice(dist.worker_index * local, (dist.worker_index + 1) * local)
    times = []
    for _ in range(WARMUP + steps):
        started = time.perf_counter()
        model.train_on_batch(waveforms[rows], labels[rows])
        times.append(time.perf_counter() - started)
    if dist.is_chief:
        import jax

        devices = [str(d) for d in jax.devices()] if keras.backend.backend() == "jax" else []
        Path(out).write_text(json.dumps({"step_s": statistics.median(times[WARMUP:]), "backend": keras.backend.backend(), "devices": devices}))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_configuration(processes: int, batch: int, steps: int, tmp: Path) -> dict:
    out, port = tmp / f"result-{processes}.json", free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CONFIG", "KERAS_BACKEND")}
    env["PYTHONPATH"] = str(REPO)
    command = [sys.executable, __file__, "--worker", "--port", str(port), "--batch", str(batch), "--steps", str(steps), "--result", str(out)]
    started = time.perf_counter()
    children = [
        subprocess.Popen([*command, "--process_id", str(i), "--processes", str(processes)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for i in range(max(processes, 1))
    ]
    for child in children:
        output, _ = child.communicate()
        if child.returncode:
            raise SystemExit(f"a worker failed:\n{output[-3000:]}")
    result = json.loads(out.read_text())
    name = f"multi_worker x{processes}" if processes else "tensorflow"
    return {"configuration": name, **result, "steps_per_s": 1 / result["step_s"], "clips_per_s": batch / result["step_s"], "wall_s": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--process_id", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--processes", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--result", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.process_id, args.processes, args.port, args.batch, args.steps, args.result)
        return
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run_configuration(processes, args.batch, args.steps, Path(tmp)) for processes in (0, 1, 2)]
    baseline = rows[0]["step_s"]
    for row in rows:
        row["time_vs_tensorflow"] = row["step_s"] / baseline
    printable = [
        {"configuration": r["configuration"], "backend": r["backend"], "step_s": f"{r['step_s']:.3f}", "steps/s": f"{r['steps_per_s']:.2f}",
         "clips/s": f"{r['clips_per_s']:.1f}", "x tensorflow": f"{r['time_vs_tensorflow']:.2f}"}
        for r in rows
    ]
    path = write_results(args.out, "distributed", {"arch": "small", "global_batch": args.batch, "steps": args.steps, "rows": rows})
    print(table(printable, ["configuration", "backend", "step_s", "steps/s", "clips/s", "x tensorflow"]))
    print(f"devices: {rows[-1]['devices']}")
    print(f"results in {path}")


if __name__ == "__main__":
    main()
