"""A small progress bar with a rate, for long command-line jobs (no extra dependency).

On a terminal it redraws one line; in a log (not a TTY) it prints a line every few seconds.
The rate and time left appear once they are measured: the first item's time holds the start-up
(worker processes, imports), so the rate is counted from the first item on, over at least
``RATE_MIN_ITEMS`` items and ``RATE_MIN_SECONDS`` (a first line "ETA 49:44" for a 7 s job misleads).
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


RATE_MIN_ITEMS = 3
RATE_MIN_SECONDS = 1.0


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
        self._first: tuple[int, float] | None = None  # (done, time) at the first update

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def steady_rate(self) -> float | None:
        """Items per second since the first update; None until that is measured, and the
        overall rate once every item is done (then it is exact)."""
        if self.total and self.done >= self.total:
            return self.rate
        if self._first is None:
            return None
        items, seconds = self.done - self._first[0], time.monotonic() - self._first[1]
        return items / seconds if items >= RATE_MIN_ITEMS and seconds >= RATE_MIN_SECONDS else None

    def update(self, count: int = 1) -> None:
        self.done += count
        now = time.monotonic()
        if self._first is None:
            self._first = (self.done, now)
        interval = 0.2 if self._interactive else 5.0
        if now - self._last_draw >= interval or self.done >= self.total:
            self._last_draw = now
            self._draw()

    def _draw(self) -> None:
        width = 24
        filled = int(width * self.done / self.total) if self.total else width
        bar = "=" * filled + " " * (width - filled)
        line = f"{self.label} [{bar}] {self.done}/{self.total} {self.unit}"
        rate = self.steady_rate()
        if rate is not None:
            left = (self.total - self.done) / rate if rate > 0 else 0.0
            line += f"  {rate:.1f} {self.unit}/s  ETA {int(left) // 60}:{int(left) % 60:02d}"
        if self._interactive:
            self.stream.write("\r" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._interactive and self.total:
            self.stream.write("\n")
            self.stream.flush()
