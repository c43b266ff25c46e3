"""One kser command at a time in a folder: a second one is refused with one line naming the first.

Why: two ``kser train`` runs into one model directory would both exit 0 after appending to one
``history.csv``, mixing their TensorBoard logs and overwriting each other's checkpoints. So each
command holds an exclusive lock on the folder it writes while it writes: ``kser train`` and
``kser cross-validate`` their model directory (cross-validation's folds are written only under
it, and each fold's training locks its own fold folder too), ``kser build-records`` its output
directory and ``kser export`` its export directory.

Why ``flock``: the kernel releases it when its holder exits, however it exits (SIGKILL and
out-of-memory kills included), so a lock file that a killed run left behind is stale by
construction and is simply taken over. The holder's pid, host and command are written in the
file for the message only; nothing guesses from a pid whether its process still lives (wrong
across hosts and after pid reuse). Linux and macOS; on a filesystem that has no locks at all
the command warns and runs unlocked rather than refusing to run.

Where the lock file lives: ``FOLDER/.kser.lock`` for a folder written in place. An export is
written under a temporary name and renamed over ``export_dir`` (:mod:`kser.export`), which would
rename a lock file inside it away with the old export, so its lock file is the sibling
``.NAME.kser.lock`` next to it. The holder deletes the lock file while it still holds it (a
process that opened the old file then finds that the name no longer leads to it, and starts
again), and removes the folder again if it created it and nothing was written there: a command
that fails after taking the lock leaves nothing that refuses its retry. Lock files, stale ones
included, never count as "other files" to :mod:`kser.output_dirs`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Iterator

from kser.errors import KserError

LOCK_SUFFIX = ".kser.lock"
_FOLDER_LOCK = LOCK_SUFFIX  # the lock file inside a folder is just ".kser.lock"
_NO_LOCKS = (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP)  # e.g. Lustre mounted without flock
_HOLDER_WRITE_SECONDS = 1.0  # how long to wait for a holder that has just locked to write its pid


def is_lock_name(name: str) -> bool:
    """Whether ``name`` is one of kser's lock files (a folder's own, or an export's sibling)."""
    return name.startswith(".") and name.endswith(LOCK_SUFFIX)


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, what: str) -> Iterator[Path]:
    """Hold ``folder``'s lock while the block writes in it, creating the folder if needed.

    KserError ("``what`` FOLDER is in use by a running process (pid N) ...") when another
    process holds it. Yields the folder's absolute path.
    """
    folder = Path(folder).absolute()
    with _holding(folder / _FOLDER_LOCK, f"{what} {folder}"):
        yield folder


@contextlib.contextmanager
def replaced_folder_lock(folder: str | os.PathLike, what: str) -> Iterator[Path]:
    """The lock of a folder that is replaced whole by a rename (an export): beside it, not in it."""
    folder = Path(folder).absolute()
    with _holding(folder.with_name(f".{folder.name}{LOCK_SUFFIX}"), f"{what} {folder}"):
        yield folder


@contextlib.contextmanager
def _holding(lock_file: Path, subject: str) -> Iterator[None]:
    descriptor, created = _acquire(lock_file, subject)
    try:
        if descriptor is not None:
            os.ftruncate(descriptor, 0)
            os.write(descriptor, json.dumps(_holder()).encode())
        yield
    finally:
        if descriptor is not None:
            lock_file.unlink(missing_ok=True)  # still held: nobody can have taken it meanwhile
        _remove_empty(created)
        if descriptor is not None:
            os.close(descriptor)


def _acquire(lock_file: Path, subject: str) -> tuple[int | None, list[Path]]:
    """The locked descriptor of ``lock_file`` (None where the filesystem has no locks) and the
    folders created for it; KserError naming the holder when it is held."""
    while True:
        created = _make_folders(lock_file.parent, subject)
        try:
            descriptor = os.open(lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except FileNotFoundError:  # a holder that created the folder removed it as it finished
            continue
        except OSError as error:
            _remove_empty(created)
            raise KserError(f"{subject} cannot be locked: {error.strerror or error}") from None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe_holder(descriptor)
            os.close(descriptor)
            _remove_empty(created)
            raise KserError(f"{subject} is in use by a running process ({holder}); wait for it to finish or choose another folder") from None
        except OSError as error:
            os.close(descriptor)
            if error.errno not in _NO_LOCKS:
                _remove_empty(created)
                raise KserError(f"{subject} cannot be locked: {error.strerror or error}") from None
            print(f"kser: warning: {subject} cannot be locked on this filesystem ({error.strerror}); "
                  "make sure no other kser command writes there at the same time", file=sys.stderr)
            return None, created
        if _still_named(descriptor, lock_file):
            return descriptor, created
        os.close(descriptor)  # the holder deleted this file as it finished: lock the new one


def _still_named(descriptor: int, lock_file: Path) -> bool:
    """Whether ``lock_file`` still names the file that ``descriptor`` holds open."""
    try:
        named = os.stat(lock_file)
    except FileNotFoundError:
        return False
    opened = os.fstat(descriptor)
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


def _holder() -> dict[str, object]:
    return {"pid": os.getpid(), "host": socket.gethostname(), "command": sys.argv}


def _describe_holder(descriptor: int) -> str:
    """"pid N" (and its host when it is another one) from the holder's file; it writes that just
    after locking, so a file still empty is read again for a moment."""
    deadline = time.monotonic() + _HOLDER_WRITE_SECONDS
    while True:
        try:
            holder = json.loads(os.pread(descriptor, 65536, 0))
            pid, host = int(holder["pid"]), str(holder.get("host", ""))
        except (ValueError, TypeError, KeyError):
            if time.monotonic() < deadline:
                time.sleep(0.05)
                continue
            return "pid unknown"
        return f"pid {pid}" if host in ("", socket.gethostname()) else f"pid {pid} on {host}"


def _make_folders(folder: Path, subject: str) -> list[Path]:
    """Create ``folder`` and its missing parents; returns those created, the deepest first."""
    missing = []
    for candidate in (folder, *folder.parents):
        if candidate.is_dir():
            break
        missing.append(candidate)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise KserError(f"{subject} cannot be created: {error.strerror or error}") from None
    return missing


def _remove_empty(created: list[Path]) -> None:
    """Remove the folders made for the lock again where nothing else was written in them."""
    for folder in created:
        try:
            folder.rmdir()
        except OSError:
            return
