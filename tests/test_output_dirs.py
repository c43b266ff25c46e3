"""kser.output_dirs: unusable output folders are one clear KserError, found before anything is written."""

import os
from pathlib import Path

import pytest

from kser.errors import KserError
from kser.output_dirs import check_writable, make_dir


def test_a_new_nested_folder_is_checked_without_being_created(tmp_path):
    target = tmp_path / "a" / "b"
    assert check_writable(target, "model directory") == target
    assert not (tmp_path / "a").exists()
    assert make_dir(target, "model directory").is_dir()
    assert list(tmp_path.iterdir()) == [tmp_path / "a"]  # the probe file is gone
    assert list(target.iterdir()) == []


@pytest.mark.parametrize("below", ["", "sub", "sub/deeper"])
def test_a_regular_file_on_the_way_is_named(tmp_path, below):
    blocker = tmp_path / "file"
    blocker.write_text("user data")
    target = blocker / below if below else blocker
    with pytest.raises(KserError, match="is a file, not a folder") as info:
        make_dir(target, "output directory")
    assert str(target) in str(info.value) and "output directory" in str(info.value)
    assert blocker.read_text() == "user data"


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_a_special_filesystem_is_refused():
    with pytest.raises(KserError, match="/proc/kser-test cannot be"):
        make_dir("/proc/kser-test", "output directory")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through mode bits; the probe is what catches that case")
def test_a_folder_without_write_permission_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(KserError, match="cannot be written"):
            check_writable(locked / "out", "output directory")
    finally:
        locked.chmod(0o755)
