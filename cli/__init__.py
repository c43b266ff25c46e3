"""The ``kser`` command line."""
