"""kser's Keras layers registered for ``keras.saving`` whenever Keras is loaded, after ``import kser``.

Why: a saved ``model.keras`` names kser's layers (``kser>AudioFrontEnd``); Keras finds them only
once their modules have run. ``import kser`` stays cheap (no Keras: the record builder's workers
and ``kser --help`` start fast), so it calls :func:`register_when_keras_loads`: with Keras already
imported the layers are registered at once, otherwise as soon as Keras has been imported and no
kser module is half-way through its own import (registering then would import it circularly).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from types import ModuleType
from typing import Any, Sequence

# The modules whose import registers every layer and metric a kser model.keras can hold.
LAYER_MODULES = (
    "kser.audio_frontend", "kser.augment", "kser.features", "kser.models", "kser.callbacks", "kser.whisper", "kser.speaker_norm",
)
_state = {"registered": False}


def register() -> None:
    """Import the modules that register kser's Keras objects (Keras must be importable)."""
    for name in LAYER_MODULES:
        importlib.import_module(name)
    _state["registered"] = True


def _kser_module_initialising() -> bool:
    """Whether a kser submodule is half-way through its import (the package itself may be: its
    ``__init__`` importing submodules is the normal order)."""
    return any(
        name.startswith("kser.") and getattr(getattr(module, "__spec__", None), "_initializing", False)
        for name, module in list(sys.modules.items())
    )


def _register_if_ready() -> None:
    if not _state["registered"] and "keras" in sys.modules and not _kser_module_initialising():
        register()


class _ThenRegister(importlib.abc.Loader):
    """A module's own loader, followed by the registration once it can run."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        spec = getattr(module, "__spec__", None)
        if spec is not None:
            spec._initializing = False  # importlib clears it only after this returns
        _register_if_ready()


class _RegistrationFinder(importlib.abc.MetaPathFinder):
    """Finds Keras and kser's submodules as usual; their loaders register kser's objects after them."""

    def find_spec(self, name: str, path: Sequence[str] | None, target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if _state["registered"] or not (name == "keras" or name.startswith("kser.")):
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None and not isinstance(spec.loader, _ThenRegister):
            spec.loader = _ThenRegister(spec.loader)
        return spec


def register_when_keras_loads() -> None:
    """Register kser's Keras objects now if Keras is loaded, else right after it is."""
    if "keras" in sys.modules and not _kser_module_initialising():
        register()
    elif not any(isinstance(finder, _RegistrationFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _RegistrationFinder())  # before the finders that would find Keras themselves
