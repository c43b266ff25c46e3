"""The built-in architectures by name, readable without importing Keras.

Importing Keras imports TensorFlow, 7-9 s on a small CPU machine, and ``kser train --help`` or a
mistyped flag must not wait for it. So the names live here, with the module that registers them;
``kser.models`` imports exactly these modules and checks on import that together they register
exactly these names, so this list cannot drift from the registry.
"""

from __future__ import annotations

BUILTIN_MODULES: dict[str, tuple[str, ...]] = {
    "kser.models.small": ("small",),
    "kser.models.study": ("gru", "lstm", "lstm_ft", "attn_pool"),
    "kser.models.encoder_head": ("whisper",),
}

# Architectures whose front end is a pretrained encoder loaded from --preset (kser.whisper).
PRESET_ARCHITECTURES: tuple[str, ...] = ("whisper",)


def builtin_architectures() -> list[str]:
    """The built-in architecture names, sorted (as ``available_architectures()`` lists them)."""
    return sorted(name for names in BUILTIN_MODULES.values() for name in names)
