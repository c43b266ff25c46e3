"""Write-then-rename helpers: a reader sees a file complete or not at all."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

TEMP_SUFFIX = ".tmp"


def temp_path_for(final: str | os.PathLike) -> Path:
    """The hidden temporary name a file is written under before it is renamed into place."""
    final = Path(final)
    return final.with_name(f".{final.name}.{os.getpid()}{TEMP_SUFFIX}")


def is_temp_name(name: str) -> bool:
    """Whether ``name`` is one of kser's hidden temporaries (see temp_path_for)."""
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def commit(temp: str | os.PathLike, final: str | os.PathLike) -> None:
    """Flush ``temp`` to disk and atomically rename it to ``final``."""
    with open(temp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(temp, final)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Atomically write ``text`` (UTF-8)."""
    temp = temp_path_for(path)
    with open(temp, "w", encoding="utf-8") as handle:
        handle.write(text)
    commit(temp, path)


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
