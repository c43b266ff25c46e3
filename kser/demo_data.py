"""A small, deterministic, synthetic emotional-speech data set in the CREMA-D layout.

``make demo`` needs audio that anyone may ship and that a model can learn from, so this
module synthesises it instead of committing recordings: ``1001_IEO_ANG_XX.wav`` ... in one
flat folder, 16 kHz mono 16-bit PCM, exactly as the ``crema_d`` layout expects.

Each clip is a short "sentence" of voiced syllables: a band-limited harmonic (glottal-like)
source following an F0 contour, shaped by four moving formants, with syllable envelopes,
pauses, consonant noise and a little aspiration. The emotion drives the prosody the way it
does in acted speech (pitch level and range, speaking rate, loudness dynamics, spectral
tilt, breathiness, jitter/shimmer/tremor, creak), actors differ in voice (F0, vocal-tract
length, rate, expressiveness) and every clip gets its own random variation, so classes
overlap: a small model learns them well above chance but not perfectly. Since training
normalises every clip to unit variance, the emotion is carried by spectral and temporal
cues, not by absolute loudness.

Every clip draws from its own ``numpy`` Generator seeded by (seed, actor, sentence,
emotion), so the files are byte-identical however many or in whatever order are made.
This module imports only numpy and soundfile (never TensorFlow or Keras).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import soundfile as sf

from kser.atomic import commit, temp_path_for
from kser.config import CREMA_D_EMOTIONS
from kser.errors import KserError

# The demo set `make demo` uses: 12 actors x 4 sentences x 6 emotions, 16 kHz, seed 0.
DEMO_ACTORS = 12
DEMO_SENTENCES = 4
DEMO_SAMPLE_RATE = 16_000
DEMO_SEED = 0

# The twelve CREMA-D sentence codes, in the order ``sentences=n`` takes them.
CREMA_D_SENTENCES: tuple[str, ...] = (
    "IEO", "TIE", "IOM", "IWW", "TAI", "MTI", "IWL", "ITH", "DFA", "ITS", "TSI", "WSI",
)
LEVEL = "XX"
FIRST_ACTOR = 1001
MIN_SECONDS = 1.5
MAX_SECONDS = 3.0

# Seed-domain tags, so actor, sentence and clip streams never share a seed sequence.
_ACTOR_TAG, _SENTENCE_TAG, _CLIP_TAG = 11, 23, 37

# Vowel formant targets (F1, F2, F3, F4) in Hz for an average adult male vocal tract.
_VOWELS = np.array(
    [
        [730, 1090, 2440, 3400],  # a
        [270, 2290, 3010, 3700],  # i
        [300, 870, 2240, 3300],  # u
        [530, 1840, 2480, 3500],  # e
        [570, 840, 2410, 3300],  # o
        [660, 1720, 2410, 3400],  # ae
        [490, 1350, 1690, 3300],  # er
        [390, 1990, 2550, 3600],  # I
        [520, 1190, 2390, 3400],  # uh
    ],
    dtype=np.float64,
)
_SCHWA = np.array([500.0, 1500.0, 2500.0, 3500.0])
_BANDWIDTHS = np.array([80.0, 100.0, 150.0, 250.0])

# Onset consonants: none, plosive, fricative s / sh / f, nasal, liquid.
_NONE, _PLOSIVE, _FRIC_S, _FRIC_SH, _FRIC_F, _NASAL, _LIQUID = range(7)
_ONSET_WEIGHTS = np.array([0.22, 0.22, 0.12, 0.06, 0.08, 0.16, 0.14])


@dataclasses.dataclass(frozen=True)
class DemoSummary:
    """What ``generate_demo_dataset`` wrote."""

    out_dir: str
    num_files: int
    num_actors: int
    emotions: tuple[str, ...]
    total_seconds: float
    bytes: int


@dataclasses.dataclass(frozen=True)
class _Prosody:
    """How one emotion is spoken; each value is a population mean before actor/clip variation."""

    f0_shift: float  # semitones above the actor's neutral pitch
    f0_range: float  # size of pitch accents, semitones
    contour: str  # overall intonation shape
    rate: float  # syllables per second
    pause: float  # mean pause at word boundaries, seconds
    level_db: float  # loudness
    dynamics_db: float  # syllable-to-syllable loudness spread
    tilt: float  # source slope: harmonic k has amplitude k**-tilt (higher = darker)
    h1_boost: float  # first-harmonic gain (breathy > 1 > pressed)
    breath: float  # aspiration noise relative to the voice
    jitter: float  # relative F0 perturbation
    shimmer: float  # relative amplitude perturbation
    tremor: float  # 5-7 Hz F0 modulation depth, semitones
    formant_shift: float  # all formants scaled (smile raises, lowered larynx lowers)
    articulation: float  # vowel-space expansion (1 neutral, < 1 centralised)
    bandwidth: float  # formant bandwidth scale (breathy > 1 > pressed)
    creak: float  # share of the utterance's end spoken with creaky voice
    final_lengthening: float  # duration factor of the last syllable


_PROSODY: dict[str, _Prosody] = {
    "ANG": _Prosody(4.5, 6.0, "high_fall", 5.0, 0.06, 6.0, 4.0, 0.80, 0.7, 0.02, 0.012, 0.10, 0.0, 1.04, 1.15, 0.8, 0.0, 1.1),
    "DIS": _Prosody(-0.5, 4.5, "early_fall", 3.8, 0.12, 0.0, 3.0, 1.25, 1.1, 0.06, 0.012, 0.10, 0.0, 0.97, 1.00, 1.0, 0.35, 1.45),
    "FEA": _Prosody(5.5, 4.0, "final_rise", 5.6, 0.08, 2.0, 3.0, 1.20, 1.3, 0.12, 0.030, 0.22, 0.7, 1.03, 0.95, 1.2, 0.0, 1.0),
    "HAP": _Prosody(4.0, 7.5, "rise_fall", 4.8, 0.08, 3.0, 3.5, 1.00, 0.9, 0.04, 0.008, 0.08, 0.0, 1.07, 1.10, 0.9, 0.0, 1.2),
    "NEU": _Prosody(0.0, 2.5, "declination", 4.2, 0.10, 0.0, 1.5, 1.20, 1.0, 0.04, 0.006, 0.06, 0.0, 1.00, 1.00, 1.0, 0.05, 1.2),
    "SAD": _Prosody(-1.5, 1.2, "flat_fall", 3.4, 0.18, -6.0, 1.0, 1.65, 1.8, 0.15, 0.012, 0.10, 0.15, 0.97, 0.80, 1.4, 0.15, 1.4),
}


@dataclasses.dataclass(frozen=True)
class _Actor:
    """One synthetic speaker's voice."""

    f0: float  # neutral mean F0, Hz
    formant_scale: float  # inverse vocal-tract length
    rate: float  # speaking-rate factor
    tilt: float  # spectral-tilt offset
    breath: float  # breathiness factor
    range: float  # pitch-range factor
    expressiveness: float  # how far from neutral the actor takes each emotion


@dataclasses.dataclass(frozen=True)
class _Sentence:
    """A fixed "text": syllables with vowels, onsets, stress and word ends."""

    vowels: np.ndarray
    onsets: np.ndarray
    stressed: np.ndarray
    word_end: np.ndarray


def demo_file_name(actor: int, sentence: str, emotion: str) -> str:
    """The CREMA-D file name of one clip, e.g. ``1001_IEO_ANG_XX.wav``."""
    return f"{actor:04d}_{sentence}_{emotion}_{LEVEL}.wav"


def _actor_voice(actor: int, seed: int) -> _Actor:
    rng = np.random.default_rng([seed, _ACTOR_TAG, actor])
    female = (actor - FIRST_ACTOR) % 2 == 1
    if female:
        f0 = float(np.clip(205.0 * np.exp(rng.normal(0.0, 0.12)), 165.0, 255.0))
        formant_scale = float(rng.uniform(1.10, 1.20))
    else:
        f0 = float(np.clip(115.0 * np.exp(rng.normal(0.0, 0.13)), 85.0, 150.0))
        formant_scale = float(rng.uniform(0.93, 1.03))
    return _Actor(
        f0=f0,
        formant_scale=formant_scale,
        rate=float(np.exp(rng.normal(0.0, 0.10))),
        tilt=float(rng.normal(0.0, 0.15)),
        breath=float(np.exp(rng.normal(0.0, 0.3))),
        range=float(np.exp(rng.normal(0.0, 0.2))),
        expressiveness=float(rng.uniform(0.5, 1.0)),
    )


def _sentence_text(index: int) -> _Sentence:
    """The same syllables for every actor, emotion and seed, like the real corpus's texts."""
    rng = np.random.default_rng([_SENTENCE_TAG, index])
    n = int(rng.integers(4, 8))
    vowels = rng.integers(0, len(_VOWELS), size=n)
    onsets = rng.choice(len(_ONSET_WEIGHTS), size=n, p=_ONSET_WEIGHTS)
    word_end = np.zeros(n, dtype=bool)
    position = 0
    while position < n:
        position += int(rng.integers(1, 4))
        word_end[min(position, n) - 1] = True
    stressed = np.zeros(n, dtype=bool)
    start = 0
    for end in np.flatnonzero(word_end):
        stressed[start + int(rng.integers(0, end - start + 1))] = rng.random() < 0.8 or start == 0
        start = end + 1
    return _Sentence(vowels, onsets, stressed, word_end)


def _clip_prosody(emotion: str, actor: _Actor, rng: np.random.Generator) -> _Prosody:
    """The emotion's profile, scaled by the actor's expressiveness and varied per clip."""
    target, neutral = _PROSODY[emotion], _PROSODY["NEU"]
    e = actor.expressiveness * float(np.exp(rng.normal(0.0, 0.2)))

    def toward(name: str) -> float:
        return getattr(neutral, name) + e * (getattr(target, name) - getattr(neutral, name))

    def lognormal(sigma: float) -> float:
        return float(np.exp(rng.normal(0.0, sigma)))

    return _Prosody(
        f0_shift=toward("f0_shift") + rng.normal(0.0, 1.2),
        f0_range=max(0.5, toward("f0_range") * actor.range * lognormal(0.25)),
        contour=target.contour if rng.random() < 0.75 else neutral.contour,
        rate=toward("rate") * actor.rate * lognormal(0.10),
        pause=toward("pause") * lognormal(0.3),
        level_db=toward("level_db") + rng.normal(0.0, 2.0),
        dynamics_db=max(0.3, toward("dynamics_db") * lognormal(0.25)),
        tilt=float(np.clip(toward("tilt") + actor.tilt + rng.normal(0.0, 0.15), 0.6, 2.6)),
        h1_boost=toward("h1_boost") * lognormal(0.15),
        breath=toward("breath") * actor.breath * lognormal(0.3),
        jitter=toward("jitter") * lognormal(0.3),
        shimmer=toward("shimmer") * lognormal(0.3),
        tremor=toward("tremor") * lognormal(0.3),
        formant_shift=toward("formant_shift") * lognormal(0.015),
        articulation=toward("articulation") * lognormal(0.05),
        bandwidth=toward("bandwidth") * lognormal(0.1),
        creak=float(np.clip(toward("creak") + rng.normal(0.0, 0.05), 0.0, 0.5)),
        final_lengthening=toward("final_lengthening") * lognormal(0.1),
    )


def _resonance(freqs: np.ndarray, centre: np.ndarray, bandwidth: np.ndarray) -> np.ndarray:
    """Parallel formant bank: sum of 2nd-order band-pass magnitudes, with a small floor."""
    f = np.maximum(freqs[..., None], 1.0)
    q = centre / bandwidth
    return 0.02 + (1.0 / np.sqrt(1.0 + (q * (f / centre - centre / f)) ** 2)).sum(axis=-1)


def _smooth_noise(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    """Unit-variance low-pass noise (moving average of ``width`` frames)."""
    raw = rng.standard_normal(n + width)
    out = np.convolve(raw, np.ones(width) / np.sqrt(width), mode="valid")[:n]
    return out


def synthesize_clip(actor: int, sentence: str, emotion: str, *, sample_rate: int = 16_000, seed: int = 0) -> np.ndarray:
    """One clip as float64 samples in (-1, 1); deterministic in its arguments."""
    if emotion not in _PROSODY:
        raise KserError(f"unknown emotion {emotion!r}; expected one of {' '.join(CREMA_D_EMOTIONS)}")
    if sentence not in CREMA_D_SENTENCES:
        raise KserError(f"unknown sentence code {sentence!r}; expected one of {' '.join(CREMA_D_SENTENCES)}")
    voice = _actor_voice(actor, seed)
    text = _sentence_text(CREMA_D_SENTENCES.index(sentence))
    rng = np.random.default_rng(
        [seed, _CLIP_TAG, actor, CREMA_D_SENTENCES.index(sentence), CREMA_D_EMOTIONS.index(emotion)]
    )
    p = _clip_prosody(emotion, voice, rng)
    n_syl = len(text.vowels)

    # --- timing (seconds) ---------------------------------------------------------------
    durations = (1.0 / p.rate) * np.exp(rng.normal(0.0, 0.12, n_syl))
    durations *= np.where(text.stressed, 1.2, 0.9)
    durations[-1] *= p.final_lengthening
    pauses = np.where(text.word_end & (rng.random(n_syl) < 0.5), p.pause * np.exp(rng.normal(0.0, 0.4, n_syl)), 0.0)
    pauses[-1] = 0.0
    lead, trail = rng.uniform(0.04, 0.1), rng.uniform(0.06, 0.14)
    speech = durations.sum() + pauses.sum()
    limit = MAX_SECONDS - 0.05 - lead - trail
    if speech > limit:
        durations *= limit / speech
        pauses *= limit / speech
        speech = limit
    total = lead + speech + trail
    if total < MIN_SECONDS:
        extra = MIN_SECONDS - total
        lead += 0.4 * extra
        trail += 0.6 * extra
        total = MIN_SECONDS
    starts = lead + np.concatenate([[0.0], np.cumsum(durations + pauses)[:-1]])

    # --- frame-rate control tracks (8 ms hop) -------------------------------------------
    hop = max(1, sample_rate // 125)
    n_samples = int(round(total * sample_rate))
    n_frames = n_samples // hop + 2
    t = np.arange(n_frames) * hop / sample_rate
    voice_amp = np.zeros(n_frames)
    asp_amp = np.zeros(n_frames)  # aspiration after plosive releases
    fric_amp = np.zeros((3, n_frames))  # s, sh, f
    burst_amp = np.zeros(n_frames)
    nasal = np.zeros(n_frames)
    centres = np.zeros(n_syl)
    syllable_db = rng.normal(0.0, p.dynamics_db, n_syl) + np.where(text.stressed, 0.5 * p.dynamics_db + 1.5, 0.0)
    for i in range(n_syl):
        s0, d = starts[i], durations[i]
        onset = text.onsets[i]
        closure = {_NONE: 0.0, _PLOSIVE: 0.25, _FRIC_S: 0.32, _FRIC_SH: 0.32, _FRIC_F: 0.28, _NASAL: 0.25, _LIQUID: 0.2}[onset]
        v0 = s0 + closure * d
        v1 = s0 + d
        centres[i] = 0.5 * (v0 + v1)
        gain = 10.0 ** (syllable_db[i] / 20.0)
        attack, release = 0.025, min(0.06, 0.35 * (v1 - v0))
        up = np.clip((t - v0) / attack, 0.0, 1.0)
        down = np.clip((v1 - t) / release, 0.0, 1.0)
        env = np.sin(0.5 * np.pi * np.minimum(up, down)) ** 2
        env[(t < v0) | (t > v1)] = 0.0
        voice_amp = np.maximum(voice_amp, gain * env)
        in_onset = (t >= s0) & (t < v0)
        if onset == _PLOSIVE:
            burst = (t >= v0 - 0.012) & (t < v0)
            burst_amp[burst] = 0.2 * gain
            vot = (t >= v0) & (t < v0 + 0.035)
            asp_amp[vot] = 0.25 * gain * np.linspace(1.0, 0.2, int(vot.sum()))
        elif onset in (_FRIC_S, _FRIC_SH, _FRIC_F):
            ramp = np.sin(np.pi * np.clip((t - s0) / max(v0 - s0, 1e-3), 0.0, 1.0)) ** 0.5
            fric_amp[onset - _FRIC_S, in_onset] = [0.35, 0.3, 0.15][onset - _FRIC_S] * gain * ramp[in_onset]
        elif onset in (_NASAL, _LIQUID):
            murmur = (t >= s0) & (t < v0)
            voice_amp[murmur] = np.maximum(voice_amp[murmur], 0.3 * gain)
            if onset == _NASAL:
                nasal[murmur] = 1.0
    voiced = voice_amp > 1e-3

    # F0 contour in semitones relative to the actor's neutral pitch.
    last_voiced = t[voiced].max() if voiced.any() else total
    span = max(last_voiced - lead, 1e-3)
    progress = np.clip((t - lead) / span, 0.0, 1.0)
    st = p.f0_shift - 2.0 * (progress - 0.5)  # declination
    accent_scale = rng.uniform(0.6, 1.0, n_syl)
    for i in np.flatnonzero(text.stressed):
        position = (centres[i] - lead) / span
        size = p.f0_range * accent_scale[i]
        if p.contour == "high_fall":
            size *= 1.3 - 0.6 * position
        elif p.contour == "early_fall":
            size *= 1.4 if position < 0.4 else 0.4
        elif p.contour == "rise_fall":
            size *= 0.6 + 0.8 * np.sin(np.pi * position)
        elif p.contour in ("flat_fall", "declination"):
            size *= 1.0 - 0.4 * position
        width = 0.6 * durations[i]
        st += size * np.exp(-0.5 * ((t - centres[i]) / width) ** 2)
    if p.contour == "final_rise":
        st += 0.9 * p.f0_range * np.clip((progress - 0.75) / 0.25, 0.0, 1.0) ** 2
    elif p.contour in ("high_fall", "early_fall", "flat_fall"):
        st -= 0.5 * p.f0_range * np.clip((progress - 0.7) / 0.3, 0.0, 1.0)
    st += 0.5 * _smooth_noise(rng, n_frames, 25)
    st += p.tremor * np.sin(2.0 * np.pi * rng.uniform(5.0, 7.0) * t + rng.uniform(0, 2 * np.pi))
    creaky = progress > 1.0 - p.creak
    jitter = np.where(creaky, 4.0 * p.jitter + 0.02, p.jitter)
    f0 = voice.f0 * 2.0 ** (st / 12.0) * np.where(creaky, 0.6, 1.0)
    f0 *= 1.0 + jitter * rng.standard_normal(n_frames)
    f0 = np.clip(f0, 55.0, 0.18 * sample_rate)
    shimmer = np.where(creaky, 2.5 * p.shimmer, p.shimmer)
    voice_amp = voice_amp * np.exp(shimmer * rng.standard_normal(n_frames))

    # Formant tracks: vowel targets at syllable centres, moved by actor and emotion.
    targets = _VOWELS[text.vowels]
    targets = _SCHWA + p.articulation * (targets - _SCHWA)
    targets = targets * voice.formant_scale * p.formant_shift
    formants = np.stack([np.interp(t, centres, targets[:, j]) for j in range(4)], axis=1)
    formants[:, 0] *= 1.0 - 0.45 * nasal
    formants[:, 1] *= 1.0 - 0.2 * nasal
    formants = np.minimum(formants, 0.47 * sample_rate)
    bandwidths = _BANDWIDTHS * p.bandwidth * np.where(nasal[:, None] > 0, 2.0, 1.0)
    # Louder syllables are pressed harder: a little brighter.
    tilt = p.tilt - 0.02 * (20.0 * np.log10(np.maximum(voice_amp, 1e-3)))
    tilt = np.clip(tilt, 0.5, 3.0)

    # --- harmonic voice source through the formants -------------------------------------
    positions = np.arange(n_samples) / hop
    index = np.minimum(positions.astype(np.int64), n_frames - 2)
    frac = positions - index
    f0_s = f0[index] * (1.0 - frac) + f0[index + 1] * frac
    phase = 2.0 * np.pi * np.cumsum(f0_s) / sample_rate + rng.uniform(0, 2 * np.pi)
    nyquist = 0.5 * sample_rate
    n_harm = int(min(120, 0.95 * nyquist / max(float(f0.min()), 1.0)))
    k = np.arange(1, n_harm + 1, dtype=np.float64)[:, None]
    harm_freq = k * f0[None, :]
    amps = k ** (-tilt[None, :]) * _resonance(harm_freq, formants[None, :, :], bandwidths)
    amps[0] *= p.h1_boost
    amps *= np.clip((0.92 * nyquist - harm_freq) / (0.08 * nyquist), 0.0, 1.0)
    amps *= voice_amp[None, :]
    # sin(k * phase) for k = 1, 2, ... by repeated rotation; single precision is plenty here.
    rotor = np.exp(1j * phase).astype(np.complex64)
    spin = rotor.copy()
    weight = frac.astype(np.float32)
    amps32 = amps.astype(np.float32)
    y_voice32 = np.zeros(n_samples, dtype=np.float32)
    for h in range(n_harm):
        row = amps32[h]
        if row.max() > 1e-6:
            here = row[index]
            here += (row[index + 1] - here) * weight
            here *= spin.imag
            y_voice32 += here
        spin *= rotor
    y_voice = y_voice32.astype(np.float64)
    reference = np.sqrt(np.mean(y_voice[y_voice != 0.0] ** 2)) if np.any(y_voice) else 1.0

    # --- noise: aspiration, fricatives, bursts (shaped frame by frame, overlap-added) ----
    n_fft = 2 * hop  # Hann windows at 50 % overlap add up to a constant
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    formant_shape = _resonance(freqs[None, :], formants[:, None, :], 1.5 * bandwidths[:, None, :]) / 4.0
    asp_shape = formant_shape * np.clip(freqs / 1500.0, 0.1, 1.0)[None, :]
    fric_shapes = np.stack([
        np.exp(-0.5 * ((freqs - 0.42 * nyquist * voice.formant_scale) / (0.12 * nyquist)) ** 2),  # s
        np.exp(-0.5 * ((freqs - 0.32 * nyquist * voice.formant_scale) / (0.12 * nyquist)) ** 2),  # sh
        np.clip(freqs / nyquist, 0.15, 1.0),  # f
    ])
    burst_shape = np.clip(freqs / 1000.0, 0.2, 1.0) * np.exp(-0.5 * ((freqs - 3000.0) / 2000.0) ** 2)
    breath = p.breath * (voice_amp * (1.0 + 0.5 * creaky))
    magnitude = np.sqrt(
        (asp_shape * (breath + asp_amp)[:, None]) ** 2
        + (fric_amp.T @ fric_shapes) ** 2
        + (burst_amp[:, None] * burst_shape[None, :]) ** 2
    )
    spectra = magnitude * (rng.standard_normal(magnitude.shape) + 1j * rng.standard_normal(magnitude.shape))
    window = np.hanning(n_fft + 1)[:-1]
    frames = np.fft.irfft(spectra, n=n_fft, axis=1) * window
    padded = np.zeros((n_frames + 2) * hop)
    for shift in range(2):
        block = frames[:, shift * hop:(shift + 1) * hop].reshape(-1)
        padded[shift * hop:shift * hop + block.size] += block
    y_noise = padded[hop:hop + n_samples]
    # Level calibration: unit-magnitude spectra give noise of about ``reference`` x 0.3 x breath.
    y_noise *= 0.3 * reference * np.sqrt(n_fft / (0.375 * n_fft / hop))

    y = y_voice + y_noise
    rms_active = np.sqrt(np.mean(y[np.repeat(voiced, hop)[:n_samples]] ** 2)) if voiced.any() else 1.0
    y *= 0.06 * 10.0 ** (p.level_db / 20.0) / max(rms_active, 1e-12)
    y += 3e-4 * rng.standard_normal(n_samples)
    peak = np.max(np.abs(y))
    if peak > 0.95:
        y *= 0.95 / peak
    return y


def _to_pcm16(y: np.ndarray) -> np.ndarray:
    return np.clip(np.round(y * 32767.0), -32768, 32767).astype(np.int16)


def _write_atomic(path: Path, samples: np.ndarray, sample_rate: int) -> int:
    """Write under a hidden temporary name, then rename: never a half-written ``.wav``."""
    temporary = temp_path_for(path)
    try:
        sf.write(temporary, samples, sample_rate, subtype="PCM_16", format="WAV")
        commit(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path.stat().st_size


def generate_demo_dataset(
    out_dir: str | os.PathLike,
    *,
    actors: int = DEMO_ACTORS,
    sentences: int = DEMO_SENTENCES,
    sample_rate: int = DEMO_SAMPLE_RATE,
    seed: int = DEMO_SEED,
) -> DemoSummary:
    """Write ``actors x sentences x 6`` synthetic CREMA-D clips to ``out_dir``; same arguments, same bytes."""
    if not 1 <= actors <= 8999 - FIRST_ACTOR + 1:
        raise KserError(f"actors must be between 1 and {8999 - FIRST_ACTOR + 1}, got {actors}")
    if not 1 <= sentences <= len(CREMA_D_SENTENCES):
        raise KserError(f"sentences must be between 1 and {len(CREMA_D_SENTENCES)}, got {sentences}")
    if sample_rate < 8000:
        raise KserError(f"sample_rate must be at least 8000 Hz, got {sample_rate}")
    if seed < 0:
        raise KserError(f"seed must be non-negative, got {seed}")
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    num_files, total_samples, total_bytes = 0, 0, 0
    for actor in range(FIRST_ACTOR, FIRST_ACTOR + actors):
        for sentence in CREMA_D_SENTENCES[:sentences]:
            for emotion in CREMA_D_EMOTIONS:
                pcm = _to_pcm16(synthesize_clip(actor, sentence, emotion, sample_rate=sample_rate, seed=seed))
                total_bytes += _write_atomic(root / demo_file_name(actor, sentence, emotion), pcm, sample_rate)
                total_samples += pcm.size
                num_files += 1
    return DemoSummary(
        out_dir=str(root),
        num_files=num_files,
        num_actors=actors,
        emotions=tuple(CREMA_D_EMOTIONS),
        total_seconds=total_samples / sample_rate,
        bytes=total_bytes,
    )
