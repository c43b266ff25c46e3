"""UAR under noise (a split's clips mixed with white noise or babble at set signal-to-noise ratios)
and on shorter recordings (each clip cut to its first seconds of speech).

Why: a model that scores well on studio speech can fall apart in a café; the figure users need is
UAR against SNR, next to the clean UAR (issue 22). ``kser evaluate --noise_snr=20,10,5,0`` adds it
to the report (``robustness`` in report.json, ``robustness.png``).

Noise: **white** Gaussian noise, and **babble**, the sum of ``BABBLE_TALKERS`` other clips of the
same records spoken by *other* speakers (each scaled to unit power first, so that no talker
dominates). The noise is scaled so that ``10 log10(P_clip / P_noise) = snr``, both powers over the
whole clip (the records' clips are mostly speech: padding is short and trimmed clips have none).
Every draw comes from ``seed``, so two models are scored on the very same noisy clips.

Shorter recordings: the records hold 3 s of each recording; another corpus's are often shorter
(URDU's 1-3 s, CREMA-D's about 2.5 s), and the record builder pads them. ``kser evaluate
--durations=1,1.5,2`` scores each clip as the builder would have prepared a recording of only its
first D seconds of speech (:func:`shortened`): how much a model loses on short utterances.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

NOISE_KINDS = ("white", "babble")
BABBLE_TALKERS = 3
NOISE_SEED = 0  # every model is scored on the same noisy clips


def mix_at_snr(clean: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``clean + g * noise`` with ``g`` such that the clean-to-noise power ratio is ``snr_db``
    (per row of ``[clips, samples]``; a silent clip stays silent)."""
    clean_power = np.mean(np.square(clean, dtype=np.float64), axis=-1, keepdims=True)
    noise_power = np.maximum(np.mean(np.square(noise, dtype=np.float64), axis=-1, keepdims=True), 1e-20)
    gain = np.sqrt(clean_power / (noise_power * 10.0 ** (snr_db / 10.0)))
    return (clean + gain * noise).astype(np.float32)


def babble(waveforms: np.ndarray, speakers: np.ndarray, index: int, rng: np.random.Generator, talkers: int = BABBLE_TALKERS) -> np.ndarray:
    """The sum of ``talkers`` clips of speakers other than clip ``index``'s, each at unit power
    (fewer when the records hold fewer other clips; white noise when they hold none)."""
    others = np.flatnonzero(speakers != speakers[index])
    if others.size == 0:
        return rng.standard_normal(waveforms.shape[1]).astype(np.float32)
    chosen = rng.choice(others, min(talkers, others.size), replace=False)
    voices = waveforms[chosen].astype(np.float64)
    voices /= np.sqrt(np.maximum(np.mean(voices**2, axis=1, keepdims=True), 1e-20))
    return voices.sum(axis=0).astype(np.float32)


def noisy_copies(waveforms: np.ndarray, speakers: np.ndarray, kind: str, snr_db: float, seed: int) -> np.ndarray:
    """Every clip mixed with ``kind`` noise at ``snr_db``; the same ``seed`` draws the same noise."""
    if kind not in NOISE_KINDS:
        raise ValueError(f"unknown noise {kind!r}; choose one of {', '.join(NOISE_KINDS)}")
    rng = np.random.default_rng([seed, NOISE_KINDS.index(kind)])
    if kind == "white":
        noise = rng.standard_normal(waveforms.shape).astype(np.float32)
    else:
        noise = np.stack([babble(waveforms, speakers, index, rng) for index in range(len(waveforms))])
    return mix_at_snr(waveforms, noise, snr_db)


def uar_under_noise(
    predict: Callable[[np.ndarray], np.ndarray],
    waveforms: np.ndarray,
    labels: np.ndarray,
    speakers: np.ndarray,
    snrs: Sequence[float],
    score: Callable[[np.ndarray, np.ndarray], dict[str, Any]],
    seed: int = NOISE_SEED,
) -> dict[str, dict[str, float]]:
    """``{kind: {snr: UAR}}`` of ``predict`` (waveforms -> probabilities) on every noisy copy;
    ``score(labels, probabilities)`` gives the metrics (the report's own)."""
    table: dict[str, dict[str, float]] = {}
    for kind in NOISE_KINDS:
        table[kind] = {}
        for snr in snrs:
            noisy = noisy_copies(waveforms, speakers, kind, float(snr), seed)
            table[kind][f"{float(snr):g}"] = float(score(labels, predict(noisy))["uar"])
    return table


ONSET_TOP_DB = 20.0  # speech starts at the first 25 ms frame within 20 dB of the loudest (the records' noise is quieter)


def shortened(waveform: np.ndarray, seconds: float, sample_rate: int, noise_level: float, rng: np.random.Generator) -> np.ndarray:
    """``waveform`` (one prepared clip) as ``kser build-records`` would prepare a recording of only its
    first ``seconds`` of speech (from its onset, :func:`kser.waveform.speech_bounds`): normalised,
    padded with zeros to the clip's length, and given the builder's peak-relative noise at ``noise_level``."""
    from kser.waveform import add_peak_relative_noise, normalize, pad_or_trim, speech_bounds

    start, _ = speech_bounds(waveform, sample_rate, ONSET_TOP_DB)
    speech, _ = normalize(waveform[start : start + int(round(seconds * sample_rate))])
    return add_peak_relative_noise(pad_or_trim(speech, waveform.shape[0]), noise_level, rng)[0]


def uar_by_duration(
    predict: Callable[[np.ndarray], np.ndarray],
    waveforms: np.ndarray,
    labels: np.ndarray,
    durations: Sequence[float],
    score: Callable[[np.ndarray, np.ndarray], dict[str, Any]],
    sample_rate: int,
    noise_level: float,
    seed: int = NOISE_SEED,
) -> dict[str, float]:
    """``{seconds: UAR}`` of ``predict`` on every clip :func:`shortened` to each duration (the same draws for every model)."""
    table: dict[str, float] = {}
    for seconds in durations:
        if not seconds > 0:
            raise ValueError(f"a duration must be > 0 s, got {seconds}")
        rng = np.random.default_rng([seed, int(round(seconds * 1000))])
        short = np.stack([shortened(waveform, float(seconds), sample_rate, noise_level, rng) for waveform in waveforms])
        table[f"{float(seconds):g}"] = float(score(labels, predict(short))["uar"])
    return table
