"""kser.distribution without starting an engine: TF_CONFIG, modes, devices, batches, seeds and
each worker's share of the shard files (read through kser.data)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kser.config import AudioConfig, BuildConfig, DistributionConfig, RecordsConfig, SplitConfig
from kser.data import make_dataset
from kser.distribution import Cluster, Distribution, cluster_from_tf_config, parse_devices, resolve_mode, setup, worker_files
from kser.errors import KserError
from kser_tfrecords_builder.builder import build_records
from tests.synthetic import write_crema_d


def tf_config(cluster, kind="worker", index=0) -> str:
    return json.dumps({"cluster": cluster, "task": {"type": kind, "index": index}})


def test_tf_config_orders_the_chief_first_then_the_workers():
    cluster = {"worker": ["w0:2222", "w1:2222"], "chief": ["c:2222"]}
    assert cluster_from_tf_config(tf_config(cluster, "chief", 0)) == Cluster(("c:2222", "w0:2222", "w1:2222"), 0)
    parsed = cluster_from_tf_config(tf_config(cluster, "worker", 1))
    assert parsed.process_id == 2 and parsed.num_processes == 3 and parsed.coordinator == "c:2222"
    assert cluster_from_tf_config(None) is None and cluster_from_tf_config("  ") is None


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "not valid JSON"),
        ('{"cluster": {}}', '"cluster" and "task"'),
        (tf_config({"worker": ["a:1"], "ps": ["p:1"]}), "ps"),
        (tf_config({"worker": ["a"]}), "host:port"),
        (tf_config({"worker": ["a:1", "a:1"]}), "twice"),
        (tf_config({"worker": ["a:1"]}, "worker", 1), "not one of the cluster"),
        (tf_config({"worker": ["a:1"]}, "evaluator", 0), "not one of the cluster"),
        (tf_config({"worker": ["a:1", "b:1"]}, "worker", True), "index must be a whole number, got true"),
    ],
)
def test_a_bad_tf_config_is_one_clear_error(text, message):
    with pytest.raises(KserError, match=message):
        cluster_from_tf_config(text)


def test_auto_picks_multi_worker_with_a_cluster_then_mirrored_with_gpus():
    two = Cluster(("a:1", "b:1"), 0)
    assert resolve_mode("auto", two, lambda: 0) == "multi_worker"
    assert resolve_mode("auto", Cluster(("a:1",), 0), lambda: 2) == "mirrored"  # a one-task cluster is no cluster
    assert resolve_mode("auto", None, lambda: 1) == "none"
    assert resolve_mode("none", two, lambda: 8) == "none"  # an explicit mode wins
    with pytest.raises(KserError, match="unknown --distribution"):
        resolve_mode("horovod", None, lambda: 0)


def test_device_names():
    assert parse_devices(["GPU:0", "gpu:1", "/cpu:0", "/device:CPU:3"]) == (
        "/device:GPU:0", "/device:GPU:1", "/device:CPU:0", "/device:CPU:3"
    )
    with pytest.raises(KserError, match="not a device name"):
        parse_devices(["TPU0"])
    with pytest.raises(KserError, match="twice"):
        parse_devices(["GPU:0", "gpu:0"])


def test_setup_refuses_what_cannot_work(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(KserError, match="needs the cluster in TF_CONFIG"):
        setup(DistributionConfig("multi_worker"))
    with pytest.raises(KserError, match="--devices applies to --distribution=mirrored"):
        setup(DistributionConfig("none", ("GPU:0",)))
    assert setup(DistributionConfig("none")) == Distribution()
    assert setup(DistributionConfig("auto")).mode in ("none", "mirrored")  # no cluster here


def test_mirrored_refuses_a_device_that_does_not_exist(monkeypatch):
    """Not a silent fallback to the CPU, nor an all-reduce that waits for GPU:99 forever."""
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(KserError, match=r"--devices names GPU:99, which this machine does not have; TensorFlow sees CPU:0"):
        setup(DistributionConfig("mirrored", ("CPU:0", "GPU:99")))


def test_multi_worker_refuses_another_backend_once_keras_is_imported(monkeypatch):
    import keras  # noqa: F401 (this process already runs Keras on TensorFlow)

    monkeypatch.setenv("TF_CONFIG", tf_config({"worker": ["127.0.0.1:1", "127.0.0.1:2"]}))
    with pytest.raises(KserError, match="JAX backend; this process uses 'tensorflow'"):
        setup(DistributionConfig("multi_worker"))


def test_global_batch_seeds_and_files_per_worker():
    second = Distribution(mode="multi_worker", num_workers=2, worker_index=1)
    assert second.local_batch_size(32) == 16 and not second.is_chief
    with pytest.raises(KserError, match="global batch and must divide evenly over 2 workers"):
        second.local_batch_size(33)
    assert Distribution().local_batch_size(33) == 33  # mirrored/none: the strategy splits the batch
    chief = Distribution(mode="multi_worker", num_workers=2, worker_index=0)
    assert chief.data_seed(5) == 5 and second.data_seed(5) != 5 and second.data_seed(None) is None
    files = [f"f{i}" for i in range(5)]
    assert worker_files(files, 2, 0) == ["f0", "f2", "f4"] and worker_files(files, 2, 1) == ["f1", "f3"]
    assert worker_files(files, 1, 0) == files
    assert worker_files(files[:1], 2, 0) is None  # fewer files than workers: shard per example instead


def _clips(records, worker, warnings=None) -> list[bytes]:
    """The training clips that ``worker`` reads in one pass, as raw bytes of their waveforms. A
    worker's stream repeats forever; a pass ends where the first clip comes round again."""
    dataset = make_dataset(
        records, "train", training=True, batch_size=4, output="waveforms", seed=0, worker=worker,
        warn=None if warnings is None else warnings.append,
    )
    seen: list[bytes] = []
    for inputs, _ in dataset:
        assert inputs.shape[0] == 4 or worker[1] == 1  # several workers: always full batches
        for row in np.asarray(inputs):
            if row.tobytes() in seen:
                return seen
            seen.append(row.tobytes())
        if worker[1] == 1 and inputs.shape[0] < 4:
            break
    return seen


def test_workers_read_disjoint_shares_that_cover_the_split(tmp_path):
    """File-level sharding (3 files, 2 workers) and the per-example fallback (3 files, 4 workers)
    alike: no clip is read twice, none is lost, and only the fallback warns."""
    audio = tmp_path / "audio"
    write_crema_d(audio, actors=4, sentences=("DFA",), emotions=("ANG", "SAD"), seconds=(0.2, 0.3))
    records = tmp_path / "records"
    build_records(
        BuildConfig(
            data_dir=str(audio),
            output_dir=str(records),
            workers=1,
            audio=AudioConfig(clip_seconds=0.2),
            split=SplitConfig(strategy="random", fractions=(1.0, 0.0, 0.0)),
            records=RecordsConfig(num_shards=3),
        )
    )
    assert len(json.loads((records / "manifest.json").read_text())["splits"]["train"]["shards"]) == 3
    whole = sorted(_clips(records, (0, 1)))
    for workers in (2, 4):
        warnings: list[str] = []
        shares = [_clips(records, (index, workers), warnings if index == 0 else None) for index in range(workers)]
        assert sorted(clip for share in shares for clip in share) == whole, workers
        assert all(shares)
        assert len(warnings) == (workers == 4), warnings
