"""Quiet imports of TensorFlow and friends for command-line use.

TensorFlow's native start-up lines (oneDNN notices, "All log messages before
absl::InitializeLog()") are written straight to file descriptor 2 before any Python-side
setting can stop them. They say nothing a kser user can act on, so kser imports TensorFlow
with fd 2 pointed at /dev/null; Python exceptions still propagate normally. The first device
query is made there too: on a machine without a GPU, the ``tensorflow`` (CUDA) wheel reports
"failed call to cuInit" as an error line when it first looks for one, which is expected there.

``kser COMMAND --verbosity=1`` (absl's flag) sets ``KSER_NATIVE_LOGS=1`` and shows all of it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import warnings
from types import ModuleType
from typing import Iterator


NATIVE_LOGS_ENV = "KSER_NATIVE_LOGS"


def native_logs_wanted() -> bool:
    """Whether the user asked to see TensorFlow's native start-up lines."""
    return os.environ.get(NATIVE_LOGS_ENV) == "1"


@contextlib.contextmanager
def silenced_stderr() -> Iterator[None]:
    """Hide native-library chatter (written straight to fd 2) and Python warnings."""
    if native_logs_wanted():
        yield
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            saved_fd = os.dup(2)
        except OSError:
            yield
            return
        try:
            with open(os.devnull, "w") as devnull:
                os.dup2(devnull.fileno(), 2)
                yield
        finally:
            os.dup2(saved_fd, 2)
            os.close(saved_fd)


@functools.lru_cache(maxsize=None)
def tensorflow() -> ModuleType:
    """The tensorflow module, imported once without its native start-up noise."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with silenced_stderr():
        import tensorflow as tf

        tf.config.list_physical_devices()  # CUDA's probe and its "no GPU" line happen here, hidden
    return tf
