"""One kser command at a time per folder (kser.locks): a second is refused naming the first's pid,
a lock left by a killed process is stale, and lock files are never "other files"."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from kser.errors import KserError
from kser.locks import folder_lock, replaced_folder_lock
from kser.output_dirs import clear_own_entries, holds_entries, refuse_foreign_entries
from tests.cli_runner import REPO, assert_one_line_error, demo_records, kser_env, run_kser, start_kser
from tests.synthetic import write_crema_d

TINY = json.dumps({"conv_filters": [4, 8, 8], "proj_units": 16, "rnn_units": 8})


def test_a_second_holder_is_refused_naming_the_first_pid(tmp_path):
    folder = tmp_path / "m"
    with folder_lock(folder, "model directory"):
        assert json.loads((folder / ".kser.lock").read_text())["pid"] == os.getpid()
        with pytest.raises(KserError, match=rf"^model directory {re.escape(str(folder))} is in use by a running process \(pid {os.getpid()}\)"):
            with folder_lock(folder, "model directory"):
                pass
        (folder / "history.csv").write_text("epoch\n")
    assert not (folder / ".kser.lock").exists()  # released and gone
    with folder_lock(folder, "model directory"):  # and free again
        pass


def test_a_lock_left_by_a_killed_process_is_stale_and_taken_over(tmp_path):
    folder = tmp_path / "m"
    holder = subprocess.Popen(
        [sys.executable, "-c", f"from kser.locks import folder_lock\nwith folder_lock({str(folder)!r}, 'x'):\n print('held', flush=True)\n input()"],
        cwd=REPO, env=kser_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(KserError, match=f"pid {holder.pid}"):
        with folder_lock(folder, "model directory"):
            pass
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert json.loads((folder / ".kser.lock").read_text())["pid"] == holder.pid  # left behind, stale
    with folder_lock(folder, "model directory"):
        assert json.loads((folder / ".kser.lock").read_text())["pid"] == os.getpid()


def test_lock_files_are_no_content_to_the_folder_checks(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / ".kser.lock").write_text('{"pid": 1}')  # stale: a folder's own and an export's sibling
    (folder / ".export.kser.lock").write_text('{"pid": 1}')
    assert not holds_entries(folder)
    (folder / "history.csv").write_text("epoch\n")
    assert holds_entries(folder)
    refuse_foreign_entries(folder, lambda path: path.name == "history.csv")
    with folder_lock(folder, "model directory"):  # --overwrite clears what kser wrote, never the held lock
        clear_own_entries(folder, lambda path: path.name == "history.csv")
        assert sorted(path.name for path in folder.iterdir()) == [".export.kser.lock", ".kser.lock"]


def test_a_folder_made_for_the_lock_goes_again_when_nothing_was_written(tmp_path):
    with pytest.raises(RuntimeError):
        with folder_lock(tmp_path / "new" / "m", "model directory"):
            raise RuntimeError("a setting turned out wrong")
    assert not (tmp_path / "new").exists()  # so the corrected retry finds no trace


def test_an_export_directory_is_locked_beside_it_as_it_is_replaced_whole(tmp_path):
    with replaced_folder_lock(tmp_path / "out", "export directory"):
        assert (tmp_path / ".out.kser.lock").is_file() and not (tmp_path / "out").exists()
        with pytest.raises(KserError, match="export directory .*out is in use"):
            with replaced_folder_lock(tmp_path / "out", "export directory"):
                pass
    assert not (tmp_path / ".out.kser.lock").exists()


def test_build_records_into_a_folder_in_use_is_refused(tmp_path):
    write_crema_d(tmp_path / "audio", actors=2, sentences=("DFA",))
    with folder_lock(tmp_path / "out", "output directory"):
        result = run_kser("build-records", f"--data_dir={tmp_path / 'audio'}", f"--output_dir={tmp_path / 'out'}", "--split=none", "--workers=1")
    assert_one_line_error(result, "kser build-records: error: output directory", "is in use", f"pid {os.getpid()}")
    assert not (tmp_path / "out").exists()


def _wait_for(condition, process, seconds=240):
    deadline = time.monotonic() + seconds
    while not condition():
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_a_second_train_into_a_model_dir_in_use_is_refused_and_a_killed_run_s_lock_is_stale(tmp_path):
    records = demo_records(tmp_path, ("--actors=6", "--sentences=1"), ("--clip_seconds=0.5", "--workers=1"))
    model_dir = tmp_path / "m"
    common = ("train", "--arch=small", f"--records_dir={records}", f"--model_dir={model_dir}", "--batch_size=8", f"--model_options={TINY}")
    first = start_kser(*common, "--epochs=500", "--patience=500")
    try:
        history_file = model_dir / "history.csv"
        _wait_for(lambda: history_file.is_file() and len(history_file.read_text().splitlines()) > 1, first)  # an epoch done
        second = run_kser(*common, "--epochs=1")
        assert_one_line_error(second, "kser train: error: model directory", "is in use by a running process", f"pid {first.pid}")
        assert first.poll() is None
    finally:
        first.kill()
        first.wait()
    history = history_file.read_text().splitlines()
    assert sum(line.startswith("epoch") for line in history) == 1  # one run's history only
    assert (model_dir / ".kser.lock").is_file()  # left by the killed run: stale, it blocks nothing
    third = run_kser(*common, "--epochs=1")
    assert_one_line_error(third, "already holds a training run with other settings")


def test_a_filesystem_without_locks_warns_once_and_runs_unlocked(tmp_path, monkeypatch, capsys):
    import errno
    import fcntl

    def no_locks(descriptor, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    folder = tmp_path / "m"
    with folder_lock(folder, "model directory"):
        (folder / "history.csv").write_text("epoch\n")
    warnings = [line for line in capsys.readouterr().err.splitlines() if line]
    assert len(warnings) == 1 and warnings[0].startswith("kser: warning:") and "cannot be locked on this filesystem" in warnings[0]
    assert (folder / "history.csv").read_text() == "epoch\n"
