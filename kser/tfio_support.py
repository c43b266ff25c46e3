"""Optional tensorflow-io support, detected once at run time.

tensorflow-io's last release (0.37.1) imports beside current TensorFlow but its native
kernels fail to load there, and importing it prints warnings. kser therefore never imports it
at module import time; the first caller that wants it gets a quiet, cached answer to
"do tensorflow-io's audio kernels actually run here?". ``KSER_DISABLE_TFIO=1`` forces no.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
from types import ModuleType

from kser.quiet import silenced_stderr, tensorflow


@functools.lru_cache(maxsize=None)
def load_tfio() -> ModuleType | None:
    """tensorflow_io when installed and its audio kernels run; None otherwise."""
    if os.environ.get("KSER_DISABLE_TFIO", "").strip() not in ("", "0"):
        return None
    if importlib.util.find_spec("tensorflow_io") is None:
        return None
    tf_logger = logging.getLogger("tensorflow")
    previous_level = tf_logger.level
    tf = tensorflow()
    with silenced_stderr():
        tf_logger.setLevel(logging.ERROR)
        try:
            import tensorflow_io as tfio

            tfio.audio.resample(tf.zeros([32, 1], tf.float32), rate_in=16_000, rate_out=8_000)
        except Exception:  # NotImplementedError, undefined symbols, ...: treat as absent
            return None
        finally:
            tf_logger.setLevel(previous_level)
    return tfio


def tfio_available() -> bool:
    """True when tensorflow-io is installed and its native audio kernels load."""
    return load_tfio() is not None
