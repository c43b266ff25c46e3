"""The folders kser writes into: checked before any work starts, one clear line when unusable.

A folder under a regular file, on a read-only or special filesystem (``/proc``), or where the
user may not write would otherwise surface as an ``OSError`` traceback from deep inside a build
or a training run, after minutes of work. ``check_writable`` creates nothing, so a command that
fails validation leaves no trace that could block its corrected retry.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from kser.atomic import is_temp_name
from kser.errors import KserError
from kser.locks import is_lock_name


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists() or candidate.is_symlink():
            return candidate
    return Path(path.anchor or ".")


def _probe(folder: Path, what: str, target: Path) -> None:
    """Write and delete a hidden file in ``folder``: the only sure test (root ignores mode bits)."""
    try:
        handle, name = tempfile.mkstemp(prefix=".kser-probe-", dir=folder)
    except OSError as error:
        raise KserError(f"{what} {target} cannot be written: {folder} takes no new files ({error.strerror or error})") from None
    os.close(handle)
    os.unlink(name)


def check_writable(path: str | os.PathLike, what: str) -> Path:
    """KserError unless ``path`` is a folder kser can write in, or one it could create; creates nothing."""
    target = Path(path).absolute()
    existing = _nearest_existing(target)
    if not existing.is_dir():
        where = "is a file" if existing.exists() else "is a broken link"
        detail = f"it {where}" if existing == target else f"{existing} {where}"
        raise KserError(f"{what} {target} cannot be used: {detail}, not a folder")
    _probe(existing, what, target)
    return target


def refuse_foreign_entries(folder: Path, is_own: Callable[[Path], bool]) -> None:
    """For --overwrite: KserError naming the first entry of ``folder`` that kser did not write.

    Replacing a folder's content deletes it, so --overwrite may only replace what kser wrote,
    recognised by name (and kser's own hidden temporaries from a killed run, and lock files).
    """
    foreign = sorted(path.name for path in _entries(folder) if not (is_own(path) or is_temp_name(path.name)))
    if foreign:
        raise KserError(
            f"--overwrite replaces only what kser wrote, and {folder} also holds {foreign[0]!r}; "
            "move it away or choose another folder"
        )


def clear_own_entries(folder: Path, is_own: Callable[[Path], bool]) -> None:
    """For --overwrite: empty ``folder`` of what kser wrote, after refusing (and so keeping
    everything) when it holds anything else (:func:`refuse_foreign_entries`)."""
    refuse_foreign_entries(folder, is_own)
    for path in _entries(folder):  # the lock (kser.locks) stays: this command holds it
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()


def _entries(folder: Path) -> list[Path]:
    """What ``folder`` holds, less kser's lock files (:mod:`kser.locks`), which are no content."""
    return [path for path in folder.iterdir() if not is_lock_name(path.name)]


def holds_entries(folder: Path) -> bool:
    """Whether ``folder`` exists and holds anything but a lock file: a run there would not be a fresh one."""
    return folder.is_dir() and bool(_entries(folder))


def make_dir(path: str | os.PathLike, what: str) -> Path:
    """Create ``path`` (and its parents) after :func:`check_writable`; KserError if that fails."""
    target = check_writable(path, what)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as error:  # e.g. /proc, where even root cannot create folders
        raise KserError(f"{what} {target} cannot be created: {error.strerror or error}") from None
    return target
