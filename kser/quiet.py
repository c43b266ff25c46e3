"""Quiet imports of TensorFlow and friends for command-line use.

TensorFlow's native start-up lines (oneDNN notices, "All log messages before
absl::InitializeLog()") are written straight to file descriptor 2 before any Python-side
setting can stop them. They say nothing a kser user can act on, so kser imports TensorFlow
with fd 2 pointed at /dev/null; Python exceptions still propagate normally. The first device
query is made there too: on a machine without a GPU, the ``tensorflow`` (CUDA) wheel reports
"failed call to cuInit" as an error line when it first looks for one, which is expected there.

Code paths reach TensorFlow in many ways (``import keras`` in a function, a module that imports
Keras at its top, TensorFlow importing JAX), so the command line does not rely on each of them
calling :func:`tensorflow` first: :func:`quiet_native_imports` makes the first import of each
native package quiet, whoever makes it.

``kser COMMAND --verbosity=1`` (absl's flag) sets ``KSER_NATIVE_LOGS=1`` and shows all of it.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.abc
import importlib.machinery
import logging
import os
import sys
import warnings
from types import ModuleType
from typing import Any, Iterator, Sequence


NATIVE_LOGS_ENV = "KSER_NATIVE_LOGS"
# Packages whose first import loads native code that writes to fd 2 (JAX: TensorFlow imports it).
NATIVE_PACKAGES = ("tensorflow", "jax", "jaxlib")


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
    try:
        with silenced_stderr():
            import tensorflow as tf

            _probe_devices(tf)
    except ModuleNotFoundError as error:
        if error.name != "tensorflow":
            raise
        from kser.errors import KserError

        raise KserError(f"{_caller_feature()} needs TensorFlow, which is not installed: pip install 'kser[tensorflow]'") from None
    return tf


def _caller_feature() -> str:
    """What asked for TensorFlow, for the one-line error: the first module outside this one."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame = frame.f_back
    module = frame.f_globals.get("__name__", "") if frame is not None else ""
    return module.replace("kser.", "kser's ", 1) if module.startswith("kser.") else "this command"


def _probe_devices(module: ModuleType) -> None:
    """Make TensorFlow's first device query, where CUDA's probe and its "no GPU" lines happen."""
    if module.__name__ == "tensorflow":
        module.config.list_physical_devices()


class _QuietLoader(importlib.abc.Loader):
    """The package's own loader, run with fd 2 silenced (and TensorFlow's device probe after it)."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def __getattr__(self, name: str) -> Any:  # resource readers, get_data, ...: the real loader's
        return getattr(self._loader, name)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        with silenced_stderr():
            self._loader.exec_module(module)
            _probe_devices(module)


class _QuietFinder(importlib.abc.MetaPathFinder):
    """Finds :data:`NATIVE_PACKAGES` as usual and hands back their specs with a quiet loader."""

    def find_spec(self, name: str, path: Sequence[str] | None, target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if name not in NATIVE_PACKAGES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def quiet_native_imports() -> None:
    """From now on, the first import of TensorFlow or JAX in this process is quiet, whoever makes it.

    Why here and not at each import: a command reaches TensorFlow through many paths, and one
    unsilenced ``import keras`` is enough to print the start-up lines. Call it once, early (the
    command line does, before importing a command).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if not native_logs_wanted():
        # JAX logs each accelerator plugin it fails to find ("Unable to initialize backend 'tpu'")
        # through Python logging, which absl prints at INFO; TensorFlow warns through it that
        # each cross-validation fold's new model "triggered tf.function retracing", as it must.
        logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
    if not any(isinstance(finder, _QuietFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietFinder())
