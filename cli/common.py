"""Helpers shared by the command modules."""

from __future__ import annotations

import functools
import sys
from typing import Callable

from kser.errors import KserError


def reports_errors(command: Callable[[list[str]], None]) -> Callable[[list[str]], None]:
    """Turn KserError into one clear line and exit 1; Ctrl-C into exit 130, no traceback."""

    @functools.wraps(command)
    def wrapped(argv: list[str]) -> None:
        if len(argv) > 1:
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
