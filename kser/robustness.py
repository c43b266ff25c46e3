"""UAR under noise: a split's clips mixed with white noise or babble at set signal-to-noise ratios.

Why: a model that scores well on studio speech can fall apart in a café; the figure users need is
UAR against SNR, next to the clean UAR (issue 22). ``kser evaluate --noise_snr=20,10,5,0`` adds it
to the report (``robustness`` in report.json, ``robustness.png``).

Noise: **white** Gaussian noise, and **babble**, the sum of ``BABBLE_TALKERS`` other clips of the
same records spoken by *other* speakers (each scaled to unit power first, so that no talker
dominates). The noise is scaled so that ``10 log10(P_clip / P_noise) = snr``, both powers over the
whole clip (the records' clips are mostly speech: padding is short and trimmed clips have none).
Every draw comes from ``seed``, so two models are scored on the very same noisy clips.
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
