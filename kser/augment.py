"""In-graph training augmentation: waveform (pitch, gain, noise) and SpecAugment layers.

The reference study's model 3 augmented offline (25% extra copies). Here the same
augmentations run on every batch with fresh random draws, as two weightless Keras layers::

    waveforms -> WaveformAugment -> LogMelDeltas -> SpecAugment -> model

Both act only when called with ``training=True`` and are the identity otherwise (bit for
bit), so validation, test and exported models are never augmented. ``call()`` uses only
``keras.ops`` and ``keras.random``, so they are meant to run under the TensorFlow, JAX and
PyTorch backends (tested under TensorFlow, incl. XLA; the JAX test runs where jax is
installed), at the front of a model on the accelerator, or (TensorFlow backend) inside a
``tf.data`` pipeline on the CPU.

Randomness: each layer holds a ``keras.random.SeedGenerator(seed)``. Keras random ops are
stateless functions of a seed; the generator is a small int64 state variable that is read
and advanced on every draw, so every call (every batch, every epoch) gets new draws and the
whole sequence is reproducible from ``seed`` (``None``: a random seed). This also works inside
``tf.data.Dataset.map`` under the TensorFlow backend: the traced map function captures the
state variable by reference and its ``assign`` runs on each element, exactly as for Keras's
own ``RandomFlip``/``Dropout`` (checked against Keras 3.15: ``DataLayer`` only swaps the
backend module when the Keras backend is not TensorFlow; with TensorFlow it uses this same
generator). Three caveats, all tested or documented: the generator must be created
eagerly (it is, in ``__init__``), so build the layer outside ``map``; with
``num_parallel_calls > 1`` two calls can read the generator's state before either advances
it and so repeat a draw (seen here), so map these layers sequentially (they are vectorised
over the batch, so a sequential map costs little); and a
``.cache()`` placed after the augmentation would freeze it (cache before, augment after).
Under the JAX or PyTorch backend, ``keras.ops`` cannot run on ``tf.data`` symbolic
tensors: put the layers inside the model there (a jitted JAX train step threads the
generator state through as a non-trainable variable).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import keras
import numpy as np
from keras import ops

from kser.config import AUGMENT_PITCH_METHODS, AugmentConfig

_AUGMENT_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(AugmentConfig))

# Phase vocoder STFT: 32 ms Hann frames with 75% overlap at 16 kHz (the usual 4x overlap
# that keeps the phase-advance estimate unambiguous for stationary partials).
VOCODER_N_FFT = 512
VOCODER_HOP = 128


# --------------------------------------------------------------------------- helpers


def _static_samples(waveforms: Any) -> int:
    shape = tuple(waveforms.shape)
    if len(shape) != 2 or shape[-1] is None:
        raise ValueError(
            f"expected waveforms [batch, samples] with a static number of samples, got {shape}"
        )
    return int(shape[-1])


def _read_at(signal: Any, positions: Any) -> Any:
    """``signal[b, positions[b, m]]`` by linear interpolation, 0 outside the signal.

    ``signal``: ``[batch, length]`` (static length); ``positions``: float ``[batch, m]``.
    One flat ``take`` per neighbour with per-row offsets (plain gathers, fine under every
    backend and XLA); a zero sample padded at each end makes out-of-range reads silent.
    """
    length = int(signal.shape[-1])
    padded = ops.pad(signal, [[0, 0], [1, 1]])  # padded[k] = signal[k - 1]
    positions = ops.clip(positions, -2.0, float(length + 1))
    base = ops.floor(positions)
    frac = positions - base
    j0 = ops.cast(base, "int32") + 1
    j1 = ops.minimum(j0 + 1, length + 1)
    j0 = ops.clip(j0, 0, length + 1)
    j1 = ops.clip(j1, 0, length + 1)
    offsets = ops.arange(ops.shape(signal)[0], dtype="int32")[:, None] * (length + 2)
    flat = ops.reshape(padded, (-1,))
    v0 = ops.take(flat, j0 + offsets)
    v1 = ops.take(flat, j1 + offsets)
    return v0 + frac * (v1 - v0)


def resample_speed(waveforms: Any, ratio: Any) -> Any:
    """Speed perturbation: ``out[b, n] = y[b, n * ratio[b]]`` (linear interpolation).

    Pitch and tempo both scale by ``ratio``; the result keeps the input length (the tail is
    zero-padded when ``ratio > 1``, cut when ``ratio < 1``). No anti-aliasing filter: for
    ``ratio <= 2**(2/12)`` only content above ~7.1 kHz folds back, where speech at 16 kHz
    has little energy.
    """
    num_samples = _static_samples(waveforms)
    ratio = ops.reshape(ops.cast(ratio, "float32"), (-1, 1))
    positions = ops.arange(num_samples, dtype="float32")[None, :] * ratio
    return _read_at(ops.cast(waveforms, "float32"), positions)


def time_stretch(
    waveforms: Any,
    stretch: Any,
    length: int,
    n_fft: int = VOCODER_N_FFT,
    hop: int = VOCODER_HOP,
) -> Any:
    """Phase-vocoder time stretch: clip ``b`` lasts ``stretch[b]`` times longer, same pitch.

    librosa's ``phase_vocoder`` (``time_stretch(y, rate=1 / stretch)``, zero-padded centred
    Hann STFT), vectorised over clips that each have their own rate: output frame ``t``
    interpolates the magnitudes of analysis frames ``j = floor(t / stretch)`` and ``j + 1``
    and advances its phase by their measured phase difference, ``angle(X[j+1] * conj(X[j]))``
    (already wrapped, so no expected-advance bookkeeping); the running phase is an exclusive
    ``cumsum`` over output frames instead of librosa's Python loop. Per analysis frame the
    magnitude, next magnitude and phase step sit in one row, fetched by one row gather. Like
    librosa's, it has no phase locking, hence the same mild "phasiness". Returns
    ``[batch, length]``.
    """
    x = ops.cast(waveforms, "float32")
    _static_samples(x)
    stretch = ops.reshape(ops.cast(stretch, "float32"), (-1, 1))
    bins = n_fft // 2 + 1
    # Centred frames with zero padding (librosa's default pad_mode="constant"), plus one
    # extra frame length of zeros at the end so that the last samples, once stretched, are
    # still covered by a full set of overlapping frames.
    x = ops.pad(x, [[0, 0], [n_fft // 2, n_fft // 2 + n_fft]])
    real, imag = ops.stft(x, n_fft, hop, n_fft, window=_hann(n_fft), center=False)
    frames = int(real.shape[1])
    # Two silent frames at the end, as librosa pads: output frames past the clip read silence.
    real = ops.pad(real, [[0, 0], [0, 2], [0, 0]])
    imag = ops.pad(imag, [[0, 0], [0, 2], [0, 0]])
    magnitude = ops.sqrt(real * real + imag * imag)
    # Phase step from frame j to j + 1: the angle of X[j+1] * conj(X[j]).
    step = ops.arctan2(
        imag[:, 1:] * real[:, :-1] - real[:, 1:] * imag[:, :-1],
        real[:, 1:] * real[:, :-1] + imag[:, 1:] * imag[:, :-1],
    )
    table = ops.concatenate([magnitude[:, :-1], magnitude[:, 1:], step], axis=-1)
    last = frames  # index of the first silent frame's row (rows: frames + 1)

    out_frames = -(-length // hop) + 1
    steps = ops.arange(out_frames, dtype="float32")[None, :] / stretch  # [batch, out_frames]
    base = ops.floor(steps)
    alpha = ops.expand_dims(steps - base, -1)
    index = ops.minimum(ops.cast(base, "int32"), last)
    offsets = ops.arange(ops.shape(x)[0], dtype="int32")[:, None] * (frames + 1)
    rows = ops.take(ops.reshape(table, (-1, 3 * bins)), index + offsets, axis=0)
    mag0, mag1, increment = rows[..., :bins], rows[..., bins : 2 * bins], rows[..., 2 * bins :]
    out_magnitude = mag0 + alpha * (mag1 - mag0)
    start = ops.arctan2(imag[:, :1], real[:, :1])
    phase = start + ops.cumsum(increment, axis=1) - increment  # exclusive running sum
    stretched = _inverse_stft(
        out_magnitude * ops.cos(phase), out_magnitude * ops.sin(phase), n_fft, hop
    )
    return stretched[:, n_fft // 2 : n_fft // 2 + length]


@functools.lru_cache(maxsize=16)
def _hann(n_fft: int) -> np.ndarray:
    """Periodic Hann window (librosa's and ``tf.signal``'s STFT default)."""
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)
    return _readonly(window.astype(np.float32))


def _readonly(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def _inverse_stft(real: Any, imag: Any, n_fft: int, hop: int) -> Any:
    """Hann-windowed overlap-add of ``irfft`` frames ``[batch, frames, bins]``, divided by the
    exact window-square envelope (as librosa's ``istft``; ``tf.signal``'s constant
    normalisation is off by up to 17% in the first and last ``n_fft - hop`` samples).
    Overlap-add without scatter: each frame is cut into ``n_fft // hop`` hop-sized chunks and
    chunk ``q`` of frame ``j`` lands in output chunk ``j + q`` (a few shifted adds).
    Returns ``[batch, (frames - 1) * hop + n_fft]``.
    """
    if n_fft % hop:
        raise ValueError(f"n_fft ({n_fft}) must be a multiple of hop ({hop})")
    chunks = n_fft // hop
    frames = int(real.shape[1])
    window = _hann(n_fft)
    windowed = ops.irfft((real, imag), n_fft) * window
    pieces = ops.reshape(windowed, (-1, frames, chunks, hop))
    total = None
    for q in range(chunks):
        shifted = ops.pad(pieces[:, :, q], [[0, 0], [q, chunks - 1 - q], [0, 0]])
        total = shifted if total is None else total + shifted
    return ops.reshape(total, (-1, (frames + chunks - 1) * hop)) * _ola_scale(n_fft, hop, frames)


@functools.lru_cache(maxsize=16)
def _ola_scale(n_fft: int, hop: int, frames: int) -> np.ndarray:
    """1 / (sum of the squared Hann windows over ``frames`` frames), 1 where it is ~0."""
    squared = (_hann(n_fft).astype(np.float64) ** 2).reshape(n_fft // hop, hop)
    envelope = np.zeros((frames + n_fft // hop - 1, hop))
    for q, piece in enumerate(squared):
        envelope[q : q + frames] += piece
    envelope = envelope.reshape(-1)
    scale = np.where(envelope > 1e-8, 1.0 / np.maximum(envelope, 1e-8), 1.0)
    return _readonly(scale.astype(np.float32))


def shift_pitch(
    waveforms: Any,
    semitones: Any,
    max_semitones: float | None = None,
    method: str = "vocoder",
) -> Any:
    """Shift clip ``b`` by ``semitones[b]`` (ratio ``r = 2**(semitones / 12)``), same length.

    ``method="vocoder"`` (default) keeps the duration, like ``librosa.effects.pitch_shift``
    (the study's likely tool): a phase-vocoder time stretch by ``r``, then linear-interpolation
    resampling by ``r`` back to the input length; speaking rate, itself an emotion cue, is
    unchanged. It costs two STFTs. ``method="resample"`` only resamples by ``r``: pitch AND
    tempo change by ``r`` (speed perturbation), one gather, much cheaper.
    ``max_semitones`` is a static bound on ``|semitones|`` that sizes the stretched
    intermediate; ``None`` reads it from concrete (eager) ``semitones``.
    """
    if method not in AUGMENT_PITCH_METHODS:
        raise ValueError(f"method must be one of {AUGMENT_PITCH_METHODS}, got {method!r}")
    x = ops.cast(waveforms, "float32")
    num_samples = _static_samples(x)
    semitones = ops.reshape(ops.cast(semitones, "float32"), (-1,))
    ratio = ops.power(2.0, semitones / 12.0)
    if method == "resample":
        return resample_speed(x, ratio)
    if max_semitones is None:
        try:
            max_semitones = float(np.max(np.abs(ops.convert_to_numpy(semitones))))
        except Exception as error:  # symbolic tensors (tf.function, tf.data, jit)
            raise ValueError(
                "shift_pitch needs a static max_semitones when semitones is symbolic"
            ) from error
    stretched_length = int(math.ceil(num_samples * 2.0 ** (abs(max_semitones) / 12.0))) + 2
    stretched = time_stretch(x, ratio, stretched_length)
    positions = ops.arange(num_samples, dtype="float32")[None, :] * ratio[:, None]
    return _read_at(stretched, positions)


def fft_convolve(waveforms: Any, kernels: Any) -> Any:
    """Per-clip linear convolution ``waveforms[b] * kernels[b]``, cut to the input length
    (``[batch, samples]`` and ``[batch, taps]``; one real FFT of ``samples + taps`` per signal)."""
    samples, taps = _static_samples(waveforms), int(kernels.shape[-1])
    size = samples + taps
    x_real, x_imag = ops.rfft(ops.pad(waveforms, [[0, 0], [0, taps]]), size)
    k_real, k_imag = ops.rfft(ops.pad(kernels, [[0, 0], [0, samples]]), size)
    product = (x_real * k_real - x_imag * k_imag, x_real * k_imag + x_imag * k_real)
    return ops.irfft(product, size)[:, :samples]


def room_impulse_responses(noise: Any, rt60: Any, direct_to_reverb_db: Any, sample_rate: int) -> Any:
    """Synthetic room impulse responses ``[batch, taps]``: a unit direct path, then Gaussian
    ``noise`` decaying by 60 dB over ``rt60[b]`` seconds (Polack's model of a diffuse tail),
    scaled so that the direct path carries ``direct_to_reverb_db[b]`` dB more energy than the tail."""
    taps = int(noise.shape[-1])
    seconds = ops.arange(taps, dtype="float32")[None, :] / float(sample_rate)
    noise, rt60 = ops.cast(noise, "float32"), ops.cast(rt60, "float32")
    direct_to_reverb_db = ops.cast(direct_to_reverb_db, "float32")
    tail = noise * ops.exp(-math.log(1000.0) * seconds / ops.reshape(rt60, (-1, 1)))
    tail = ops.concatenate([ops.zeros_like(tail[:, :1]), tail[:, 1:]], axis=1)
    energy = ops.sum(tail * tail, axis=1, keepdims=True)
    wanted = ops.power(10.0, -ops.reshape(direct_to_reverb_db, (-1, 1)) / 10.0)
    tail = tail * ops.sqrt(wanted / ops.maximum(energy, 1e-12))
    direct = ops.concatenate([ops.ones_like(tail[:, :1]), ops.zeros_like(tail[:, 1:])], axis=1)
    return direct + tail


def channel_response(samples: int, sample_rate: int, high_pass: Any, low_pass: Any, tilt_db: Any) -> Any:
    """Gain per real-FFT bin ``[batch, samples // 2 + 1]`` of a random channel: soft high-pass and
    low-pass edges at ``high_pass[b]`` / ``low_pass[b]`` Hz and a tilt of ``tilt_db[b]`` dB per
    octave around 1 kHz (a microphone, a telephone line, a small loudspeaker)."""
    hertz = ops.arange(samples // 2 + 1, dtype="float32")[None, :] * (float(sample_rate) / samples)
    high_pass = ops.reshape(ops.cast(high_pass, "float32"), (-1, 1))
    low_pass = ops.reshape(ops.cast(low_pass, "float32"), (-1, 1))
    tilt_db = ops.cast(tilt_db, "float32")
    edges = ops.sigmoid((hertz - high_pass) / (0.1 * high_pass + 20.0)) * ops.sigmoid((low_pass - hertz) / (0.05 * low_pass))
    octaves = ops.log(ops.maximum(hertz, 50.0) / 1000.0) / math.log(2.0)
    return edges * ops.power(10.0, ops.reshape(tilt_db, (-1, 1)) * octaves / 20.0)


def filter_spectrum(waveforms: Any, gains: Any) -> Any:
    """``waveforms`` through a zero-phase filter of per-bin ``gains`` (one real FFT and its inverse)."""
    samples = _static_samples(waveforms)
    real, imag = ops.rfft(waveforms, samples)
    return ops.irfft((real * gains, imag * gains), samples)


MU_LAW = 255.0  # G.711's mu


def mu_law_quantize(waveforms: Any, bits: Any) -> Any:
    """Each row through a mu-law codec of ``bits`` [batch] bits (2..8): companded relative to the
    row's peak, rounded to ``2**bits - 1`` levels (zero among them), expanded back. Quantisation noise then follows the
    signal's level, as in G.711 (8 bits) and coarser digital chains; silent rows stay silent."""
    x = ops.cast(waveforms, "float32")
    peak = ops.max(ops.abs(x), axis=-1, keepdims=True)
    scale = ops.where(peak > 0.0, peak, 1.0)
    companded = ops.sign(x) * ops.log1p(MU_LAW * ops.abs(x) / scale) / np.log1p(MU_LAW)
    levels = ops.power(2.0, ops.cast(bits, "float32") - 1.0)[:, None] - 1.0  # per sign: zero is a level
    quantized = ops.round(companded * levels) / levels
    expanded = ops.sign(quantized) * (ops.power(1.0 + MU_LAW, ops.abs(quantized)) - 1.0) / MU_LAW
    return expanded * scale


def crop_to_start(waveforms: Any, starts: Any, lengths: Any, noise_level: float, uniform: Any, normal: Any) -> Any:
    """Each row's ``[starts[b], starts[b] + lengths[b])`` samples moved to the start, made zero mean
    and unit variance over those samples, and the rest of the row filled with the record builder's
    padding: zeros plus ``noise_level * uniform[b] * peak * normal[b]`` (kser.waveform.prepare on a
    recording of ``lengths[b]`` samples). ``starts``, ``lengths`` int ``[batch]`` with
    ``starts + lengths <= samples``; ``uniform`` [batch] in [0, 1); ``normal`` [batch, samples]."""
    num_samples = _static_samples(waveforms)
    x = ops.cast(waveforms, "float32")
    index = ops.arange(num_samples, dtype="int32")[None, :]
    kept = index < ops.cast(lengths, "int32")[:, None]
    source = ops.minimum(index + ops.cast(starts, "int32")[:, None], num_samples - 1)
    moved = ops.where(kept, ops.take_along_axis(x, source, axis=1), 0.0)
    count = ops.maximum(ops.cast(lengths, "float32"), 1.0)[:, None]
    centred = ops.where(kept, moved - ops.sum(moved, axis=1, keepdims=True) / count, 0.0)
    sd = ops.sqrt(ops.sum(ops.square(centred), axis=1, keepdims=True) / count)
    speech = centred / ops.where(sd > 1e-6, sd, 1.0)  # a silent stretch stays silent, as normalize() leaves it
    peak = ops.maximum(ops.max(speech, axis=1, keepdims=True), 0.0)
    padding = noise_level * ops.reshape(ops.cast(uniform, "float32"), (-1, 1)) * peak * ops.cast(normal, "float32")
    return ops.where(kept, speech, padding)


def range_mask(length: Any, starts: Any, widths: Any) -> Any:
    """Boolean ``[batch, length]``: True where ``starts[b, k] <= i < starts[b, k] + widths[b, k]``
    for any ``k`` (an iota compared against the ranges, no loop over the batch)."""
    positions = ops.arange(length, dtype="int32")[None, None, :]
    starts = ops.cast(starts, "int32")[..., None]
    ends = starts + ops.cast(widths, "int32")[..., None]
    return ops.any((positions >= starts) & (positions < ends), axis=1)


BABBLE_SNR_SPAN_DB = 15.0  # babble SNRs are drawn from [babble_snr_db, babble_snr_db + 15] dB


def babble_of_batch(waveforms: Any, talkers: Any, snr_db: Any, max_talkers: int) -> Any:
    """Babble for each clip of ``[batch, samples]``: the next ``talkers[i]`` clips of the batch
    (cyclically; ``talkers`` float ``[batch]`` in ``1..max_talkers``), each scaled to unit power
    and summed, then scaled so that clip i's power over the babble's is ``snr_db[i]`` dB. A silent
    clip gets no babble (its power is 0), a silent talker adds nothing."""
    power = ops.mean(ops.square(waveforms), axis=1)
    unit = waveforms / ops.sqrt(ops.maximum(power, 1e-12))[:, None]
    babble = ops.zeros_like(waveforms)
    for shift in range(1, max_talkers + 1):
        present = ops.cast(talkers >= float(shift), "float32")
        babble = babble + present[:, None] * ops.roll(unit, -shift, axis=0)
    babble_power = ops.mean(ops.square(babble), axis=1)
    scale = ops.sqrt(power / ops.maximum(babble_power, 1e-12) / ops.power(10.0, snr_db / 10.0))
    return scale[:, None] * babble


def _coin(batch: Any, probability: float, seed: keras.random.SeedGenerator) -> Any:
    """Per-clip Bernoulli(probability) as bool ``[batch]`` (no draw when it is certain)."""
    if probability >= 1.0:
        return ops.ones((batch,), dtype="bool")
    return keras.random.uniform((batch,), seed=seed) < probability


def _random_ranges(
    batch: Any,
    length: Any,
    count: int,
    max_width: int,
    apply: Any,
    seed: keras.random.SeedGenerator,
) -> Any:
    """SpecAugment masks along one axis: ``count`` ranges per clip, width ``U{0..max_width-1}``
    (0 where ``apply`` is False), start ``U{0..length-width}``; bool ``[batch, length]``."""
    size = ops.cast(length, "float32")
    widths = ops.floor(keras.random.uniform((batch, count), seed=seed) * float(max_width))
    widths = ops.minimum(widths, size)
    widths = ops.where(apply[:, None], widths, 0.0)
    starts = ops.floor(keras.random.uniform((batch, count), seed=seed) * (size - widths + 1.0))
    starts = ops.minimum(starts, size - widths)
    return range_mask(length, starts, widths)


def _split_overrides(config: AugmentConfig | None, kwargs: dict[str, Any]) -> AugmentConfig:
    overrides = {k: kwargs.pop(k) for k in _AUGMENT_FIELDS if k in kwargs}
    return dataclasses.replace(config or AugmentConfig(), **overrides)


# --------------------------------------------------------------------------- layers


class _Augment(keras.layers.Layer):
    """Shared plumbing: config + field overrides, seed generator, identity shape, config I/O.

    Takes an ``AugmentConfig`` and/or any of its fields as keyword arguments (fields win),
    and ``seed``: the ``SeedGenerator`` seed (``None``: random). No weights; the generator's
    2-element state is a non-trainable variable that ``count_params()`` does not count.
    """

    def __init__(
        self, config: AugmentConfig | None = None, seed: int | None = None, **kwargs: Any
    ) -> None:
        augment_config = _split_overrides(config, kwargs)
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.augment_config = augment_config
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = False
        self.built = True  # nothing to build: no weights, shapes are only checked in call

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            **dataclasses.asdict(self.augment_config),
            "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package="kser")
class WaveformAugment(_Augment):
    """Per-clip pitch shift, gain and peak-relative noise on waveforms ``[batch, samples]``.

    With ``training=True``, each clip independently, in this order:

    1. pitch (probability ``pitch_prob``): ``U(-s, s)`` semitones by ``shift_pitch`` with
       ``pitch_method`` (default ``"vocoder"``: duration kept; ``"resample"``: speed
       perturbation, tempo changes too). First, so that the noise added later stays white;
    1b. room (``reverb_prob``): convolution with a synthetic room impulse response
       (:func:`room_impulse_responses`: RT60 ``U(0.1, reverb_rt60)`` s, direct-to-reverberant
       ratio ``U(0, 12)`` dB), then channel (``channel_prob``): a random band limit and tilt
       (:func:`channel_response`), as a voice reaches a microphone and passes a line, then a codec
       (``codec_prob``): :func:`mu_law_quantize` at ``U{codec_bits..8}`` bits;
    1c. babble (``babble_prob``): 1 to ``babble_talkers`` other clips of the batch (each scaled
       to the clip's power) summed and added at an SNR of ``U(babble_snr_db, babble_snr_db + 15)``
       dB (:func:`babble_of_batch`): other people talking;
    1d. a shorter recording (``crop_prob``): a random ``U(crop_min_seconds, clip)`` s stretch of
       the clip moved to the start, renormalised and padded as the record builder pads
       (:func:`crop_to_start`), after the room and babble (which belong to the recording) and
       before the gain (which its renormalisation would undo);
    2. gain (``gain_prob``): ``y * 10**(g / 20)``, ``g ~ U(-gain_db, gain_db)``;
    3. noise (``noise_prob``): the study's ``y + noise_level * U(0,1) * max(y) * N(0,1)``,
       ``max(y)`` the clip's peak after the gain (clipped at 0, as ``kser.waveform`` does),
       so the signal-to-noise ratio does not depend on the gain.

    Clips not drawn for an augmentation pass through it exactly. Everything is computed
    for the whole batch and selected per clip (static shapes, no data-dependent branches), so
    the pitch shift costs the same whatever ``pitch_prob`` is (except 0: skipped).
    """

    def __init__(self, config: AugmentConfig | None = None, seed: int | None = None, sample_rate: int = 16_000, **kwargs: Any) -> None:
        super().__init__(config, seed=seed, **kwargs)
        self.sample_rate = int(sample_rate)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "sample_rate": self.sample_rate}

    def call(self, waveforms: Any, training: bool | None = None) -> Any:
        config = self.augment_config
        if not training or not config.waveform_active:
            return waveforms
        x = ops.cast(waveforms, "float32")
        num_samples = _static_samples(x)
        batch = ops.shape(x)[0]
        seed = self.seed_generator
        if config.pitch_active:
            apply = _coin(batch, config.pitch_prob, seed)
            limit = config.pitch_semitones
            semitones = keras.random.uniform((batch,), -limit, limit, seed=seed)
            shifted = shift_pitch(x, semitones, max_semitones=limit, method=config.pitch_method)
            x = ops.where(apply[:, None], shifted, x)
        if config.reverb_active:
            apply = _coin(batch, config.reverb_prob, seed)
            taps = min(num_samples, int(config.reverb_rt60 * self.sample_rate))
            rt60 = keras.random.uniform((batch,), 0.1, config.reverb_rt60, seed=seed)
            direct_to_reverb = keras.random.uniform((batch,), 0.0, 12.0, seed=seed)
            noise = keras.random.normal((batch, taps), seed=seed)
            rooms = room_impulse_responses(noise, rt60, direct_to_reverb, self.sample_rate)
            x = ops.where(apply[:, None], fft_convolve(x, rooms), x)
        if config.channel_active:
            apply = _coin(batch, config.channel_prob, seed)
            nyquist = self.sample_rate / 2.0
            high_pass = keras.random.uniform((batch,), 0.0, 300.0, seed=seed)
            low_pass = keras.random.uniform((batch,), min(3400.0, nyquist), nyquist, seed=seed)
            tilt = keras.random.uniform((batch,), -config.channel_tilt_db, config.channel_tilt_db, seed=seed)
            gains = channel_response(num_samples, self.sample_rate, high_pass, low_pass, tilt)
            x = ops.where(apply[:, None], filter_spectrum(x, gains), x)
        if config.codec_active:
            apply = _coin(batch, config.codec_prob, seed)
            bits = ops.floor(keras.random.uniform((batch,), float(config.codec_bits), 9.0, seed=seed))
            x = ops.where(apply[:, None], mu_law_quantize(x, ops.minimum(bits, 8.0)), x)
        if config.babble_active:
            apply = _coin(batch, config.babble_prob, seed)
            talkers = 1.0 + ops.floor(keras.random.uniform((batch,), seed=seed) * config.babble_talkers)
            snr_db = keras.random.uniform((batch,), config.babble_snr_db, config.babble_snr_db + BABBLE_SNR_SPAN_DB, seed=seed)
            x = ops.where(apply[:, None], x + babble_of_batch(x, talkers, snr_db, config.babble_talkers), x)
        if config.crop_active:
            apply = _coin(batch, config.crop_prob, seed)
            shortest = min(float(num_samples), config.crop_min_seconds * self.sample_rate)
            lengths = ops.floor(keras.random.uniform((batch,), shortest, float(num_samples) + 1.0, seed=seed))
            lengths = ops.minimum(lengths, float(num_samples))
            starts = ops.floor(keras.random.uniform((batch,), seed=seed) * (float(num_samples) - lengths + 1.0))
            starts = ops.minimum(starts, float(num_samples) - lengths)
            cropped = crop_to_start(
                x, starts, lengths, config.noise_level, keras.random.uniform((batch,), seed=seed), keras.random.normal((batch, num_samples), seed=seed)
            )
            x = ops.where(apply[:, None], cropped, x)
        if config.gain_active:
            apply = _coin(batch, config.gain_prob, seed)
            gain_db = keras.random.uniform((batch,), -config.gain_db, config.gain_db, seed=seed)
            gain_db = ops.where(apply, gain_db, 0.0)
            x = x * ops.power(10.0, gain_db / 20.0)[:, None]
        if config.noise_active:
            apply = _coin(batch, config.noise_prob, seed)
            peak = ops.maximum(ops.max(x, axis=1), 0.0)
            amplitude = config.noise_level * keras.random.uniform((batch,), seed=seed) * peak
            amplitude = ops.where(apply, amplitude, 0.0)
            x = x + amplitude[:, None] * keras.random.normal((batch, num_samples), seed=seed)
        return x


@keras.saving.register_keras_serializable(package="kser")
class SpecAugment(_Augment):
    """SpecAugment frequency and time masks on features ``[batch, frames, mels(, channels)]``.

    With ``training=True`` and probability ``specaugment_prob`` per clip: ``freq_masks``
    bands of ``U{0..freq_mask_width-1}`` mel bins and ``time_masks`` runs of
    ``U{0..time_mask_width-1}`` frames, each at a uniform start that keeps it inside, set to
    0 (masks may overlap). The masks are iota-vs-range comparisons, applied by one multiply.

    It runs AFTER ``LogMelDeltas`` on all three channels (log-mel, delta, delta-delta) with
    the same mask: that keeps ``LogMelDeltas`` unchanged and costs one ``where``, and a masked
    region carries no information in any channel. Masking the log-mel before the deltas
    instead would turn each mask edge into a large spurious delta (0 dB next to, say,
    -40 dB). The log-mel channel is masked to 0 dB, the study's "masked to 0".
    """

    def call(self, features: Any, training: bool | None = None) -> Any:
        config = self.augment_config
        if not training or not config.specaugment_active:
            return features
        if len(features.shape) not in (3, 4):
            raise ValueError(
                f"expected features [batch, frames, mels] or [batch, frames, mels, channels], "
                f"got shape {tuple(features.shape)}"
            )
        shape = ops.shape(features)
        batch, frames, mels = shape[0], shape[1], shape[2]
        seed = self.seed_generator
        apply = _coin(batch, config.specaugment_prob, seed)
        keep = ops.ones((batch, 1, 1), dtype=features.dtype)
        if config.freq_masks > 0 and config.freq_mask_width > 1:
            freq = _random_ranges(
                batch, mels, config.freq_masks, config.freq_mask_width, apply, seed
            )
            keep = keep * ops.cast(ops.logical_not(freq), features.dtype)[:, None, :]
        if config.time_masks > 0 and config.time_mask_width > 1:
            time = _random_ranges(
                batch, frames, config.time_masks, config.time_mask_width, apply, seed
            )
            keep = keep * ops.cast(ops.logical_not(time), features.dtype)[:, :, None]
        if len(features.shape) == 4:
            keep = keep[..., None]
        # A 0/1 multiply is about twice as fast as a broadcast `where` on CPU; masked values
        # become +-0.0 (a NaN input would stay NaN, which finite features never are).
        return features * keep
