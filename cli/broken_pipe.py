"""``kser ... | head``: a reader that stops early ends kser quietly, as it ends any Unix tool.

Python ignores SIGPIPE, so a write to a pipe whose reader has gone raises BrokenPipeError, and
the interpreter's own flush of stdout at exit raises it again ("Exception ignored ...").
Following the Python documentation (library/signal, "Note on SIGPIPE"), stdout is pointed at
/dev/null so that no later flush can fail, and kser exits with 141 = 128 + SIGPIPE: the status a
shell reports for a tool that SIGPIPE ended (``yes | head -n 1`` leaves 141 in PIPESTATUS), so
``set -o pipefail`` scripts see the same as with any other tool. A BrokenPipeError that is not
about stdout (a worker process's pipe, say) is a real failure and is raised as it is.
"""

from __future__ import annotations

import functools
import os
import select
import sys
from typing import Callable, TypeVar

SIGPIPE_EXIT_STATUS = 128 + 13
Run = TypeVar("Run", bound=Callable[..., None])


def _stdout_reader_gone() -> bool:
    """Whether stdout is a pipe or socket whose reading end is closed (poll says POLLERR or POLLHUP)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), 0)  # errors and hang-ups are always reported
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll() (Windows) or no real stdout: assume so
        return True


def quiet_on_broken_pipe(run: Run) -> Run:
    """Wrap a command-line entry point: stdout is flushed inside it, and a reader that went away
    ends the program with status 141 and nothing on stderr."""

    @functools.wraps(run)
    def wrapped(*args, **kwargs) -> None:
        try:
            try:
                run(*args, **kwargs)
            finally:  # on sys.exit too: a failing flush replaces the SystemExit and is caught below
                sys.stdout.flush()
        except BrokenPipeError:
            if not _stdout_reader_gone():
                raise
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
            sys.exit(SIGPIPE_EXIT_STATUS)

    return wrapped  # type: ignore[return-value]
