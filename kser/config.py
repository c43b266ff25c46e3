"""All of kser's configuration in one place, with the reference study's values as defaults.

Each stage reads only its own dataclass; the command line maps flags onto these fields, and
the records manifest stores them so that a build can be reproduced and resumed.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

CREMA_D_EMOTIONS: tuple[str, ...] = ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")


@dataclasses.dataclass(frozen=True)
class AudioConfig:
    """Per-clip waveform preparation (study steps 1-4)."""

    sample_rate: int = 16_000
    clip_seconds: float = 3.0
    normalize: bool = True
    # Peak-relative Gaussian noise: amp = noise_level * U(0, 1) * max(y); 0 writes clean audio.
    noise_level: float = 0.035
    # A clip whose standard deviation is below this is treated as silent (not scaled).
    silence_std: float = 1e-6

    @property
    def clip_samples(self) -> int:
        return int(round(self.sample_rate * self.clip_seconds))


@dataclasses.dataclass(frozen=True)
class SplitConfig:
    """How clips are divided into train / validation / test before anything else happens."""

    strategy: str = "speaker"  # "speaker" (actor-disjoint, stratified) or "random" (per clip, stratified)
    fractions: tuple[float, float, float] = (0.70, 0.15, 0.15)  # train, validation, test


@dataclasses.dataclass(frozen=True)
class RecordsConfig:
    """Shape of the TFRecord output."""

    shard_size_mb: float = 150.0
    # "int16": peak-scaled 16-bit PCM plus a float scale per clip; "float32": exact.
    waveform_encoding: str = "int16"


@dataclasses.dataclass(frozen=True)
class BuildConfig:
    """One ``kser build-records`` run: where from, where to, and how."""

    data_dir: str
    output_dir: str
    layout: str = "crema_d"
    speaker_pattern: str | None = None
    csv_path: str | None = None
    seed: int = 0  # drives the split, the shard order and the per-clip noise
    audio: AudioConfig = AudioConfig()
    split: SplitConfig = SplitConfig()
    records: RecordsConfig = RecordsConfig()
    decoder: str = "auto"  # "auto": soundfile, then tensorflow-io if its kernels load; or "soundfile" / "tfio"
    workers: int = 0  # 0: one per CPU core
    strict: bool = False
    overwrite: bool = False


@dataclasses.dataclass(frozen=True)
class FeatureConfig:
    """Log-mel + delta + delta-delta features (study step 5-6), librosa-compatible."""

    sample_rate: int = 16_000
    n_fft: int = 512
    win_length: int = 400  # 25 ms
    hop_length: int = 160  # 10 ms
    window: str = "hamming"
    n_mels: int = 64
    fmin: float = 0.0
    fmax: float | None = None  # None: sample_rate / 2
    center: bool = True
    amin: float = 1e-10
    delta_width: int = 9
    num_frames: int | None = 300  # frames kept per clip; None keeps all


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config dataclass (tuples become lists)."""
    return dataclasses.asdict(config)


def from_dict(cls: type, values: Mapping[str, Any]) -> Any:
    """Rebuild a config dataclass from ``to_dict`` output, restoring tuple fields."""
    kwargs = {}
    for field in dataclasses.fields(cls):
        if field.name in values:
            value = values[field.name]
            kwargs[field.name] = tuple(value) if isinstance(value, list) else value
    return cls(**kwargs)
