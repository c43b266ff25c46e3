"""Killing a build at any moment leaves only complete shards, and rerunning resumes."""

import json
import os
import signal
import time
from pathlib import Path

import pytest

from kser.config import AudioConfig, BuildConfig, RecordsConfig
from kser.locks import is_lock_name
from tests.cli_runner import run_kser, start_kser
from tests.records_reader import manifest_without_paths, shard_records
from tests.synthetic import write_crema_d
from kser_tfrecords_builder import build_records
from kser_tfrecords_builder.state import load_receipt
from kser_tfrecords_builder import pool
from kser_tfrecords_builder.worker import ClipTask, process_clip
from kser import layouts

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
        assert leftover.name == ".kser-build" or leftover.name.endswith(".tmp") or is_lock_name(leftover.name)

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


def _decoding_workers(parent: int) -> list[int]:
    """The pids of ``parent``'s spawned multiprocessing children (not its resource tracker), from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):  # gone meanwhile
            continue
        if ppid == parent and b"spawn_main" in command:
            found.append(int(entry.name))
    return sorted(found)


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="finds the decoding workers through /proc")
def test_a_killed_decoding_worker_stops_the_build_naming_its_clip_and_a_rerun_resumes(tmp_path):
    data, output = tmp_path / "data", tmp_path / "out"
    write_crema_d(data, actors=6, sentences=("DFA", "IEO"))
    command = ("build-records", f"--data_dir={data}", f"--output_dir={output}", *FLAGS[:-1], "--workers=2")
    process = start_kser(*command)
    deadline = time.monotonic() + 120
    while len(workers := _decoding_workers(process.pid)) < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(workers) == 2, "the build started no two decoding workers"
    os.kill(workers[0], signal.SIGKILL)
    _, stderr = process.communicate(timeout=120)  # noticed, not waited for forever
    assert process.returncode == 1, stderr
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, stderr
    assert f"kser build-records: error: decoding worker (pid {workers[0]}) was killed by SIGKILL while preparing {data}" in errors[0]
    assert errors[0].endswith(".wav; run the same command again to resume")
    assert not _decoding_workers(process.pid)

    rerun = run_kser(*command)
    assert rerun.returncode == 0, rerun.stderr
    fresh = build_records(same_config(data, tmp_path / "fresh"), progress_stream=open("/dev/null", "w"))
    assert manifest_without_paths(output) == manifest_without_paths(fresh.output_dir)


def test_parallel_results_come_in_plan_order_with_few_clips_in_flight(tmp_path, monkeypatch):
    write_crema_d(tmp_path, actors=2, sentences=("DFA", "IEO"), seconds=(0.2, 1.2))  # uneven work
    (tmp_path / "1001_DFA_HAP_XX.wav").write_bytes(b"not audio")  # a skip comes back in its place too
    clips = layouts.scan(tmp_path, "crema_d").clips
    tasks = [ClipTask(clip, AudioConfig(clip_seconds=0.5), "int16", "auto", 0) for clip in clips]
    monkeypatch.setattr(pool, "IN_FLIGHT_PER_WORKER", 2)
    assert list(pool.prepared_in_workers(tasks, 3)) == [process_clip(task) for task in tasks]
