"""Tiny synthetic audio data sets made by the tests themselves (no real recordings needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile

from kser.config import CREMA_D_EMOTIONS


def tone(seconds: float, frequency: float, sample_rate: int = 16_000, amplitude: float = 0.3, seed: int = 0) -> np.ndarray:
    """A sine with a little noise: cheap, deterministic, non-silent."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    return (amplitude * np.sin(2 * np.pi * frequency * t) + 0.01 * rng.standard_normal(t.shape)).astype(np.float32)


def write_crema_d(
    root: Path,
    actors: int = 6,
    sentences: tuple[str, ...] = ("DFA", "IEO"),
    emotions: tuple[str, ...] = CREMA_D_EMOTIONS,
    seconds: tuple[float, float] = (0.3, 0.8),
    sample_rate: int = 16_000,
    seed: int = 0,
) -> list[Path]:
    """A CREMA-D-named folder of short tones, one per (actor, sentence, emotion)."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for actor in range(1001, 1001 + actors):
        for sentence in sentences:
            for index, emotion in enumerate(emotions):
                path = root / f"{actor}_{sentence}_{emotion}_XX.wav"
                samples = tone(rng.uniform(*seconds), 150 + 30 * index, sample_rate, seed=int(rng.integers(1 << 30)))
                soundfile.write(path, samples, sample_rate, subtype="PCM_16")
                paths.append(path)
    return paths
