"""Helpers shared by the command modules."""

from __future__ import annotations

import contextlib
import functools
import sys
from typing import Callable, TextIO, overload

from absl import flags

from kser.disk import reports_full_disk
from kser.errors import KserError

Command = Callable[[list[str]], None]


@overload
def reports_errors(command: Command) -> Command: ...


@overload
def reports_errors(*, allow_args: bool = False, writes_to: str | None = None) -> Callable[[Command], Command]: ...


def reports_errors(command: Command | None = None, *, allow_args: bool = False, writes_to: str | None = None):
    """Turn KserError into one clear line and exit 1; Ctrl-C into exit 130, no traceback.

    Use as ``@reports_errors`` (positional arguments are rejected, so a mistyped flag such as
    ``-data_dir x`` cannot pass silently) or ``@reports_errors(allow_args=True)`` for commands
    that take positional arguments (``kser predict FILE...``); they reach the command in argv[1:].
    ``writes_to`` names the flag of the folder the command fills: a full disk there is one line
    naming it (:func:`kser.disk.reports_full_disk`).
    """

    def decorate(command: Command) -> Command:
        @functools.wraps(command)
        def wrapped(argv: list[str]) -> None:
            if len(argv) > 1 and not allow_args:
                print(f"{argv[0]}: unexpected arguments: {' '.join(argv[1:])}", file=sys.stderr)
                sys.exit(2)
            try:
                with reports_full_disk(flags.FLAGS[writes_to].value) if writes_to else contextlib.nullcontext():
                    command(argv)
            except KserError as error:
                print(f"{argv[0]}: error: {error}", file=sys.stderr)
                sys.exit(1)
            except KeyboardInterrupt:
                print(f"\n{argv[0]}: interrupted; run the same command again to resume", file=sys.stderr)
                sys.exit(130)

        return wrapped

    return decorate if command is None else decorate(command)


def fit_verbosity(stdout: TextIO | None = None) -> int:
    """Keras's ``verbose=`` for ``model.fit``: 1, a progress bar redrawn within each epoch, when
    stdout (where Keras draws it) is a terminal; 2, one line per epoch, in a log or a pipe, where a
    redrawn bar would be a file full of carriage returns."""
    stream = sys.stdout if stdout is None else stdout
    return 1 if getattr(stream, "isatty", lambda: False)() else 2
