"""Write-then-rename helpers: a reader sees a file complete or not at all."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, Iterator

TEMP_SUFFIX = ".tmp"


def temp_path_for(final: str | os.PathLike, ending: str = "") -> Path:
    """The hidden temporary name a file is written under before it is renamed into place.

    ``ending`` goes after the temporary marker, for writers that insist on a file name ending
    (Keras: ``.weights.h5``, ``.keras``).
    """
    final = Path(final)
    return final.with_name(f".{final.name}.{os.getpid()}{TEMP_SUFFIX}{ending}")


def is_temp_name(name: str) -> bool:
    """Whether ``name`` is one of kser's hidden temporaries (see temp_path_for)."""
    return name.startswith(".") and (name.endswith(TEMP_SUFFIX) or f"{TEMP_SUFFIX}." in name)


def commit(temp: str | os.PathLike, final: str | os.PathLike) -> None:
    """Flush ``temp`` to disk and atomically rename it to ``final``."""
    with open(temp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(temp, final)


@contextlib.contextmanager
def replacing(final: str | os.PathLike, ending: str = "") -> Iterator[Path]:
    """Yield a temporary path to write ``final`` under; committed when the block ends, deleted
    when it raises, so that ``final`` is the old file or the new one, never a part of one."""
    temp = temp_path_for(final, ending)
    try:
        yield temp
        commit(temp, final)
    finally:
        temp.unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Atomically write ``text`` (UTF-8)."""
    with replacing(path) as temp:
        temp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, payload: Any) -> None:
    """Atomically write ``payload`` as pretty, key-sorted JSON."""
    write_text(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")


def remove_stale_temps(directory: str | os.PathLike) -> int:
    """Delete temporaries left by killed runs; returns how many."""
    removed = 0
    for entry in Path(directory).glob(f".*{TEMP_SUFFIX}"):
        entry.unlink(missing_ok=True)
        removed += 1
    return removed
