"""One multi-worker training step, run as a process of a test cluster (tests/test_distributed_training.py).

    python -m tests.distributed_step PROCESS_ID NUM_PROCESSES PORT OUT.npz

Each process sets TF_CONFIG for a cluster of NUM_PROCESSES on 127.0.0.1, starts kser's
multi-worker engine (kser.distribution), builds a tiny ``small`` with kser's training compile, and
trains one step on its slice of a fixed global batch: process p feeds rows p*B/N .. (p+1)*B/N-1,
so the global batch is the same for every N. The chief saves the weights to OUT.npz.
"""

from __future__ import annotations

import json
import os
import sys

GLOBAL_BATCH = 8
INPUT_SHAPE = (40, 16, 3)
NUM_CLASSES = 6
TINY_SMALL = {"conv_filters": [4, 8, 8], "proj_units": 8, "rnn_units": 4}


def main(process_id: int, num_processes: int, port: int, out: str) -> None:
    workers = [f"127.0.0.1:{port + offset}" for offset in range(num_processes)]
    os.environ["TF_CONFIG"] = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": process_id}})

    from kser.config import DistributionConfig, TrainConfig
    from kser.distribution import setup

    dist = setup(DistributionConfig("multi_worker"), log=lambda line: None)
    import keras
    import numpy as np

    from kser.training import build_core, compile_for_training, resolve_config

    keras.utils.set_random_seed(0)
    config = resolve_config(TrainConfig(arch="small", batch_size=GLOBAL_BATCH, seed=0))
    with dist.scope():
        model = build_core("small", NUM_CLASSES, INPUT_SHAPE, TINY_SMALL)
        compile_for_training(model, config, steps_per_epoch=1)
    rng = np.random.default_rng(1)
    features = rng.normal(size=(GLOBAL_BATCH, *INPUT_SHAPE)).astype("float32")
    labels = np.eye(NUM_CLASSES, dtype="float32")[rng.integers(0, NUM_CLASSES, GLOBAL_BATCH)]
    rows = slice(process_id * GLOBAL_BATCH // num_processes, (process_id + 1) * GLOBAL_BATCH // num_processes)
    before = [np.asarray(keras.ops.convert_to_numpy(variable.value)) for variable in model.weights]
    model.train_on_batch(features[rows], labels[rows])
    after = [np.asarray(keras.ops.convert_to_numpy(variable.value)) for variable in model.weights]
    if dist.is_chief:
        np.savez(out, **{f"before_{i}": w for i, w in enumerate(before)}, **{f"after_{i}": w for i, w in enumerate(after)})


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
