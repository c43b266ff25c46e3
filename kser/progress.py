"""A small progress bar with a rate, for long command-line jobs (no extra dependency).

On a terminal it redraws one line; in a log (not a TTY) it prints a line every few seconds.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Counts finished items and shows done/total, items per second and time left."""

    def __init__(self, total: int, label: str, unit: str = "clips", stream: TextIO | None = None) -> None:
        self.total = total
        self.label = label
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self.started = time.monotonic()
        self._last_draw = 0.0
        self._interactive = bool(getattr(self.stream, "isatty", lambda: False)())

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def update(self, count: int = 1) -> None:
        self.done += count
        now = time.monotonic()
        interval = 0.2 if self._interactive else 5.0
        if now - self._last_draw >= interval or self.done >= self.total:
            self._last_draw = now
            self._draw()

    def _draw(self) -> None:
        rate = self.rate
        left = (self.total - self.done) / rate if rate > 0 else 0.0
        width = 24
        filled = int(width * self.done / self.total) if self.total else width
        bar = "=" * filled + " " * (width - filled)
        line = (
            f"{self.label} [{bar}] {self.done}/{self.total} {self.unit}  "
            f"{rate:.1f} {self.unit}/s  ETA {int(left) // 60}:{int(left) % 60:02d}"
        )
        if self._interactive:
            self.stream.write("\r" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._interactive and self.total:
            self.stream.write("\n")
            self.stream.flush()
