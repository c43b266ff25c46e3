"""Analytic compute estimate of a built model, to compare architectures without profiling.

Counts the multiply-accumulates of the matrix work (convolutions, dense projections, recurrent
steps, attention scores and weighted sums, attention pooling); element-wise work (activations,
BatchNorm, pooling, softmax) is ignored, as it is a small fraction for these models. FLOPs ~ 2 x MACs.
"""

from __future__ import annotations

import math

import keras
from keras import layers

from kser.models.layers import AttentionPooling


def _positions(shape: tuple[int | None, ...]) -> int:
    """Number of positions a per-position op is applied at (all axes but batch and features)."""
    return math.prod(int(d) for d in shape[1:-1]) if len(shape) > 2 else 1


def _size(variable: keras.Variable) -> int:
    return math.prod(int(d) for d in variable.shape)


def _rnn_macs(rnn: layers.Layer, steps: int) -> int:
    cell = rnn.cell
    return steps * (_size(cell.kernel) + _size(cell.recurrent_kernel))


def _attention_steps(layer: layers.MultiHeadAttention) -> tuple[int, int]:
    """(query steps, key steps) of the layer's first call; self-attention is assumed if unknown."""
    q_steps = int(layer.output.shape[1])
    try:
        arguments = layer._inbound_nodes[0].arguments
        args, kwargs = list(arguments.args), dict(arguments.kwargs)
        value = args[1] if len(args) > 1 else kwargs["value"]
        key = args[2] if len(args) > 2 else kwargs.get("key")
        return q_steps, int((key if key is not None else value).shape[1])
    except (AttributeError, IndexError, KeyError, TypeError):
        return q_steps, q_steps


def _layer_macs(layer: layers.Layer) -> int:
    if isinstance(layer, keras.Model):
        return estimate_macs(layer)
    if isinstance(layer, layers.Bidirectional):
        steps = int(layer.input.shape[1])
        return _rnn_macs(layer.forward_layer, steps) + _rnn_macs(layer.backward_layer, steps)
    if isinstance(layer, layers.RNN):  # LSTM, GRU, SimpleRNN
        return _rnn_macs(layer, int(layer.input.shape[1]))
    if isinstance(layer, layers.MultiHeadAttention):
        q_steps, k_steps = _attention_steps(layer)
        projections = (
            _size(layer._query_dense.kernel) * q_steps
            + _size(layer._key_dense.kernel) * k_steps
            + _size(layer._value_dense.kernel) * k_steps
            + _size(layer._output_dense.kernel) * q_steps
        )
        attention = q_steps * k_steps * layer.num_heads * (layer.key_dim + layer.value_dim)
        return projections + attention
    if isinstance(layer, AttentionPooling):
        shape = layer.input.shape
        return 2 * int(shape[1]) * int(shape[-1])
    if isinstance(layer, (layers.Dense, layers.EinsumDense)):
        return _size(layer.kernel) * _positions(layer.output.shape)
    if isinstance(layer, layers.SeparableConv2D):
        out = _positions(layer.output.shape)
        return (_size(layer.depthwise_kernel) + _size(layer.pointwise_kernel)) * out
    if isinstance(layer, (layers.Conv1D, layers.Conv2D, layers.DepthwiseConv2D)):
        kernel = layer.kernel
        return _size(kernel) * _positions(layer.output.shape)
    return 0


def estimate_macs(model: keras.Model) -> int:
    """Multiply-accumulates for one example through ``model`` (batch size 1)."""
    return sum(_layer_macs(layer) for layer in model.layers)


def estimate_flops(model: keras.Model) -> int:
    """Floating-point operations for one example: 2 x :func:`estimate_macs`."""
    return 2 * estimate_macs(model)
