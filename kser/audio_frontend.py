"""The model's own front end: one serialisable layer from clip-long waveforms to features.

Why a layer that owns sample rate, clip length, normalisation and feature settings: a trained
``model.keras`` is then a function of audio, not of features that every stage (training,
evaluation, export, predict, benchmarks) had to compute the same way by itself. keras-hub's
``AudioConverter`` is the pattern: the preprocessor lives in the saved model and can also run on
its own (here, inside tf.data, where a CPU computes features faster than the model would)::

    waveform [batch, clip_samples] float32 at sample_rate
      -> WaveformNormalization (per row: zero mean, unit variance; silent rows become zeros),
         when the training records were normalised
      -> LogMelDeltas [batch, frames, n_mels, 3]
         (+ kser.prosody's energy, voicing and relative pitch, broadcast over the mel bands, when
         FeatureConfig.prosody: [batch, frames, n_mels, 6])

The waveform classifier (:func:`waveform_classifier`) is ``Input -> AudioFrontEnd -> classifier``,
with the two as named sub-layers (:func:`front_end_of`, :func:`classifier_of`), so that training
can put augmentation between them and the exporters can swap the DFT for a portable one.

Normalisation runs on each clip-long window the model sees, in training as in deployment: every
runtime (SavedModel, LiteRT, ONNX, a Keras model under any backend) scores a window the same way.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import keras
from keras import ops

from kser.config import AudioConfig, FeatureConfig
from kser.errors import KserError
from kser.features import DFT_METHODS, LogMelDeltas, output_frames
from kser.prosody import CHANNELS as PROSODY_CHANNELS
from kser.prosody import prosody_contours

FRONT_END_NAME = "front_end"
CLASSIFIER_NAME = "classifier"
INPUT_NAME = "waveform"


@keras.saving.register_keras_serializable(package="kser")
class WaveformNormalization(keras.layers.Layer):
    """Per row: zero mean and unit variance, or all zeros where the std is below ``silence_std``.

    The float32 ``keras.ops`` form of ``kser.waveform.normalize`` (which computes in float64), as
    runtimes without float64 need: on clip-long rows the two agree to about 1e-6.
    """

    def __init__(self, silence_std: float = 1e-6, **kwargs: Any) -> None:
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.silence_std = float(silence_std)

    def call(self, waveforms: Any) -> Any:
        x = ops.cast(waveforms, "float32")
        centred = x - ops.mean(x, axis=-1, keepdims=True)
        std = ops.sqrt(ops.mean(ops.square(centred), axis=-1, keepdims=True))
        scale = ops.where(std < self.silence_std, 0.0, 1.0 / ops.maximum(std, self.silence_std))
        return centred * scale

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "silence_std": self.silence_std}


def _feature_settings(features: FeatureConfig) -> dict[str, Any]:
    """A FeatureConfig's fields without its sample rate, which the front end owns."""
    settings = dataclasses.asdict(features)
    settings.pop("sample_rate")
    return settings


class WaveformFrontEnd(keras.layers.Layer):
    """What every model front end is: clip-long waveforms ``[batch, clip_samples]`` at
    ``sample_rate`` -> the classifier's input (``output_feature_shape`` per clip).

    Training, evaluation, export and predict see a front end only through this: its clip, its
    output shape, ``with_dft`` (the exporters' portable spectrum) and ``describe`` (what
    kser_model.json records). ``cacheable``: frozen and deterministic, so training may compute its
    outputs once per clip (kser.feature_cache) instead of every epoch.
    """

    cacheable = False

    def __init__(self, sample_rate: int, clip_samples: int, dft: str = "rfft", **kwargs: Any) -> None:
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if not isinstance(sample_rate, int) or isinstance(sample_rate, bool) or sample_rate < 1:
            raise ValueError(f"sample_rate must be a positive whole number, got {sample_rate!r}")
        if not isinstance(clip_samples, int) or isinstance(clip_samples, bool) or clip_samples < 1:
            raise ValueError(f"clip_samples must be a positive whole number, got {clip_samples!r}")
        if dft not in DFT_METHODS:
            raise ValueError(f"dft must be one of {DFT_METHODS}, got {dft!r}")
        self.sample_rate = sample_rate
        self.clip_samples = clip_samples
        self.dft = dft

    def check_input_shape(self, input_shape: tuple[int | None, ...]) -> None:
        if len(input_shape) != 2 or input_shape[-1] != self.clip_samples:
            raise ValueError(
                f"{self.name} takes waveforms [batch, {self.clip_samples}] ({self.clip_samples} samples at "
                f"{self.sample_rate} Hz), got shape {tuple(input_shape)}"
            )

    @property
    def output_feature_shape(self) -> tuple[int, ...]:
        raise NotImplementedError

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (input_shape[0], *self.output_feature_shape)

    def with_dft(self, dft: str) -> "WaveformFrontEnd":
        """The same front end (same weights) computing its spectrum another way."""
        other = type(self).from_config({**self.get_config(), "dft": dft})
        other.build((None, self.clip_samples))
        other.set_weights(self.get_weights())
        return other

    def describe(self) -> dict[str, Any]:
        """What kser_model.json says of this front end beyond the records' audio settings."""
        return {"kind": "log_mel_deltas"}

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "sample_rate": self.sample_rate, "clip_samples": self.clip_samples, "dft": self.dft}


@keras.saving.register_keras_serializable(package="kser")
class AudioFrontEnd(WaveformFrontEnd):
    """Clip-long waveforms at ``sample_rate`` -> [normalisation] -> log-mel, delta, delta-delta.

    ``silence_std`` None: no normalisation (records built with ``AudioConfig.normalize=False``).
    ``features``: a FeatureConfig or its fields; its ``sample_rate`` is replaced by this layer's,
    the one place a model keeps it. ``dft``: how the power spectrum is computed
    (``kser.features.DFT_METHODS``); "matmul" for LiteRT and ONNX, same features.
    """

    def __init__(
        self,
        sample_rate: int,
        clip_samples: int,
        silence_std: float | None = 1e-6,
        features: FeatureConfig | dict[str, Any] | None = None,
        dft: str = "rfft",
        **kwargs: Any,
    ) -> None:
        super().__init__(sample_rate=sample_rate, clip_samples=clip_samples, dft=dft, **kwargs)
        settings = _feature_settings(features) if isinstance(features, FeatureConfig) else dict(features or {})
        settings.pop("sample_rate", None)
        self.silence_std = None if silence_std is None else float(silence_std)
        self.feature_config = FeatureConfig(sample_rate=sample_rate, **{
            name: tuple(value) if isinstance(value, list) else value for name, value in settings.items()
        })
        self.normalization = (
            None if self.silence_std is None else WaveformNormalization(self.silence_std, name="normalize")
        )
        self.features = LogMelDeltas(dataclasses.replace(self.feature_config, prosody=False), dft=dft, name="log_mel_deltas")

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.check_input_shape(input_shape)
        if self.normalization is not None:
            self.normalization.build(input_shape)
        self.features.build(input_shape)
        self.built = True

    def call(self, waveforms: Any) -> Any:
        x = waveforms if self.normalization is None else self.normalization(waveforms)
        features = self.features(x)
        if not self.feature_config.prosody:
            return features
        frames, n_mels, _ = self.output_feature_shape
        contours = prosody_contours(x, self.feature_config, frames, self.dft)  # [batch, frames, 3]
        contours = ops.broadcast_to(ops.expand_dims(contours, 2), (ops.shape(contours)[0], frames, n_mels, len(PROSODY_CHANNELS)))
        return ops.concatenate([features, contours], axis=-1)

    @property
    def output_feature_shape(self) -> tuple[int, int, int]:
        """[frames, mels, channels] of one clip (3, or 6 with prosody): the classifier's input shape."""
        channels = 3 + (len(PROSODY_CHANNELS) if self.feature_config.prosody else 0)
        return (output_frames(self.clip_samples, self.feature_config), self.feature_config.n_mels, channels)

    def describe(self) -> dict[str, Any]:
        described = super().describe()
        return {**described, "prosody": list(PROSODY_CHANNELS)} if self.feature_config.prosody else described

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "silence_std": self.silence_std, "features": _feature_settings(self.feature_config)}


def front_end_for(audio: AudioConfig, features: FeatureConfig = FeatureConfig()) -> AudioFrontEnd:
    """The front end of a model trained on records prepared with ``audio``: their sample rate and
    clip length, their normalisation, and ``features``' settings."""
    return AudioFrontEnd(
        sample_rate=audio.sample_rate,
        clip_samples=audio.clip_samples,
        silence_std=audio.silence_std if audio.normalize else None,
        features=features,
        name=FRONT_END_NAME,
    )


def model_front_end(arch: str, preset: str | None, audio: AudioConfig, features: FeatureConfig = FeatureConfig()) -> WaveformFrontEnd:
    """The front end a model of ``arch`` trains with on records prepared with ``audio``: a
    pretrained encoder loaded from ``preset`` (kser.whisper) or, for the architectures that train
    from scratch, :func:`front_end_for` with ``features``."""
    from kser.architectures import PRESET_ARCHITECTURES

    if arch in PRESET_ARCHITECTURES:
        from kser.whisper import load_front_end

        if features.prosody:
            raise KserError(f"--prosody adds channels to the log-mel front end; --arch={arch} uses its pretrained encoder's own")

        return load_front_end(preset or "", audio)
    return front_end_for(audio, features)


def waveform_classifier(front_end: WaveformFrontEnd, classifier: keras.Model, batch_size: int | None = None) -> keras.Model:
    """``waveform [batch, clip_samples] -> front_end -> classifier -> probabilities``, sharing the
    classifier's weights; ``batch_size`` static for converters that need it (LiteRT)."""
    waveform = keras.Input((front_end.clip_samples,), batch_size=batch_size, name=INPUT_NAME)
    probabilities = classifier(front_end(waveform))
    return keras.Model(waveform, probabilities, name="kser_waveform_classifier")


def is_waveform_classifier(model: keras.Model) -> bool:
    """Whether ``model`` takes waveforms through its own front end (not a features-in classifier)."""
    return any(isinstance(layer, WaveformFrontEnd) for layer in model.layers)


def front_end_of(model: keras.Model) -> WaveformFrontEnd:
    """The front end (an AudioFrontEnd, or another WaveformFrontEnd) inside a waveform classifier."""
    found = [layer for layer in model.layers if isinstance(layer, WaveformFrontEnd)]
    if len(found) != 1:
        raise ValueError(f"{model.name} is not a kser waveform classifier: it holds {len(found)} front-end layers")
    return found[0]


def classifier_of(model: keras.Model) -> keras.Model:
    """The features-in classifier inside a waveform classifier (the layer after its front end)."""
    front_end = front_end_of(model)
    rest = [layer for layer in model.layers if not isinstance(layer, (keras.layers.InputLayer, WaveformFrontEnd))]
    if len(rest) != 1:
        raise ValueError(f"{model.name} is not a kser waveform classifier: {len(rest)} layers follow {front_end.name}")
    return rest[0]


def with_dft(model: keras.Model, dft: str, batch_size: int | None = None) -> keras.Model:
    """``model`` (a waveform classifier) with its spectrum computed by ``dft``; same weights."""
    return waveform_classifier(front_end_of(model).with_dft(dft), classifier_of(model), batch_size=batch_size)
