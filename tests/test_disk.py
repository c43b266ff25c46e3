"""A full disk in build-records, train and export: one line naming the folder, exit 1 (not a
traceback, not a segfault), nothing that looks complete; the same command resumes once there is room.

The full disk is a small tmpfs, so these tests need root (mount); they are skipped otherwise.
"""

import contextlib
import errno
import os
import subprocess
from pathlib import Path

import pytest

from kser.disk import is_full_disk, reports_full_disk
from kser.errors import KserError
from tests.cli_runner import assert_one_line_error, demo_records, run_kser

TINY = '{"conv_filters": [4, 8, 8], "proj_units": 16, "rnn_units": 8}'


def test_full_disk_errors_are_recognised_however_they_are_wrapped(tmp_path):
    hdf5 = RuntimeError("Can't decrement id ref count (file write failed: errno = 28, error message = 'No space left on device')")
    wrapped = ValueError("saving failed")
    wrapped.__cause__ = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    for error in (OSError(errno.ENOSPC, "disk full"), hdf5, wrapped):
        assert is_full_disk(error)
    assert not is_full_disk(OSError(errno.EACCES, "Permission denied")) and not is_full_disk(ValueError("bad value"))
    with pytest.raises(KserError, match=f"^no space left on device writing to {tmp_path}; free some space and run the same command again$"):
        with reports_full_disk(tmp_path):
            raise hdf5
    with pytest.raises(ValueError, match="bad value"), reports_full_disk(tmp_path):
        raise ValueError("bad value")


@contextlib.contextmanager
def small_disk(path: Path, size: str):
    """A tmpfs of ``size`` at ``path``; ``remount(size)`` frees space by making it bigger."""
    if os.geteuid() != 0:
        pytest.skip("a full disk is a small tmpfs, and mounting one needs root")
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")

    def remount(bigger: str) -> None:
        subprocess.run(["mount", "-o", f"remount,size={bigger}", str(path)], check=True)

    try:
        yield remount
    finally:
        subprocess.run(["umount", str(path)], check=True)


def assert_no_space_error(result: subprocess.CompletedProcess, folder: Path) -> None:
    assert result.returncode != -11 and result.returncode != 139, "segfault"
    assert_one_line_error(result, "no space left on device writing to", str(folder))


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    return demo_records(tmp_path_factory.mktemp("disk"), ("--actors=6", "--sentences=1"), ("--clip_seconds=0.5", "--workers=1"))


def test_build_records_on_a_full_disk_then_again_with_room(records, tmp_path):
    output = tmp_path / "disk" / "records"
    command = ("build-records", f"--data_dir={records.parent / 'audio'}", f"--output_dir={output}", "--clip_seconds=0.5", "--workers=1")
    with small_disk(tmp_path / "disk", "200k") as remount:  # the shards (580 KB) do not fit
        assert_no_space_error(run_kser(*command), output)
        assert not (output / "manifest.json").exists() and not list(output.glob("*.tfrecord"))
        remount("2m")
        result = run_kser(*command)
        assert result.returncode == 0, result.stderr[-3000:]
        assert (output / "manifest.json").is_file()


@pytest.fixture(scope="module")
def trained_after_a_full_disk(records, tmp_path_factory):
    """`kser train` into a disk too small for its checkpoints, then the same command with room."""
    disk = tmp_path_factory.mktemp("train_disk")
    model_dir = disk / "model"
    command = (
        "train", "--arch=small", f"--records_dir={records}", f"--model_dir={model_dir}", "--epochs=4", "--batch_size=8",
        f"--model_options={TINY}",
    )
    with small_disk(disk, "100k") as remount:  # train_config.json fits, the logs and weights do not
        failed = run_kser(*command)
        left = sorted(path.name for path in model_dir.iterdir())
        remount("4m")
        yield failed, left, run_kser(*command), model_dir


def test_train_on_a_full_disk_then_again_with_room(trained_after_a_full_disk):
    failed, left, again, model_dir = trained_after_a_full_disk
    assert_no_space_error(failed, model_dir)
    assert "train_config.json" in left and not {"model.keras", "kser_model.json"} & set(left)
    assert again.returncode == 0, again.stderr[-3000:]
    assert (model_dir / "model.keras").is_file() and (model_dir / "kser_model.json").is_file()


def test_export_on_a_full_disk(trained_after_a_full_disk, tmp_path):
    model_dir, export_dir = trained_after_a_full_disk[-1], tmp_path / "disk" / "export"
    with small_disk(tmp_path / "disk", "200k"):  # the SavedModel (about 900 KB) does not fit
        result = run_kser("export", f"--model_dir={model_dir}", f"--export_dir={export_dir}", "--window_hop_seconds=0.25")
        assert_no_space_error(result, export_dir)
        assert not export_dir.exists() and not list(export_dir.parent.iterdir())  # no partial export, no temporaries
