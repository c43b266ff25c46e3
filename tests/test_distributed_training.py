"""Data-parallel ``kser train``: two multi-worker processes on 127.0.0.1, kill-and-resume, one-step
correctness against a single process, and ``mirrored`` over two logical CPU devices.

The multi-worker engine is keras.distribution on JAX (kser.distribution says why); these tests
skip where JAX is not installed (``pip install 'kser[distributed]'``; ``make install`` has it).
"""

from __future__ import annotations

import io
import json
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from kser.evaluation import evaluate
from kser.model_dir import INFO_FILE, MODEL_FILE
from kser.config import AudioConfig, BuildConfig, RecordsConfig
from kser.demo_data import generate_demo_dataset
from kser_tfrecords_builder import build_records
from tests.cli_runner import REPO, assert_one_line_error, kser_command, kser_env

TINY = '{"conv_filters": [4, 8, 8], "proj_units": 8, "rnn_units": 4}'

def _require_jax() -> None:
    pytest.importorskip("jax", reason="multi-worker training needs JAX: pip install 'kser[distributed]'")


def free_ports(count: int) -> list[int]:
    """``count`` ports that nothing listens on now (each bound once, then released)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def jax_env() -> dict[str, str]:
    """The environment of a JAX worker process in these tests. XLA's CPU back end compiles without
    LLVM optimisation (a tiny model's step compiles in half the time, and only speed changes),
    and compiled programs are cached on disk, so a resumed run does not compile them again."""
    env = {**kser_env(), "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_backend_optimization_level=0"}
    env.update(JAX_COMPILATION_CACHE_DIR=str(_CACHE_DIR), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
    env.pop("KERAS_BACKEND", None)
    env.pop("TF_CONFIG", None)
    return env


_CACHE_DIR = Path(tempfile.mkdtemp(prefix="kser-test-jax-cache-"))  # this session's; empty at start


def cluster_env(ports: list[int], index: int) -> dict[str, str]:
    tf_config = {"cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]}, "task": {"type": "worker", "index": index}}
    return {**jax_env(), "TF_CONFIG": json.dumps(tf_config)}


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """Tiny demo records whose splits hold two shard files each (one per worker)."""
    root = tmp_path_factory.mktemp("distributed")
    generate_demo_dataset(root / "audio", actors=6, sentences=2)  # in this process: no command start-up to wait for
    records = root / "records"
    build_records(
        BuildConfig(
            data_dir=str(root / "audio"), output_dir=str(records), workers=1, audio=AudioConfig(clip_seconds=0.5),
            records=RecordsConfig(min_shards=2),
        ),
        progress_stream=io.StringIO(),
    )
    manifest = json.loads((records / "manifest.json").read_text())
    assert all(len(split["shards"]) == 2 for split in manifest["splits"].values() if split["clips"])
    return records


def train_args(records, model_dir, epochs: int) -> list[str]:
    return [
        "train", "--arch=small", f"--records_dir={records}", f"--model_dir={model_dir}", f"--epochs={epochs}",
        "--batch_size=8", "--seed=0", "--augment=false", f"--model_options={TINY}", "--distribution=multi_worker",
    ]


def start_workers(args: list[str], ports: list[int], log_dir) -> list[subprocess.Popen]:
    processes = []
    for index in range(len(ports)):
        log = open(log_dir / f"worker{index}.log", "a")
        processes.append(
            subprocess.Popen(kser_command(*args), cwd=REPO, env=cluster_env(ports, index), stdout=log, stderr=subprocess.STDOUT, text=True)
        )
    return processes


def wait_all(processes: list[subprocess.Popen], log_dir, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    for index, process in enumerate(processes):
        try:
            process.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for other in processes:
                other.kill()
            pytest.fail(f"worker {index} did not finish:\n{(log_dir / f'worker{index}.log').read_text()[-3000:]}")
    for index, process in enumerate(processes):
        log = (log_dir / f"worker{index}.log").read_text()
        assert process.returncode == 0, log[-3000:]
        assert "Traceback" not in log


def test_two_workers_train_resume_after_a_kill_and_only_the_chief_writes(records, tmp_path):
    """Two workers on 127.0.0.1 train; one is killed once an epoch is backed up; the same two
    commands again resume from the chief's backup and finish with a complete model directory.
    (One test for both cases: each two-process start costs about half a minute of JAX compiling.)"""
    _require_jax()
    model_dir = tmp_path / "model"
    args = train_args(records, model_dir, epochs=2)
    workers = start_workers(args, free_ports(2), tmp_path)
    metadata = model_dir / "backup" / "training_metadata.json"
    deadline = time.monotonic() + 240
    while not metadata.is_file() and time.monotonic() < deadline and all(w.poll() is None for w in workers):
        time.sleep(0.05)
    assert metadata.is_file(), (tmp_path / "worker0.log").read_text()[-3000:]
    workers[1].send_signal(signal.SIGKILL)  # one worker dies mid-run ...
    workers[0].kill()  # ... and the job is stopped (JAX's heartbeat timeout would stop the chief too, later)
    for worker in workers:
        worker.wait(timeout=60)
    assert not (model_dir / INFO_FILE).exists()
    saved_epoch = json.loads(metadata.read_text())["epoch"]
    assert saved_epoch == 1
    first_logs = [(tmp_path / f"worker{i}.log").read_text() for i in (0, 1)]
    assert "JAX backend" in first_logs[0] and "process 1 of 2" in first_logs[1]
    assert "shard file(s) for 2 workers" not in first_logs[0]  # two shards: each worker reads its own file

    for index in (0, 1):
        (tmp_path / f"worker{index}.log").write_text("")
    wait_all(start_workers(args, free_ports(2), tmp_path), tmp_path)
    chief = (tmp_path / "worker0.log").read_text()
    epochs_run = [line for line in chief.splitlines() if line.startswith("Epoch ")]
    assert epochs_run == ["Epoch 2/2"], chief[-2000:]  # resumed, not restarted

    info = json.loads((model_dir / INFO_FILE).read_text())
    assert info["extra"]["distribution"] == {"mode": "multi_worker", "workers": 2, "replicas": 2}
    assert info["extra"]["features_on"] == "model"  # JAX: features are layers of the model
    for name in (MODEL_FILE, "history.csv", "train_config.json", "checkpoints/best.weights.h5", "logs"):
        assert (model_dir / name).exists(), name
    assert not (model_dir / "backup").exists()  # the finished run's backup is gone
    epochs = [int(line.split(",")[0]) for line in (model_dir / "history.csv").read_text().splitlines()[1:]]
    assert epochs == [0, 1]  # one row per epoch: only the chief writes, and the backup is taken last
    # The trained model is an ordinary Keras model that one process evaluates.
    report = evaluate(model_dir, records, "test")
    assert report["clips"] > 0


def _start_one_step(num_processes: int, tmp_path):
    """Start a cluster of ``num_processes`` that trains one step; returns (output file, processes)."""
    out = tmp_path / f"weights-{num_processes}.npz"
    port = free_ports(1)[0]
    env = jax_env()
    return out, [
        subprocess.Popen(
            [sys.executable, "-m", "tests.distributed_step", str(index), str(num_processes), str(port), str(out)],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for index in range(num_processes)
    ]


def _weights(out, processes: list[subprocess.Popen]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(weights before, weights after) the step, once the cluster's processes are done."""
    for process in processes:
        output, _ = process.communicate(timeout=300)
        assert process.returncode == 0, output[-3000:]
    with np.load(out) as saved:
        count = len(saved.files) // 2
        return [saved[f"before_{i}"] for i in range(count)], [saved[f"after_{i}"] for i in range(count)]


def test_one_step_on_two_workers_equals_one_process(tmp_path):
    """The same global batch gives the same weights (incl. BatchNormalization's moving statistics)."""
    _require_jax()
    one, two = _start_one_step(1, tmp_path), _start_one_step(2, tmp_path)  # both clusters at once
    (before, single), (before_2, double) = _weights(*one), _weights(*two)
    assert len(single) == len(double) > 0
    for a, b in zip(before, before_2):
        np.testing.assert_array_equal(a, b)  # the same start on both clusters
    for a, b in zip(single, double):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)
    changed = [not np.allclose(a, b) for a, b in zip(before, single)]
    assert sum(changed) > len(changed) // 2  # the step moved the weights: the comparison means something


def train_on_tensorflow(*args: str) -> subprocess.CompletedProcess:
    """``kser train`` on Keras's TensorFlow backend, with no cluster in the environment."""
    env = {**kser_env()}
    env.pop("TF_CONFIG", None)
    env.pop("KERAS_BACKEND", None)
    return subprocess.run(kser_command("train", *args), cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_mirrored_over_two_logical_cpus(records, tmp_path):
    model_dir = tmp_path / "model"
    result = train_on_tensorflow(
        "--arch=small", f"--records_dir={records}", f"--model_dir={model_dir}", "--epochs=1", "--batch_size=8",
        "--seed=0", "--augment=false", f"--model_options={TINY}", "--distribution=mirrored", "--devices=CPU:0,CPU:1",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    info = json.loads((model_dir / INFO_FILE).read_text())
    assert info["extra"]["distribution"] == {"mode": "mirrored", "workers": 1, "replicas": 2}
    # Validation metrics are gathered over both replicas: the epoch's val_accuracy and val_uar
    # are those of the whole validation split, as one process scores it.
    header, row = (model_dir / "history.csv").read_text().splitlines()
    logged = dict(zip(header.split(","), map(float, row.split(","))))
    report = evaluate(model_dir, records, "validation")
    assert report["clips"] == json.loads((records / "manifest.json").read_text())["splits"]["validation"]["clips"]
    assert logged["val_accuracy"] == pytest.approx(report["accuracy"], abs=1e-6)
    assert logged["val_uar"] == pytest.approx(report["uar"], abs=1e-6)


def test_mirrored_on_a_device_that_does_not_exist_is_one_line_before_anything_is_written(records, tmp_path):
    model_dir = tmp_path / "model"
    result = train_on_tensorflow(
        "--arch=small", f"--records_dir={records}", f"--model_dir={model_dir}", "--distribution=mirrored", "--devices=CPU:0,GPU:99"
    )
    assert_one_line_error(result, "--devices names GPU:99", "TensorFlow sees CPU:0")
    assert not model_dir.exists()
