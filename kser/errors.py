"""Errors that the command line turns into one clear line instead of a traceback."""


class KserError(Exception):
    """A problem with the user's input or configuration, worded for the user."""


class SkipClip(Exception):
    """One input file cannot be used; the build records the reason and goes on."""
