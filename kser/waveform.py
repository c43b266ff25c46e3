"""Per-clip waveform preparation, as in the study: normalise, pad or trim, inject noise.

Pure numpy so that it runs in the record builder's light worker processes. The noise draws
come from a generator seeded by (build seed, clip id): the same clip gets the same noise
whatever the worker count or processing order.
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np

from kser.config import AudioConfig


@dataclasses.dataclass(frozen=True)
class PreparedClip:
    """A clip ready to be stored, and what happened to it on the way."""

    samples: np.ndarray  # float32, exactly AudioConfig.clip_samples long
    source_samples: int  # length before pad/trim, at the target rate
    silent: bool  # the clip had (near) zero variance and was left unscaled
    noise_amplitude: float


def clip_rng(seed: int, clip_id: str) -> np.random.Generator:
    """A generator that depends only on the build seed and the clip's id."""
    digest = hashlib.sha256(clip_id.encode("utf-8")).digest()
    return np.random.default_rng([seed, int.from_bytes(digest[:8], "little")])


def normalize(samples: np.ndarray, silence_std: float = 1e-6) -> tuple[np.ndarray, bool]:
    """Zero mean, unit variance; (samples, silent).

    A clip whose standard deviation is below ``silence_std`` has no signal to scale: it is
    only centred (so it becomes all zeros) and reported as silent instead of dividing by ~0.
    """
    centred = samples.astype(np.float64) - float(np.mean(samples, dtype=np.float64))
    std = float(np.std(centred))
    if std < silence_std:
        return np.zeros_like(samples, dtype=np.float32), True
    return (centred / std).astype(np.float32), False


TRIM_FRAME_SECONDS = 0.025
TRIM_HOP_SECONDS = 0.010
TRIM_MARGIN_SECONDS = 0.1


def speech_bounds(samples: np.ndarray, sample_rate: int, top_db: float) -> tuple[int, int]:
    """``[start, end)`` of what :func:`trim_silence` keeps of ``samples`` (the whole clip when ``top_db <= 0``)."""
    frame = max(1, int(round(TRIM_FRAME_SECONDS * sample_rate)))
    hop = max(1, int(round(TRIM_HOP_SECONDS * sample_rate)))
    if top_db <= 0 or samples.shape[0] <= frame:
        return 0, int(samples.shape[0])
    count = 1 + (samples.shape[0] - frame) // hop
    frames = np.lib.stride_tricks.sliding_window_view(samples.astype(np.float64, copy=False), frame)[::hop][:count]
    rms = np.sqrt(np.mean(np.square(frames - frames.mean(axis=1, keepdims=True)), axis=1))
    peak = float(rms.max())
    if peak <= 0:
        return 0, int(samples.shape[0])
    loud = np.flatnonzero(rms >= peak * 10.0 ** (-top_db / 20.0))
    margin = int(round(TRIM_MARGIN_SECONDS * sample_rate))
    return max(0, int(loud[0]) * hop - margin), min(int(samples.shape[0]), int(loud[-1]) * hop + frame + margin)


def trim_silence(samples: np.ndarray, sample_rate: int, top_db: float) -> np.ndarray:
    """The clip without its leading and trailing silence.

    Frames of 25 ms (10 ms hop) whose RMS is more than ``top_db`` below the loudest frame's are
    silence; everything from 100 ms before the first loud frame to 100 ms after the last one is kept
    (so soft onsets and releases survive). Why: acted corpora pad their sentences with up to a second
    of silence (RAVDESS), which a fixed 3 s crop would otherwise spend on nothing.
    """
    start, end = speech_bounds(samples, sample_rate, top_db)
    return samples if (start, end) == (0, samples.shape[0]) else samples[start:end]  # nothing cut: the clip itself


def pad_or_trim(samples: np.ndarray, length: int) -> np.ndarray:
    """Keep the first ``length`` samples, padding the end with silence (zeros)."""
    if samples.shape[0] >= length:
        return samples[:length]
    return np.pad(samples, (0, length - samples.shape[0]))


def add_peak_relative_noise(samples: np.ndarray, level: float, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """The study's noise: ``y + level * U(0,1) * max(y) * N(0,1)``; returns (noisy, amplitude)."""
    if level <= 0:
        return samples, 0.0
    amplitude = level * float(rng.uniform()) * max(float(np.max(samples)), 0.0)
    noise = rng.standard_normal(samples.shape[0], dtype=np.float32)
    return (samples + amplitude * noise).astype(np.float32), amplitude


def prepare(samples: np.ndarray, config: AudioConfig, rng: np.random.Generator) -> PreparedClip:
    """Study steps 2-4 on a mono clip already at ``config.sample_rate`` (after silence trimming, if set)."""
    source_samples = int(samples.shape[0])
    samples = trim_silence(samples, config.sample_rate, config.trim_db)
    silent = False
    if config.normalize:
        samples, silent = normalize(samples, config.silence_std)
    fixed = pad_or_trim(samples.astype(np.float32, copy=False), config.clip_samples)
    noisy, amplitude = add_peak_relative_noise(fixed, config.noise_level, rng)
    return PreparedClip(noisy, source_samples, silent, amplitude)


def encode_int16(samples: np.ndarray) -> tuple[bytes, float]:
    """Peak-scaled 16-bit PCM: (little-endian bytes, scale) with ``samples ~= pcm * scale``.

    The rounding error is at most scale / 2 = peak / 65534 per sample, i.e. about 96 dB
    below the clip's peak.
    """
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    scale = peak / 32767.0 if peak > 0 else 1.0
    pcm = np.clip(np.round(samples / scale), -32767, 32767).astype("<i2")
    return pcm.tobytes(), scale


def decode_int16(data: bytes, scale: float) -> np.ndarray:
    """Inverse of ``encode_int16``."""
    return np.frombuffer(data, dtype="<i2").astype(np.float32) * np.float32(scale)
