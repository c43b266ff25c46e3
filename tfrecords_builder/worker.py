"""The per-clip job run in worker processes: decode, prepare, encode.

Imports only numpy and soundfile (tensorflow-io only when it is asked for), so spawning a
worker is cheap (the parent, which writes the shards, needs no TensorFlow either).
"""

from __future__ import annotations

import dataclasses

from kser.audio import decode_audio
from kser.config import AudioConfig
from kser.errors import SkipClip
from kser.layouts import ClipSource
from kser.records import encode_waveform
from kser.waveform import clip_rng, prepare


@dataclasses.dataclass(frozen=True)
class ClipTask:
    clip: ClipSource
    audio: AudioConfig
    encoding: str
    decoder: str
    seed: int


@dataclasses.dataclass(frozen=True)
class ClipResult:
    clip: ClipSource
    waveform: bytes = b""
    scale: float = 1.0
    source_samples: int = 0
    silent: bool = False
    skip_reason: str | None = None
    warnings: tuple[str, ...] = ()  # used, but the file was odd (truncated)


def process_clip(task: ClipTask) -> ClipResult:
    """Prepare one clip; a bad file becomes a ClipResult with its skip reason, never an exception."""
    try:
        decoded = decode_audio(task.clip.path, task.audio.sample_rate, task.decoder)
    except SkipClip as skip:
        return ClipResult(task.clip, skip_reason=str(skip))
    prepared = prepare(decoded.samples, task.audio, clip_rng(task.seed, task.clip.clip_id))
    waveform, scale = encode_waveform(prepared.samples, task.encoding)
    return ClipResult(task.clip, waveform, scale, prepared.source_samples, prepared.silent, warnings=decoded.warnings)
