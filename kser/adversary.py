"""A speaker-adversarial head for training (``--speaker_adversary=SCALE``): the embedding learns to
forget who speaks.

Why: a corpus of 15 training speakers lets a classifier lean on speaker identity (voice, sentence
delivery) as a shortcut; on new speakers and corpora that shortcut fails. Domain-adversarial
training (Ganin & Lempitsky 2015) adds a head that predicts the speaker from the classifier's
pooled embedding (the input of its final Dense layer) through a gradient reversal layer: the head
learns to tell speakers apart, and the reversed gradient pushes the embedding to make that impossible.

How: the training model outputs ``[emotion probabilities | speaker probabilities]`` (one tensor,
so mixup, class weights and every input pipeline carry the targets unchanged: the speaker one-hot
over the training speakers is appended to the emotion one-hot, zeros for speakers outside them,
such as the validation split's); :class:`EmotionSpeakerLoss` adds the two cross-entropies, and the
metrics read the emotion part only. The head exists only in training: the saved, evaluated and
exported model is the classifier alone, unchanged in shape and cost.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

SPEAKER_HEAD_NAME = "speaker_predictions"


@keras.saving.register_keras_serializable(package="kser")
class GradientReversal(keras.layers.Layer):
    """Identity forward; the gradient multiplied by ``-scale`` backward, on every backend.

    ``x_stop + scale * (x_stop - x)`` equals ``x`` exactly and has gradient ``-scale``: no
    backend-specific custom gradient is needed."""

    def __init__(self, scale: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if scale < 0:
            raise ValueError(f"scale must be at least 0, got {scale}")
        self.scale = float(scale)

    def call(self, x: Any) -> Any:
        stopped = ops.stop_gradient(x)
        return stopped + self.scale * (stopped - x)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "scale": self.scale}


def with_speaker_adversary(core: keras.Model, num_speakers: int, scale: float) -> keras.Model:
    """``core`` (features -> emotion probabilities) with the speaker head beside it: features ->
    ``[emotion probabilities | speaker probabilities]``, sharing every weight of ``core``."""
    embedding_layer = core.layers[-1]  # the output layer: its input is the pooled embedding
    if not isinstance(embedding_layer, keras.layers.Dense):
        raise ValueError(f"--speaker_adversary needs a classifier that ends in a Dense layer; {core.name} ends in {type(embedding_layer).__name__}")
    if num_speakers < 2:
        raise ValueError(f"--speaker_adversary needs at least 2 training speakers, got {num_speakers}")
    with_embedding = keras.Model(core.inputs, [core.output, embedding_layer.input], name=f"{core.name}_with_embedding")
    features = keras.Input(core.input_shape[1:], name="features")
    emotions, embedding = with_embedding(features)
    reversed_embedding = GradientReversal(scale, name="gradient_reversal")(embedding)
    speakers = keras.layers.Dense(num_speakers, activation="softmax", dtype="float32", name=SPEAKER_HEAD_NAME)(reversed_embedding)
    both = keras.layers.Concatenate(name="emotions_and_speakers")([emotions, speakers])
    return keras.Model(features, both, name=f"{core.name}_with_speaker_adversary")


@keras.saving.register_keras_serializable(package="kser")
class EmotionSpeakerLoss(keras.losses.Loss):
    """Cross-entropy of the emotion part (label-smoothed) plus that of the speaker part, of targets
    and predictions laid out ``[emotions | speakers]``; a clip whose speaker part is all zeros
    (a speaker the head does not know) adds nothing for it."""

    def __init__(self, num_emotions: int, label_smoothing: float = 0.0, name: str = "emotion_speaker_loss", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.num_emotions = int(num_emotions)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        n = self.num_emotions
        emotion = keras.losses.categorical_crossentropy(y_true[..., :n], y_pred[..., :n], label_smoothing=self.label_smoothing)
        speaker_true = y_true[..., n:]
        speaker = -ops.sum(speaker_true * ops.log(ops.clip(y_pred[..., n:], 1e-7, 1.0)), axis=-1)
        return emotion + speaker

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_emotions": self.num_emotions, "label_smoothing": self.label_smoothing}


def emotion_accuracy(num_emotions: int) -> keras.metrics.Metric:
    """Categorical accuracy of the emotion part, named ``accuracy`` as the plain model's is."""

    def accuracy(y_true: Any, y_pred: Any) -> Any:
        return keras.metrics.categorical_accuracy(y_true[..., :num_emotions], y_pred[..., :num_emotions])

    return keras.metrics.MeanMetricWrapper(accuracy, name="accuracy")
