"""``small``: a compact CNN + BiGRU + attention-pooling model for CPU demos and as a base to improve on.

Why this shape: the study's models spend most of their compute in wide 5x3 convolutions at full time
resolution (model 2: about 11 GFLOPs per clip) and most of their parameters in one huge Dense/LSTM input
matrix, and all of them overfit CREMA-D. Here three narrow 3x3 Conv+BN blocks pool time 4x and frequency
8x early, a small projection feeds a bidirectional GRU over 75 steps, and attention pooling picks the
frames that carry the emotion. At the defaults that is about 0.25 M parameters and 0.37 GFLOPs per 3 s
clip, under a tenth of ``lstm`` (see :func:`kser.models.estimate_flops`).
"""

from __future__ import annotations

from typing import Sequence

import keras
from keras import layers

from kser.config import KSER_RECIPE
from kser.models.layers import AttentionPooling, UtteranceNormalization
from kser.models.registry import register

UTTERANCE_NORMS = ("none", "mean", "meanvar")


@register("small", KSER_RECIPE)
def build_small(
    num_classes: int,
    input_shape: tuple[int, int, int],
    *,
    utterance_norm: str = "none",
    input_norm: bool = True,
    stem_filters: int = 0,
    stem_strides: Sequence[int] = (2, 2),
    conv_filters: Sequence[int] = (32, 64, 96),
    conv_kernel: Sequence[int] = (3, 3),
    pool_sizes: Sequence[Sequence[int]] = ((2, 2), (2, 2), (1, 2)),
    block_dropout: float = 0.1,
    proj_units: int = 128,
    rnn_units: int = 64,
    bidirectional: bool = True,
    seq_dropout: float = 0.2,
    head_dropout: float = 0.3,
) -> keras.Model:
    """Compact CNN + (Bi)GRU + attention pooling; every width and rate is overridable.

    ``input_norm`` learns a per-(mel band, channel) BatchNormalization of the raw features: log-mel
    levels differ a lot between bands and deltas are near zero, so the convolutions see comparable
    scales without a separate statistics pass over the data. ``utterance_norm`` ("mean" or
    "meanvar") first normalises each clip's bands over time (:class:`UtteranceNormalization`).
    ``stem_filters > 0`` adds a strided 3x3 convolution before the blocks, so that the blocks run at
    a lower resolution (``stem_strides``; most of the cost of a CNN on 300 x 64 inputs is there).
    """
    if len(pool_sizes) != len(conv_filters):
        raise ValueError(
            f"pool_sizes needs one entry per conv block ({len(conv_filters)}), got {len(pool_sizes)}"
        )
    if utterance_norm not in UTTERANCE_NORMS:
        raise ValueError(f"utterance_norm must be one of {UTTERANCE_NORMS}, got {utterance_norm!r}")
    frames, bands, channels = input_shape
    inputs = keras.Input(shape=input_shape, name="features")
    x = inputs
    if utterance_norm != "none":
        x = UtteranceNormalization(scale=utterance_norm == "meanvar", name="utterance_norm")(x)
    if input_norm:
        x = layers.Reshape((frames, bands * channels), name="input_flatten")(x)
        x = layers.BatchNormalization(name="input_bn")(x)
        x = layers.Reshape((frames, bands, channels), name="input_unflatten")(x)
    if stem_filters:
        x = layers.Conv2D(stem_filters, (3, 3), strides=tuple(stem_strides), padding="same", use_bias=False, name="stem")(x)
        x = layers.BatchNormalization(name="stem_bn")(x)
        x = layers.Activation("relu", name="stem_relu")(x)
    for index, (filters, pool) in enumerate(zip(conv_filters, pool_sizes), start=1):
        # No conv bias: the BatchNorm right after it has its own shift.
        x = layers.Conv2D(filters, tuple(conv_kernel), padding="same", use_bias=False, name=f"conv{index}")(x)
        x = layers.BatchNormalization(name=f"bn{index}")(x)
        x = layers.Activation("relu", name=f"relu{index}")(x)
        x = layers.MaxPooling2D(tuple(pool), name=f"pool{index}")(x)
        if block_dropout:
            x = layers.SpatialDropout2D(block_dropout, name=f"block_dropout{index}")(x)
    _, steps, out_bands, out_channels = x.shape
    x = layers.Reshape((steps, out_bands * out_channels), name="to_sequence")(x)
    x = layers.Dense(proj_units, activation="relu", name="proj_dense")(x)
    if seq_dropout:
        x = layers.Dropout(seq_dropout, name="proj_dropout")(x)
    gru = layers.GRU(rnn_units, return_sequences=True, name="gru")
    x = layers.Bidirectional(gru, name="bigru")(x) if bidirectional else gru(x)
    x = AttentionPooling(name="attention_pooling")(x)
    if head_dropout:
        x = layers.Dropout(head_dropout, name="head_dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name="predictions")(x)
    return keras.Model(inputs, outputs, name="kser_small")
