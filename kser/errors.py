"""Errors that the command line turns into one clear line instead of a traceback."""


class KserError(Exception):
    """A problem with the user's input or configuration, worded for the user."""


class SkipClip(Exception):
    """One input file cannot be used; the build records the reason and goes on."""


def first_line(error: BaseException) -> str:
    """The first line of ``error``'s message, or its type's name when it has none: what a one-line
    error quotes of a third-party library's exception (their messages can run to pages)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
