"""A reproducible corpus of bad and odd audio files, for the fuzz tests of build-records and predict.

Every file is made from a seeded generator, so two calls write byte-identical trees. Files sit in
label folders (``folders`` layout). ``expected_usable`` says which ones a correct reader can use:
the rest must be skipped with a reason, never crash the build.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import soundfile

RATE = 16_000
LABELS = ("ANG", "HAP", "SAD")


def _wav_header(channels: int, rate: int, bits: int, data_bytes: int, fmt: int = 1) -> bytes:
    block = channels * bits // 8
    return (
        b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE"
        + b"fmt " + struct.pack("<IHHIIHH", 16, fmt, channels, rate, rate * block, block, bits)
        + b"data" + struct.pack("<I", data_bytes)
    )


def _speech_like(rng: np.random.Generator, seconds: float, rate: int = RATE, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    base = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 300) * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    signal = (base + 0.01 * rng.standard_normal(t.size)).astype(np.float32)
    return np.repeat(signal[:, None], channels, axis=1) if channels > 1 else signal


def write_fuzz_corpus(root: Path, seed: int = 0) -> dict[str, bool]:
    """Write the corpus under ``root``; returns {path: whether a correct reader can use it}."""
    rng = np.random.default_rng(seed)
    files: dict[str, bool] = {}
    counter = iter(range(10_000))

    def path_for(suffix: str) -> Path:
        index = next(counter)
        folder = root / LABELS[index % len(LABELS)]
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"f{index:03d}{suffix}"

    def add_bytes(data: bytes, suffix: str, usable: bool) -> None:
        path = path_for(suffix)
        path.write_bytes(data)
        files[str(path)] = usable

    def add_audio(samples: np.ndarray, rate: int, suffix: str = ".wav", subtype: str | None = None, usable: bool = True) -> None:
        path = path_for(suffix)
        soundfile.write(path, samples, rate, subtype=subtype)
        files[str(path)] = usable

    # Good clips in several formats, so every split has clips of every label.
    for _ in range(24):
        add_audio(_speech_like(rng, rng.uniform(0.4, 1.2)), RATE, subtype="PCM_16")
    for _ in range(6):
        add_audio(_speech_like(rng, 0.8), RATE, suffix=".flac")
    # Truncated at random byte offsets: WAV keeps what is there (short header-only files fail);
    # FLAC loses sync and is skipped; both are fine as long as nothing crashes.
    whole_wav = _wav_header(1, RATE, 16, 32_000) + (_speech_like(rng, 1.0) * 32767).astype("<i2").tobytes()
    flac_path = root / "source.flac.tmp"
    soundfile.write(flac_path, _speech_like(rng, 1.0), RATE, format="FLAC")
    whole_flac = flac_path.read_bytes()
    flac_path.unlink()
    for _ in range(50):
        add_bytes(whole_wav[: int(rng.integers(0, len(whole_wav)))], ".wav", usable=None)
    for _ in range(25):
        add_bytes(whole_flac[: int(rng.integers(0, len(whole_flac)))], ".flac", usable=None)
    # Random bytes behind real magic numbers.
    for magic, suffix in ((b"RIFF", ".wav"), (b"fLaC", ".flac"), (b"OggS", ".ogg"), (b"ID3\x03", ".mp3"), (b"FORM", ".aiff")):
        for _ in range(12):
            add_bytes(magic + rng.bytes(int(rng.integers(0, 4000))), suffix, usable=False)
    for _ in range(10):  # a valid WAV header, then noise as data
        add_bytes(_wav_header(1, RATE, 16, 8000) + rng.bytes(8000), ".wav", usable=True)
    # Non-finite floats.
    for bad in (np.nan, np.inf, -np.inf):
        for _ in range(4):
            samples = _speech_like(rng, 0.5)
            samples[rng.integers(0, samples.size, 5)] = bad
            add_audio(samples, RATE, subtype="FLOAT", usable=False)
    # Channel counts: 0 (a header no writer makes), 2, 64.
    for _ in range(3):
        add_bytes(_wav_header(0, RATE, 16, 3200) + bytes(3200), ".wav", usable=False)
    add_audio(_speech_like(rng, 0.5, channels=2), RATE, subtype="PCM_16")
    add_audio(_speech_like(rng, 0.3, channels=64), RATE, subtype="PCM_16")
    # Sample rates: 1 Hz (refused: not speech), 8 kHz, 44.1 kHz, 384 kHz.
    add_audio(_speech_like(rng, 4.0, rate=1), 1, subtype="PCM_16", usable=False)
    for rate in (8_000, 44_100, 384_000):
        add_audio(_speech_like(rng, 0.5, rate=rate), rate, subtype="PCM_16")
    # Nothing at all, and silence.
    for _ in range(4):
        add_bytes(b"", ".wav", usable=False)
    add_audio(np.zeros(0, np.float32), RATE, subtype="PCM_16", usable=False)
    add_bytes(_wav_header(1, RATE, 16, 0), ".wav", usable=False)
    add_audio(np.zeros(RATE, np.float32), RATE, subtype="PCM_16")
    # Very long: two minutes, cut to the clip length by build-records, windowed by predict.
    add_audio(_speech_like(rng, 120.0), RATE, subtype="PCM_16")
    # Not audio at all, with an audio extension.
    for _ in range(6):
        add_bytes(rng.bytes(int(rng.integers(1, 2000))), str(rng.choice([".wav", ".flac", ".ogg"])), usable=False)
    return files
