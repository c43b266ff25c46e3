"""A full disk, whichever library hit it, as one line that says what to do.

A full disk surfaces as ``OSError(ENOSPC)`` from Python, as an h5py ``OSError``/``RuntimeError``
or a TensorFlow ``ResourceExhaustedError`` whose message says "No space left on device", often
wrapped in another error. The commands that write much (``build-records``, ``train``,
``cross-validate``, ``export``) run inside :func:`reports_full_disk`, so the user reads the
folder and the remedy instead of a traceback. What they were writing was going to a temporary
name (:mod:`kser.atomic`), so nothing left behind looks complete, and the same command resumes.
"""

from __future__ import annotations

import contextlib
import errno
import os
from typing import Iterator

from kser.errors import KserError

NO_SPACE = "no space left on device"


def is_full_disk(error: BaseException) -> bool:
    """Whether ``error``, or an error it was raised from or during, reports a full disk."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno == errno.ENOSPC:
            return True
        if NO_SPACE in str(current).lower():
            return True
        current = current.__cause__ or current.__context__
    return False


@contextlib.contextmanager
def reports_full_disk(folder: str | os.PathLike) -> Iterator[None]:
    """Turn a full-disk error raised in the block into a KserError naming ``folder``."""
    try:
        yield
    except Exception as error:
        if not is_full_disk(error):
            raise
        raise KserError(f"{NO_SPACE} writing to {os.fspath(folder)}; free some space and run the same command again") from None
