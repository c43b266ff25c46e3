"""Custom layers shared by the architectures, written with ``keras.ops`` so they run on any backend."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kser")
class AttentionPooling(keras.layers.Layer):
    """Attention pooling over time: ``w = softmax(x @ v + b, axis=time)``, ``context = sum(w * x, axis=time)``.

    This is the study's earlier variant (``score = Dense(1)(x)``) as one layer, so that it has a name,
    serialises in a ``.keras`` file and costs ``features + 1`` parameters. Padded steps (a Keras mask) get
    zero weight.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.supports_masking = True

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        features = input_shape[-1]
        if features is None:
            raise ValueError("AttentionPooling needs a known feature dimension")
        self.score_kernel = self.add_weight(
            name="score_kernel", shape=(features, 1), initializer="glorot_uniform"
        )
        self.score_bias = self.add_weight(name="score_bias", shape=(1,), initializer="zeros")

    def call(self, inputs: Any, mask: Any = None) -> Any:
        score = ops.matmul(inputs, ops.cast(self.score_kernel, inputs.dtype))
        score = score + ops.cast(self.score_bias, inputs.dtype)  # (batch, time, 1)
        if mask is not None:
            # -1e4 rather than -inf: a fully masked row stays finite, and it fits in float16.
            score = ops.where(ops.expand_dims(mask, -1), score, ops.cast(-1e4, score.dtype))
        weights = ops.softmax(score, axis=1)
        return ops.sum(inputs * weights, axis=1)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (input_shape[0], input_shape[-1])

    def compute_mask(self, inputs: Any, mask: Any = None) -> None:
        return None


@keras.saving.register_keras_serializable(package="kser")
class UtteranceNormalization(keras.layers.Layer):
    """Per-clip normalisation over time: each (band, channel) minus its mean over the clip's frames,
    and divided by its standard deviation when ``scale``.

    Why: a recording's channel, level and the speaker's voice shift every band's average log energy;
    the emotion lives more in how the bands move than in where they sit. Subtracting the per-clip mean
    (cepstral mean normalisation, in the log-mel domain) removes the fixed offsets; parameter-free, so
    training and serving compute the same thing for every clip.
    """

    def __init__(self, scale: bool = True, epsilon: float = 1e-3, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scale = bool(scale)
        self.epsilon = float(epsilon)

    def call(self, inputs: Any) -> Any:
        centred = inputs - ops.mean(inputs, axis=1, keepdims=True)
        if not self.scale:
            return centred
        return centred / ops.sqrt(ops.mean(ops.square(centred), axis=1, keepdims=True) + self.epsilon)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "scale": self.scale, "epsilon": self.epsilon}
