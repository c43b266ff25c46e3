"""The reference study's architectures, layer for layer as in its Keras summaries (docs: study.md).

Defaults reproduce the study's parameter counts exactly; what the study does not state (number of
attention heads, unlabeled dropout rates, the L2 factor) is chosen here and overridable. The heads x
key_dim product is what the parameter counts pin down: 64 for ``gru`` and ``lstm_ft``, 256 for ``lstm``.
"""

from __future__ import annotations

from typing import Sequence

import keras
from keras import layers

from kser.config import STUDY_FT_RECIPE, STUDY_RECIPE
from kser.models.layers import AttentionPooling
from kser.models.registry import register


def _conv_block(
    x: keras.KerasTensor,
    index: int,
    filters: int,
    kernel: Sequence[int],
    pool: Sequence[int],
    batch_norm: bool,
    l2: float = 0.0,
) -> keras.KerasTensor:
    """Conv2D(relu, same) -> [BatchNorm] -> MaxPool, the study's convolutional unit."""
    x = layers.Conv2D(
        filters,
        tuple(kernel),
        padding="same",
        activation="relu",
        kernel_regularizer=keras.regularizers.L2(l2) if l2 else None,
        name=f"conv{index}",
    )(x)
    if batch_norm:
        x = layers.BatchNormalization(name=f"bn{index}")(x)
    return layers.MaxPooling2D(tuple(pool), name=f"pool{index}")(x)


def _to_sequence(x: keras.KerasTensor) -> keras.KerasTensor:
    """(time, freq, channels) -> (time, freq * channels): each frame becomes one feature vector."""
    _, frames, bands, channels = x.shape
    return layers.Reshape((frames, bands * channels), name="to_sequence")(x)


def _classifier(
    x: keras.KerasTensor, num_classes: int, head_units: int, head_dropout: float
) -> keras.KerasTensor:
    """Dense(relu) -> [Dropout] -> Dense softmax (float32, so mixed precision keeps exact probabilities)."""
    x = layers.Dense(head_units, activation="relu", name="head_dense")(x)
    if head_dropout:
        x = layers.Dropout(head_dropout, name="head_dropout")(x)
    return layers.Dense(num_classes, activation="softmax", dtype="float32", name="predictions")(x)


def _lstm_trunk(
    inputs: keras.KerasTensor,
    conv_filters: Sequence[int],
    conv_kernel: Sequence[int],
    pool_size: Sequence[int],
    rnn_units: int,
    seq_dropout: float,
    l2: float,
) -> keras.KerasTensor:
    """Models 2/3 trunk: two Conv+BN+pool blocks pooling frequency only, then an LSTM over all frames."""
    x = inputs
    for index, filters in enumerate(conv_filters, start=1):
        x = _conv_block(x, index, filters, conv_kernel, pool_size, batch_norm=True, l2=l2)
    x = _to_sequence(x)
    x = layers.LSTM(rnn_units, return_sequences=True, name="lstm")(x)
    return layers.Dropout(seq_dropout, name="seq_dropout")(x)


@register("gru", STUDY_RECIPE)
def build_gru(
    num_classes: int,
    input_shape: tuple[int, int, int],
    *,
    conv_filters: Sequence[int] = (128, 256),
    conv_kernel: Sequence[int] = (5, 3),
    pool_size: Sequence[int] = (2, 2),
    proj_units: int = 768,
    rnn_units: int = 128,
    seq_dropout: float = 0.3,
    num_heads: int = 4,
    key_dim: int = 16,
    attn_dropout: float = 0.0,
    head_units: int = 64,
) -> keras.Model:
    """Study model 1, CNN + GRU + multi-head self-attention (4,030,982 parameters at the defaults).

    Pooling halves time and frequency twice (300 -> 75 steps); a Dense projection feeds the GRU; the
    attention output is added back to the GRU output (residual) and layer-normalised before averaging.
    """
    inputs = keras.Input(shape=input_shape, name="features")
    x = inputs
    for index, filters in enumerate(conv_filters, start=1):
        x = _conv_block(x, index, filters, conv_kernel, pool_size, batch_norm=False)
    x = _to_sequence(x)
    x = layers.Dense(proj_units, activation="relu", name="proj_dense")(x)
    x = layers.GRU(rnn_units, return_sequences=True, name="gru")(x)
    x = layers.Dropout(seq_dropout, name="seq_dropout")(x)
    attention = layers.MultiHeadAttention(num_heads, key_dim, dropout=attn_dropout, name="mhsa")(x, x)
    x = layers.Add(name="residual_add")([x, attention])
    x = layers.LayerNormalization(name="layer_norm")(x)
    x = layers.GlobalAveragePooling1D(name="time_average")(x)
    outputs = _classifier(x, num_classes, head_units, head_dropout=0.0)
    return keras.Model(inputs, outputs, name="kser_gru")


@register("lstm", STUDY_RECIPE)
def build_lstm(
    num_classes: int,
    input_shape: tuple[int, int, int],
    *,
    conv_filters: Sequence[int] = (128, 256),
    conv_kernel: Sequence[int] = (5, 3),
    pool_size: Sequence[int] = (1, 2),
    rnn_units: int = 128,
    seq_dropout: float = 0.3,
    num_heads: int = 4,
    key_dim: int = 64,
    attn_dropout: float = 0.0,
    head_units: int = 64,
    head_dropout: float = 0.3,
) -> keras.Model:
    """Study model 2, CNN + LSTM + multi-head self-attention (2,803,014 params, 768 non-trainable).

    Pooling only along frequency keeps all 300 frames for the LSTM; no residual and no LayerNorm
    after the attention. The study does not give its two dropout rates; 0.3 follows model 1.
    """
    inputs = keras.Input(shape=input_shape, name="features")
    x = _lstm_trunk(inputs, conv_filters, conv_kernel, pool_size, rnn_units, seq_dropout, l2=0.0)
    x = layers.MultiHeadAttention(num_heads, key_dim, dropout=attn_dropout, name="mhsa")(x, x)
    x = layers.GlobalAveragePooling1D(name="time_average")(x)
    outputs = _classifier(x, num_classes, head_units, head_dropout)
    return keras.Model(inputs, outputs, name="kser_lstm")


@register("lstm_ft", STUDY_FT_RECIPE)
def build_lstm_ft(
    num_classes: int,
    input_shape: tuple[int, int, int],
    *,
    conv_filters: Sequence[int] = (64, 128),
    conv_kernel: Sequence[int] = (5, 3),
    pool_size: Sequence[int] = (1, 2),
    l2: float = 1e-3,
    rnn_units: int = 128,
    seq_dropout: float = 0.5,
    num_heads: int = 4,
    key_dim: int = 16,
    attn_dropout: float = 0.0,
    head_units: int = 64,
    head_dropout: float = 0.5,
) -> keras.Model:
    """Study model 3, the smaller regularised CNN + LSTM + MHSA (1,283,334 params, 384 non-trainable).

    Half-width convolutions with L2 (factor not given by the study; 1e-3 here), Dropout 0.5, and a
    LayerNormalization on the attention output (no residual in the study's table).
    """
    inputs = keras.Input(shape=input_shape, name="features")
    x = _lstm_trunk(inputs, conv_filters, conv_kernel, pool_size, rnn_units, seq_dropout, l2=l2)
    x = layers.MultiHeadAttention(num_heads, key_dim, dropout=attn_dropout, name="mhsa")(x, x)
    x = layers.LayerNormalization(name="layer_norm")(x)
    x = layers.GlobalAveragePooling1D(name="time_average")(x)
    outputs = _classifier(x, num_classes, head_units, head_dropout)
    return keras.Model(inputs, outputs, name="kser_lstm_ft")


@register("attn_pool", STUDY_RECIPE)
def build_attn_pool(
    num_classes: int,
    input_shape: tuple[int, int, int],
    *,
    conv_filters: Sequence[int] = (128, 256),
    conv_kernel: Sequence[int] = (5, 3),
    pool_size: Sequence[int] = (1, 2),
    rnn_units: int = 128,
    seq_dropout: float = 0.3,
    head_units: int = 64,
    head_dropout: float = 0.3,
) -> keras.Model:
    """The study's earlier variant: the ``lstm`` trunk with attention pooling instead of MHSA + average.

    One learned score per frame, softmax over time, weighted sum: ``rnn_units + 1`` parameters where
    MHSA costs 131,968, and the pooling itself says which frames the decision rests on.
    """
    inputs = keras.Input(shape=input_shape, name="features")
    x = _lstm_trunk(inputs, conv_filters, conv_kernel, pool_size, rnn_units, seq_dropout, l2=0.0)
    x = AttentionPooling(name="attention_pooling")(x)
    outputs = _classifier(x, num_classes, head_units, head_dropout)
    return keras.Model(inputs, outputs, name="kser_attn_pool")
