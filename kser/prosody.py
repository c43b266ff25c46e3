"""Prosody contours in ``keras.ops``: per-frame energy, voicing and relative pitch, aligned with the
log-mel frames, as extra input channels (``FeatureConfig.prosody``).

Why: pitch movement and loudness are the emotion cues best known to carry across speakers and
languages, and a CNN on 64 mel bands sees them only indirectly (a few resolved harmonics, band
sums). Here they are computed in the graph, so the model still owns its whole front end and
every runtime (tf.data, any Keras backend, LiteRT, ONNX) computes them the same way.

How, per clip of ``N`` samples at ``sample_rate``:
  1. low-pass (windowed sinc, ``CUTOFF_HZ``) and decimate by ``d`` to about 8 kHz, the largest ``d``
     dividing ``hop_length``, so frames stay aligned with the log-mel frames (at 4 kHz the lag grid
     was too coarse: peaks at the period fell below those at twice the period);
  2. frame ``t`` is ``WINDOW_SECONDS`` centred where log-mel frame ``t`` is centred, plus the
     longest lag; its normalised autocorrelation ``r(tau) / sqrt(e(0) e(tau))`` for pitches in
     ``[FMIN_HZ, FMAX_HZ]`` (``_lag_products``: an FFT, or plain ops for the exporters);
  3. every local maximum is refined by a parabola through its neighbours; the pitch is the
     shortest-lag peak within ``OCTAVE_TOLERANCE`` of the tallest (against octave-down errors),
     and that peak's height is the voicing strength (0 in frames ``SILENCE_DB`` below the loudest).
Channels, in order: low-band energy in dB relative to the clip's loudest frame (floored at
``ENERGY_FLOOR_DB``), voicing strength in [0, 1], and pitch in semitones relative to the clip's
voicing-weighted mean pitch (0 on frames below ``VOICED``). Relative pitch, not absolute: the
absolute level says more about the speaker (sex, age) than about the emotion.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import numpy as np
from keras import ops

from kser.config import FeatureConfig

FMIN_HZ = 50.0
FMAX_HZ = 450.0
CUTOFF_HZ = 1000.0
TARGET_RATE_HZ = 8000.0
WINDOW_SECONDS = 0.04  # two periods of FMIN_HZ
OCTAVE_TOLERANCE = 0.1  # a shorter lag's peak this much below the tallest still wins
VOICED = 0.6  # voicing strength above which a frame's pitch counts
SILENCE_DB = -30.0  # frames this far below the clip's loudest are unvoiced (Praat's silence threshold, 0.03)
ENERGY_FLOOR_DB = -80.0
CHANNELS = ("energy_db", "voicing", "pitch_semitones")
_EPS = 1e-10


@dataclasses.dataclass(frozen=True)
class _Plan:
    """Static sizes and float32 constants for one (feature config, clip length)."""

    factor: int  # decimation
    rate: float  # decimated sample rate
    lowpass: np.ndarray  # [taps, 1, 1]
    half_taps: int
    lags: tuple[int, ...]  # lag_min - 1 .. lag_max + 1 (neighbours for the peak test)
    window: int  # autocorrelation window, decimated samples
    pad_left: int
    pad_right: int
    starts: np.ndarray  # [frames] first decimated (padded) sample of each frame
    span: int  # window + largest lag
    fft_size: int  # a power of two >= span: "rfft"'s cross-correlation does not wrap


def decimation_factor(sample_rate: int, hop_length: int) -> int:
    """The largest divisor of ``hop_length`` that keeps the rate at or above ``TARGET_RATE_HZ``."""
    limit = max(1, int(sample_rate // TARGET_RATE_HZ))
    return max(d for d in range(1, limit + 1) if hop_length % d == 0)


@functools.lru_cache(maxsize=16)
def _plan(config: FeatureConfig, num_samples: int, frames: int) -> _Plan:
    factor = decimation_factor(config.sample_rate, config.hop_length)
    rate = config.sample_rate / factor
    if rate / 2 <= FMAX_HZ:
        raise ValueError(f"prosody channels need a sample rate above {2 * FMAX_HZ:.0f} Hz, got {config.sample_rate}")
    half_taps = 8 * factor
    taps = np.arange(-half_taps, half_taps + 1)
    cutoff = min(CUTOFF_HZ, 0.45 * rate) / config.sample_rate  # cycles per input sample
    lowpass = 2 * cutoff * np.sinc(2 * cutoff * taps) * np.hamming(taps.size)
    lowpass /= lowpass.sum()
    lag_min, lag_max = int(math.floor(rate / FMAX_HZ)), int(math.ceil(rate / FMIN_HZ))
    window = int(round(WINDOW_SECONDS * rate))
    hop = config.hop_length // factor
    centre_offset = 0 if config.center else config.n_fft // 2  # where frame t is centred, after t * hop
    decimated = -(-num_samples // factor)
    centres = np.arange(frames) * hop + centre_offset // factor
    pad_left = window // 2
    starts = centres - window // 2 + pad_left
    span = window + lag_max + 1
    pad_right = max(0, int(starts[-1]) + span - (decimated + pad_left))
    lags = tuple(range(lag_min - 1, lag_max + 2))
    return _Plan(
        factor=factor,
        rate=rate,
        lowpass=lowpass.astype(np.float32).reshape(-1, 1, 1),
        half_taps=half_taps,
        lags=lags,
        window=window,
        pad_left=pad_left,
        pad_right=pad_right,
        starts=starts.astype(np.int32),
        span=span,
        fft_size=1 << (span - 1).bit_length(),
    )


def _lag_products(head: Any, framed: Any, plan: _Plan, dft: str) -> Any:
    """``sum_j head[j] framed[j + tau]`` for every lag of ``plan``: ``[batch, frames, lags]``.

    "rfft": one cross-correlation per frame through a zero-padded FFT (no circular wrap reaches
    the lags used), about 7x faster on a CPU; "matmul": a slice-multiply-sum per lag, plain ops
    that LiteRT and ONNX have (``kser.features.DFT_METHODS``); the two agree to float32 rounding.
    """
    if dft == "rfft":
        head_real, head_imag = ops.rfft(head, fft_length=plan.fft_size)
        real, imag = ops.rfft(framed, fft_length=plan.fft_size)
        spectrum = (head_real * real + head_imag * imag, head_real * imag - head_imag * real)  # conj(head) * framed
        correlation = ops.irfft(spectrum, fft_length=plan.fft_size)
        return correlation[..., plan.lags[0] : plan.lags[-1] + 1]
    return ops.stack([ops.sum(head * framed[..., lag : lag + plan.window], axis=-1) for lag in plan.lags], axis=-1)


def pitch_track(waveforms: Any, config: FeatureConfig, frames: int, dft: str = "rfft") -> tuple[Any, Any, Any]:
    """``[batch, samples]`` float waveforms -> ``(pitch_hz, voicing, energy)``, each ``[batch, frames]``:
    frame ``t`` centred where log-mel frame ``t`` of ``config`` is; ``pitch_hz`` is meaningful where
    ``voicing`` is high; ``energy`` is the frame's mean low-band power."""
    num_samples = int(waveforms.shape[-1])
    plan = _plan(config, num_samples, frames)
    x = ops.cast(waveforms, "float32")

    # 1. Low-pass and decimate in one strided convolution ("same" centring by explicit padding).
    x = ops.pad(x, [[0, 0], [plan.half_taps, plan.half_taps + plan.factor]])
    low = ops.conv(ops.expand_dims(x, -1), ops.convert_to_tensor(plan.lowpass), strides=plan.factor, padding="valid")
    low = low[:, : -(-num_samples // plan.factor), 0]

    # 2. Frames [batch, frames, span], then the normalised autocorrelation per lag.
    low = ops.pad(low, [[0, 0], [plan.pad_left, plan.pad_right]])
    indices = plan.starts[:, None] + np.arange(plan.span, dtype=np.int32)[None, :]
    framed = ops.take(low, ops.convert_to_tensor(indices), axis=1)
    head = framed[..., : plan.window]
    products = _lag_products(head, framed, plan, dft)
    # Every shifted window's energy from one running sum: e(tau) = S[tau + window] - S[tau].
    running = ops.pad(ops.cumsum(framed * framed, axis=-1), [[0, 0], [0, 0], [1, 0]])
    lags = np.asarray(plan.lags, dtype=np.int32)
    shifted_energy = ops.take(running, lags + plan.window, axis=-1) - ops.take(running, lags, axis=-1)
    energy = running[..., plan.window]
    nacf = products / ops.sqrt(ops.expand_dims(energy, -1) * ops.maximum(shifted_energy, 0.0) + _EPS)  # [batch, frames, lags]

    # 3. Every local maximum's height and position refined by a parabola through its neighbours
    # (the lag grid is coarse at the decimated rate), then the shortest-lag peak near the tallest.
    left, centre, right = nacf[..., :-2], nacf[..., 1:-1], nacf[..., 2:]
    is_peak = ops.logical_and(centre >= left, centre > right)
    curvature = left - 2.0 * centre + right
    bent = curvature < -1e-6
    slope = 0.5 * (left - right)
    shift = ops.where(bent, ops.clip(slope / ops.where(bent, curvature, -1.0), -0.5, 0.5), 0.0)
    height = centre + 0.5 * slope * shift
    height = ops.where(is_peak, height, -2.0)
    tallest = ops.max(height, axis=-1, keepdims=True)
    # The shortest lag whose peak is nearly as tall as the tallest: a periodic signal correlates
    # as well at 2T, 3T ... as at its period T, and a coarse lag grid can sample T's peak lower.
    # int32: Keras's float argmax adds a sign-bit test (BitwiseAnd), which LiteRT lacks.
    candidate = ops.cast(height >= tallest - OCTAVE_TOLERANCE, "int32")  # peaks only: the others are at -2
    best = ops.expand_dims(ops.argmax(candidate, axis=-1), -1)

    def at(values: Any) -> Any:
        return ops.squeeze(ops.take_along_axis(values, best, axis=-1), -1)

    lag = ops.cast(at(ops.broadcast_to(ops.convert_to_tensor(np.asarray(plan.lags[1:-1], np.float32)), ops.shape(shift))), "float32")
    lag = lag + at(shift)
    # A frame is voiced where a peak exists and it is not near-silence: a quiet hum or room tone
    # correlates with itself too (on RAVDESS the gate lifts agreement with pYIN from 70% to 82%).
    audible = energy > ops.max(energy, axis=-1, keepdims=True) * (10.0 ** (SILENCE_DB / 10.0))
    found = ops.logical_and(ops.squeeze(tallest, -1) > -1.0, audible)
    voicing = ops.where(found, ops.clip(at(height), 0.0, 1.0), 0.0)
    return plan.rate / lag, voicing, energy / plan.window


def prosody_contours(waveforms: Any, config: FeatureConfig, frames: int, dft: str = "rfft") -> Any:
    """``[batch, samples]`` float waveforms -> ``[batch, frames, 3]``, the ``CHANNELS``."""
    pitch, voicing, energy = pitch_track(waveforms, config, frames, dft)
    semitones = 12.0 * ops.log2(pitch)
    weight = ops.where(voicing > VOICED, voicing, 0.0)
    mean = ops.sum(weight * semitones, axis=-1, keepdims=True) / (ops.sum(weight, axis=-1, keepdims=True) + _EPS)
    relative_pitch = ops.where(weight > 0.0, semitones - mean, 0.0)
    level = 10.0 * ops.log10(energy + _EPS)
    level = ops.maximum(level - ops.max(level, axis=-1, keepdims=True), ENERGY_FLOOR_DB)
    return ops.stack([level, voicing, relative_pitch], axis=-1)
