"""Killing a build at any moment leaves only complete shards, and rerunning resumes."""

import json
import signal
import time

import pytest

from kser.config import AudioConfig, BuildConfig, RecordsConfig
from tests.cli_runner import start_kser
from tests.records_reader import manifest_without_paths, shard_records
from tests.synthetic import write_crema_d
from kser_tfrecords_builder import build_records
from kser_tfrecords_builder.state import load_receipt

FLAGS = ["--clip_seconds=0.5", "--shard_size_mb=0.04", "--workers=1"]


def same_config(data, output):
    return BuildConfig(
        data_dir=str(data), output_dir=str(output), audio=AudioConfig(clip_seconds=0.5), records=RecordsConfig(shard_size_mb=0.04), workers=1
    )


def test_killed_build_leaves_only_complete_shards_and_resumes_to_the_same_result(tmp_path):
    data, output = tmp_path / "data", tmp_path / "out"
    write_crema_d(data, actors=10, sentences=("DFA", "IEO", "TIE"))
    process = start_kser("build-records", f"--data_dir={data}", f"--output_dir={output}", *FLAGS)
    deadline = time.monotonic() + 120
    while not list(output.glob("*.tfrecord")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the build finished before it could be killed"
    assert not (output / "manifest.json").exists()

    finished = sorted(output.glob("*.tfrecord"))
    assert finished, "no shard was finished before the kill"
    for shard in finished:  # whatever looks complete is complete and matches its receipt
        receipt = load_receipt(output, shard.name)
        assert receipt is not None, shard.name
        assert shard_records(shard) == receipt.records
    for leftover in output.glob(".*"):
        assert leftover.name == ".kser-build" or leftover.name.endswith(".tmp")

    devnull = open("/dev/null", "w")
    resumed = build_records(same_config(data, output), progress_stream=devnull)
    assert resumed.shards_reused >= len(finished)
    assert resumed.shards_written + resumed.shards_reused > len(finished)
    assert not list(output.glob(".*.tmp"))
    fresh = build_records(same_config(data, tmp_path / "fresh"), progress_stream=devnull)
    assert manifest_without_paths(output) == manifest_without_paths(fresh.output_dir)


def test_a_shard_whose_file_was_damaged_is_rebuilt(tmp_path):
    data, output = tmp_path / "data", tmp_path / "out"
    write_crema_d(data, actors=3, sentences=("DFA",))
    devnull = open("/dev/null", "w")
    first = build_records(same_config(data, output), progress_stream=devnull)
    victim = output / first.manifest["splits"]["train"]["shards"][0]["name"]
    victim.write_bytes(victim.read_bytes()[:-10])
    again = build_records(same_config(data, output), progress_stream=devnull)
    assert again.shards_written == 1
    assert json.loads((output / "manifest.json").read_text()) == first.manifest
