"""Model builders: ``kser.models.build(arch, num_classes, input_shape, **overrides)``.

Every model maps [batch, frames, mel bands, 3] features (log-mel, delta, delta-delta; the feature
front-end is not part of the model), or for ``whisper`` a pretrained encoder's [batch, frames,
width] (``input_rank``), to softmax class probabilities, uses only Keras layers and
``keras.ops`` (so it runs on the TensorFlow and JAX backends), and saves to / loads from ``.keras``.

Architectures: ``gru``, ``lstm``, ``lstm_ft`` and ``attn_pool`` reproduce the reference study;
``small`` is a compact model for CPU demos. New ones register with ``@register("name")``.
"""

import importlib

from kser.models.registry import (
    DEFAULT_INPUT_SHAPE,
    DEFAULT_NUM_CLASSES,
    available_architectures,
    build,
    builder_options,
    input_rank,
    recipe,
    register,
)
from kser.models.layers import AttentionPooling, UtteranceNormalization
from kser.models.flops import estimate_flops, estimate_macs

from kser.architectures import BUILTIN_MODULES, builtin_architectures


def _import_builtins() -> None:
    """Import the built-in builders for their @register side effect, and hold them to the catalog."""
    for module in BUILTIN_MODULES:
        importlib.import_module(module)
    if available_architectures() != builtin_architectures():
        raise ImportError(
            f"kser.architectures lists {builtin_architectures()} but the builders registered "
            f"{available_architectures()}; update kser.architectures.BUILTIN_MODULES"
        )


_import_builtins()

__all__ = [
    "AttentionPooling",
    "UtteranceNormalization",
    "DEFAULT_INPUT_SHAPE",
    "DEFAULT_NUM_CLASSES",
    "available_architectures",
    "builtin_architectures",
    "build",
    "builder_options",
    "input_rank",
    "recipe",
    "estimate_flops",
    "estimate_macs",
    "register",
]
