"""Name -> builder registry behind :func:`kser.models.build`.

A registry (rather than an if/elif chain) lets new architectures be added in their own module with one
decorator, and lets the command line list what exists without knowing about each builder.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Sequence

import keras

from kser.config import Recipe

Builder = Callable[..., keras.Model]

_REGISTRY: dict[str, Builder] = {}
_RECIPES: dict[str, Recipe] = {}
_INPUT_RANKS: dict[str, int] = {}

DEFAULT_INPUT_SHAPE: tuple[int, int, int] = (300, 64, 3)  # (frames, mel bands, log-mel/delta/delta-delta)
DEFAULT_NUM_CLASSES: int = 6


def register(name: str, recipe: Recipe, input_rank: int = 3) -> Callable[[Builder], Builder]:
    """Decorator that records ``builder`` under ``name`` with the training ``recipe`` it comes with.

    A builder has the signature ``builder(num_classes, input_shape, *, <overridable keyword options>)``
    and returns a functional ``keras.Model`` whose last layer is a softmax. The recipe is required,
    so that no architecture silently trains with another's schedule. ``input_rank``: the rank of
    ``input_shape`` (3: frames, mel bands, channels; 2: a pretrained encoder's frames, width).
    """
    if not isinstance(recipe, Recipe):
        raise TypeError(f"architecture {name!r} needs a kser.config.Recipe, got {recipe!r}")

    def decorator(builder: Builder) -> Builder:
        if name in _REGISTRY and _REGISTRY[name] is not builder:
            raise ValueError(f"architecture {name!r} is already registered")
        _REGISTRY[name] = builder
        _RECIPES[name] = recipe
        _INPUT_RANKS[name] = input_rank
        return builder

    return decorator


def recipe(arch: str) -> Recipe:
    """The training recipe registered with ``arch``."""
    _get(arch)
    return _RECIPES[arch]


def input_rank(arch: str) -> int:
    """The rank of ``arch``'s ``input_shape``: 3 for features, 2 for a pretrained encoder's frames."""
    _get(arch)
    return _INPUT_RANKS[arch]


def available_architectures() -> list[str]:
    """The registered architecture names, sorted."""
    return sorted(_REGISTRY)


def builder_options(arch: str) -> dict[str, Any]:
    """The overridable keyword options of ``arch`` with their default values."""
    builder = _get(arch)
    return {
        name: param.default
        for name, param in inspect.signature(builder).parameters.items()
        if param.kind is inspect.Parameter.KEYWORD_ONLY
    }


def _get(arch: str) -> Builder:
    try:
        return _REGISTRY[arch]
    except KeyError:
        known = ", ".join(available_architectures()) or "(none)"
        raise ValueError(f"unknown architecture {arch!r}; known architectures: {known}") from None


def build(
    arch: str,
    num_classes: int = DEFAULT_NUM_CLASSES,
    input_shape: Sequence[int] = DEFAULT_INPUT_SHAPE,
    **overrides: Any,
) -> keras.Model:
    """Build the registered architecture ``arch``.

    ``overrides`` replace the builder's keyword defaults (widths, heads, dropouts, ...); an option the
    builder does not have is a ValueError naming the ones it has, so that a typo is never silently ignored.
    """
    builder = _get(arch)
    if int(num_classes) < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")
    input_shape = tuple(int(d) for d in input_shape)
    if len(input_shape) != _INPUT_RANKS[arch]:
        expected = "(frames, mel_bands, channels)" if _INPUT_RANKS[arch] == 3 else f"of rank {_INPUT_RANKS[arch]}"
        raise ValueError(f"{arch!r} takes an input_shape {expected}, got {input_shape}")
    options = builder_options(arch)
    unknown = sorted(set(overrides) - set(options))
    if unknown:
        raise ValueError(
            f"unknown option(s) {', '.join(unknown)} for architecture {arch!r}; "
            f"its options are: {', '.join(sorted(options))}"
        )
    return builder(int(num_classes), input_shape, **overrides)
