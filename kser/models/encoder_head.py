"""``whisper``: a small classifier head over a pretrained encoder's frames (``--preset``).

The encoder itself is the model's front end (kser.whisper: frozen, its outputs cached per clip),
so what trains is only this: ``[batch, frames, width]`` -> dropout -> a projection to
``hidden_units`` (GELU) -> attention (or mean) pooling over frames -> dropout -> softmax. Small on
purpose: it learns from a few thousand clips, and the encoder already did the listening.
"""

from __future__ import annotations

import keras
from keras import layers

from kser.config import ENCODER_HEAD_RECIPE
from kser.models.layers import AttentionPooling
from kser.models.registry import register

POOLINGS = ("attention", "mean")


@register("whisper", ENCODER_HEAD_RECIPE, input_rank=2)
def build_encoder_head(
    num_classes: int,
    input_shape: tuple[int, int],
    *,
    hidden_units: int = 256,
    pooling: str = "attention",
    input_dropout: float = 0.1,
    head_dropout: float = 0.3,
) -> keras.Model:
    """Encoder frames -> class probabilities; ``hidden_units`` 0 pools the encoder's frames directly."""
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    inputs = keras.Input(shape=input_shape, name="encoder_frames")
    x = layers.Dropout(input_dropout, name="input_dropout")(inputs)
    if hidden_units:
        x = layers.Dense(hidden_units, activation="gelu", name="projection")(x)
    x = AttentionPooling(name="attention_pooling")(x) if pooling == "attention" else layers.GlobalAveragePooling1D(name="mean_pooling")(x)
    x = layers.Dropout(head_dropout, name="head_dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="whisper_head")
