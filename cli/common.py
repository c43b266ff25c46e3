"""Helpers shared by the command modules."""

from __future__ import annotations

import functools
import sys
from typing import Callable, overload

from kser.errors import KserError

Command = Callable[[list[str]], None]


@overload
def reports_errors(command: Command) -> Command: ...


@overload
def reports_errors(*, allow_args: bool = False) -> Callable[[Command], Command]: ...


def reports_errors(command: Command | None = None, *, allow_args: bool = False):
    """Turn KserError into one clear line and exit 1; Ctrl-C into exit 130, no traceback.

    Use as ``@reports_errors`` (positional arguments are rejected, so a mistyped flag such as
    ``-data_dir x`` cannot pass silently) or ``@reports_errors(allow_args=True)`` for commands
    that take positional arguments (``kser predict FILE...``); they reach the command in argv[1:].
    """

    def decorate(command: Command) -> Command:
        @functools.wraps(command)
        def wrapped(argv: list[str]) -> None:
            if len(argv) > 1 and not allow_args:
                print(f"{argv[0]}: unexpected arguments: {' '.join(argv[1:])}", file=sys.stderr)
                sys.exit(2)
            try:
                command(argv)
            except KserError as error:
                print(f"{argv[0]}: error: {error}", file=sys.stderr)
                sys.exit(1)
            except KeyboardInterrupt:
                print(f"\n{argv[0]}: interrupted; run the same command again to resume", file=sys.stderr)
                sys.exit(130)

        return wrapped

    return decorate if command is None else decorate(command)
