"""A pretrained Whisper encoder as a model's front end (``kser train --arch=whisper --preset=...``).

    waveform [batch, clip_samples] at 16 kHz
      -> per-row normalisation, then scaled to ``level`` RMS (Whisper heard speech at recording
         levels; kser's records are normalised to unit variance)
      -> WhisperLogMel: the preset's WhisperAudioConverter features, written in ``keras.ops``
      -> the preset's Whisper encoder (keras-hub's WhisperBackbone, encoder half only), frozen
      -> [batch, ceil(frames / 2), hidden_dim]

Why our own log-mel layer rather than the converter itself: keras-hub's converter is a
preprocessing layer (tf.signal or NumPy), which neither runs inside a JAX model nor exports to
LiteRT or ONNX; the trained model must own its front end on every backend. The converter still
defines the features: ``tests/test_whisper.py`` holds the layer to it. The encoder runs on the
clip's own frames, not padded to Whisper's 30 s (its position embedding is sliced to the length),
which costs a tenth of the padded input for 3 s clips.

keras-hub is needed to build the encoder (``pip install kser[hub]``); importing this module is not.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras import ops

from kser.audio_frontend import WaveformFrontEnd, WaveformNormalization
from kser.config import AudioConfig, FeatureConfig
from kser.errors import KserError
from kser.features import DFT_METHODS, analysis_window, dft_basis, mel_filterbank

# The WhisperBackbone settings that shape its encoder (the decoder's are not kept).
ENCODER_SETTINGS = ("num_layers", "num_heads", "hidden_dim", "intermediate_dim", "num_mels", "max_encoder_sequence_length")
# The WhisperAudioConverter settings that shape its features.
CONVERTER_SETTINGS = ("num_mels", "num_fft_bins", "stride", "sampling_rate")
DEFAULT_LEVEL = 0.1  # RMS of the encoder's input: speech at about -20 dBFS
HUB_INSTALL = "pip install 'kser[hub]' (see the README's Pretrained encoders section)"


def require_keras_hub() -> Any:
    """keras_hub, or a one-line KserError saying how to install it."""
    try:
        import keras_hub
    except ImportError as error:
        raise KserError(f"--arch=whisper needs keras-hub, which is not installed ({error}); {HUB_INSTALL}") from None
    return keras_hub


def converter_features(converter: dict[str, Any]) -> FeatureConfig:
    """The FeatureConfig whose window, mel bank and DFT basis are the converter's: a periodic Hann
    window over the whole ``num_fft_bins`` frame and librosa's Slaney mel bank up to Nyquist."""
    n_fft = int(converter["num_fft_bins"])
    return FeatureConfig(
        sample_rate=int(converter["sampling_rate"]), n_fft=n_fft, win_length=n_fft, hop_length=int(converter["stride"]),
        window="hann", n_mels=int(converter["num_mels"]), num_frames=None,
    )


@keras.saving.register_keras_serializable(package="kser")
class WhisperLogMel(keras.layers.Layer):
    """WhisperAudioConverter's log-mel of clip-long waveforms, in ``keras.ops``.

    Frames of ``num_fft_bins`` (reflect-padded on the left, zeros on the right) every ``stride`` samples (the last one dropped, as
    the converter does), Hann window, power spectrum, Slaney mel, ``log10(max(., 1e-10))``,
    clamped to 8 below the clip's maximum, then ``(x + 4) / 4``. ``dft``: "rfft" or "matmul" (the
    portable one, as in kser.features). Output ``[batch, samples // stride, num_mels]``.
    """

    def __init__(self, converter: dict[str, Any], dft: str = "rfft", **kwargs: Any) -> None:
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if dft not in DFT_METHODS:
            raise ValueError(f"dft must be one of {DFT_METHODS}, got {dft!r}")
        self.converter = {name: int(converter[name]) for name in CONVERTER_SETTINGS}
        self.dft = dft
        self.config = converter_features(self.converter)

    def frames(self, samples: int) -> int:
        """Frames of a ``samples``-long clip."""
        return samples // self.config.hop_length

    def call(self, waveforms: Any) -> Any:
        config = self.config
        n_fft, hop = config.n_fft, config.hop_length
        samples = int(waveforms.shape[-1])
        if samples <= n_fft // 2:
            raise ValueError(f"{self.name} needs clips longer than {n_fft // 2} samples, got {samples}")
        x = ops.cast(waveforms, "float32")
        half = n_fft // 2
        # Reflect padding on the left, by slicing (ops.pad's reflect mode is not on every backend
        # and runtime); zeros on the right, as the converter's clip is followed by its 30 s padding.
        x = ops.concatenate([ops.flip(x[:, 1 : half + 1], axis=1), x, ops.zeros_like(x[:, :half])], axis=1)
        step = math.gcd(hop, n_fft)
        count = self.frames(samples)
        chunks = ops.reshape(x[:, : (samples + 2 * half) // step * step], (-1, (samples + 2 * half) // step, step))
        per_frame = n_fft // step
        if self.dft == "rfft":
            indices = np.arange(count)[:, None] * (hop // step) + np.arange(per_frame)
            frames = ops.reshape(ops.take(chunks, indices.astype("int32"), axis=1), (-1, n_fft))
            real, imag = ops.rfft(frames * ops.convert_to_tensor(analysis_window(config).astype("float32")))
            power = ops.matmul(real * real + imag * imag, ops.convert_to_tensor(mel_filterbank(config)))
        else:
            basis = dft_basis(config, step)
            indices = np.arange(count)[:, None] * (hop // step) + np.arange(basis.first, basis.stop)
            frames = ops.reshape(ops.take(chunks, indices.astype("int32"), axis=1), (-1, indices.shape[1] * step))
            parts = ops.matmul(frames, ops.convert_to_tensor(basis.basis))
            power = ops.matmul(parts * parts, ops.convert_to_tensor(basis.mel))
        log_spec = ops.reshape(ops.log(ops.maximum(power, 1e-10)) / math.log(10.0), (-1, count, config.n_mels))
        floor = ops.max(log_spec, axis=(1, 2), keepdims=True) - 8.0
        return (ops.maximum(log_spec, floor) + 4.0) / 4.0

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (input_shape[0], self.frames(int(input_shape[-1])), self.config.n_mels)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "converter": dict(self.converter), "dft": self.dft}


def encoder_model(encoder: dict[str, Any]) -> keras.Model:
    """The encoder half of a WhisperBackbone with these settings (randomly initialised):
    ``[batch, frames, num_mels] -> [batch, ceil(frames / 2), hidden_dim]``. The decoder built
    with it is tiny (two tokens) and dropped: no decoder weight is kept."""
    keras_hub = require_keras_hub()
    backbone = keras_hub.models.WhisperBackbone(
        vocabulary_size=2, max_decoder_sequence_length=2, **{name: encoder[name] for name in ENCODER_SETTINGS}
    )
    return encoder_of(backbone)


def encoder_of(backbone: Any) -> keras.Model:
    """A WhisperBackbone's encoder half as a model sharing its layers and weights (no decoder)."""
    return keras.Model(backbone.input["encoder_features"], backbone.output["encoder_sequence_output"], name="whisper_encoder")


@keras.saving.register_keras_serializable(package="kser")
class WhisperEncoderFrontEnd(WaveformFrontEnd):
    """Clip-long waveforms -> normalised to ``level`` RMS -> WhisperLogMel -> frozen Whisper
    encoder (see the module docstring). ``preset``: where the weights came from (informational)."""

    cacheable = True  # frozen and deterministic: its outputs can be computed once per clip

    def __init__(
        self,
        sample_rate: int,
        clip_samples: int,
        converter: dict[str, Any],
        encoder: dict[str, Any],
        level: float = DEFAULT_LEVEL,
        dft: str = "rfft",
        preset: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(sample_rate=sample_rate, clip_samples=clip_samples, dft=dft, **kwargs)
        if int(converter["sampling_rate"]) != sample_rate:
            raise KserError(
                f"the Whisper preset takes audio at {converter['sampling_rate']} Hz, the records hold {sample_rate} Hz; "
                f"build the records with --sample_rate={converter['sampling_rate']}"
            )
        if int(converter["num_mels"]) != int(encoder["num_mels"]):
            raise KserError(f"the preset's converter makes {converter['num_mels']} mel bands, its encoder takes {encoder['num_mels']}")
        self.converter = {name: int(converter[name]) for name in CONVERTER_SETTINGS}
        self.encoder_settings = {name: encoder[name] for name in ENCODER_SETTINGS}
        self.level = float(level)
        self.preset = str(preset)
        self.normalization = WaveformNormalization(name="normalize")
        self.log_mel = WhisperLogMel(self.converter, dft=dft, name="whisper_log_mel")
        frames = self.log_mel.frames(clip_samples)
        limit = int(self.encoder_settings["max_encoder_sequence_length"])
        if frames > limit:
            raise KserError(
                f"the Whisper encoder takes at most {limit} frames ({limit * self.converter['stride'] / sample_rate:g} s); "
                f"the records' clips give {frames}: build them with a shorter --clip_seconds"
            )
        self.encoder = encoder_model(self.encoder_settings)
        self.encoder.trainable = False

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.check_input_shape(input_shape)
        self.built = True

    def call(self, waveforms: Any) -> Any:
        log_mel = self.log_mel(self.normalization(waveforms) * self.level)
        return self.encoder(log_mel, training=False)

    @property
    def output_feature_shape(self) -> tuple[int, int]:
        """[encoder frames, hidden_dim] of one clip: the head's input shape."""
        frames = self.log_mel.frames(self.clip_samples)
        return (-(-frames // 2), int(self.encoder_settings["hidden_dim"]))

    @property
    def feature_config(self) -> FeatureConfig:
        """The STFT and mel settings of the encoder's input (what kser_model.json records)."""
        return self.log_mel.config

    def macs(self) -> int:
        """Multiply-accumulates per clip (kser.models.flops' convention: matrix work only): the
        mel projection, the two convolutions, and per encoder block the four attention
        projections, the attention scores and weighted sums, and the feed-forward pair."""
        frames = self.log_mel.frames(self.clip_samples)
        steps, width = self.output_feature_shape
        mels, hidden = self.converter["num_mels"], int(self.encoder_settings["intermediate_dim"])
        spectrum = frames * (self.converter["num_fft_bins"] // 2 + 1) * mels
        stem = frames * 3 * mels * width + steps * 3 * width * width
        block = 4 * steps * width * width + 2 * steps * steps * width + 2 * steps * width * hidden
        return spectrum + stem + int(self.encoder_settings["num_layers"]) * block

    def describe(self) -> dict[str, Any]:
        return {"kind": "whisper", "preset": self.preset, "converter": dict(self.converter), "encoder": dict(self.encoder_settings), "level": self.level}

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "converter": dict(self.converter),
            "encoder": dict(self.encoder_settings),
            "level": self.level,
            "preset": self.preset,
        }


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:200]}" if text else type(error).__name__


def _preset_error(preset: str, error: Exception, known: list[str]) -> KserError:
    """One line saying why ``preset`` did not load and what to pass instead."""
    if Path(preset).expanduser().exists():
        return KserError(f"--preset={preset}: not a keras-hub Whisper preset folder ({_first_line(error)})")
    if "://" not in preset and preset not in known:
        return KserError(
            f"--preset={preset} is neither a folder nor a keras-hub Whisper preset; the presets are {', '.join(known)}, "
            "or pass a local preset folder"
        )
    reason = "the kagglehub package is not installed" if isinstance(error, ImportError) else _first_line(error)
    return KserError(
        f"--preset={preset} could not be downloaded ({reason}); without internet, pass a local preset folder "
        "(one written by save_to_preset, or the preset downloaded elsewhere and copied here), e.g. --preset=/path/to/whisper_base_en"
    )


def load_front_end(preset: str, audio: AudioConfig) -> WhisperEncoderFrontEnd:
    """The front end of ``preset`` (a keras-hub preset name or a local preset folder) for records
    prepared with ``audio``: the converter's settings and the encoder's pretrained weights."""
    keras_hub = require_keras_hub()
    source = str(Path(preset).expanduser().resolve()) if Path(preset).expanduser().exists() else preset
    try:
        backbone = keras_hub.models.WhisperBackbone.from_preset(source)
        converter = keras_hub.layers.WhisperAudioConverter.from_preset(source)
    except KserError:
        raise
    except Exception as error:  # keras-hub raises many kinds: missing files, no network, bad JSON
        raise _preset_error(preset, error, sorted(keras_hub.models.WhisperBackbone.presets)) from None
    settings = {name: getattr(converter, name) for name in CONVERTER_SETTINGS}
    front_end = WhisperEncoderFrontEnd(
        sample_rate=audio.sample_rate,
        clip_samples=audio.clip_samples,
        converter=settings,
        encoder={name: getattr(backbone, name) for name in ENCODER_SETTINGS},
        preset=source,
        name="front_end",
    )
    front_end.build((None, audio.clip_samples))
    front_end.encoder.set_weights(encoder_of(backbone).get_weights())
    del backbone
    return front_end


def save_preset(folder: str | Path, *, num_layers: int = 1, num_heads: int = 2, hidden_dim: int = 8,
                intermediate_dim: int = 16, num_mels: int = 80, max_encoder_sequence_length: int = 3000,
                vocabulary_size: int = 16, seed: int = 0) -> Path:
    """A randomly initialised Whisper written as a local keras-hub preset (backbone and audio
    converter): what the tests and the benchmark load where no real preset can be downloaded.
    The default widths are tiny; ``whisper_tiny_en``'s are 4 layers, 6 heads, 384, 1536."""
    keras_hub = require_keras_hub()
    keras.utils.set_random_seed(seed)
    folder = Path(folder)
    backbone = keras_hub.models.WhisperBackbone(
        vocabulary_size=vocabulary_size, num_layers=num_layers, num_heads=num_heads, hidden_dim=hidden_dim,
        intermediate_dim=intermediate_dim, num_mels=num_mels, max_encoder_sequence_length=max_encoder_sequence_length,
        max_decoder_sequence_length=16,
    )
    backbone.save_to_preset(str(folder))
    keras_hub.layers.WhisperAudioConverter(num_mels=num_mels).save_to_preset(str(folder))
    return folder


__all__ = [
    "DEFAULT_LEVEL",
    "WhisperEncoderFrontEnd",
    "WhisperLogMel",
    "converter_features",
    "encoder_model",
    "load_front_end",
    "require_keras_hub",
    "save_preset",
]
