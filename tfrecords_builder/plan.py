"""Which clip goes into which shard, decided up front so that a killed build can resume.

Shards of one split get (nearly) the same number of clips and the same class mix: clips are
shuffled with the seed, grouped by label and dealt round-robin. The shard count aims at
RecordsConfig.shard_size_mb per shard.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from kser.config import BuildConfig
from kser.layouts import ClipSource
from kser.records import ENCODINGS, shard_name
from kser.splits import SPLITS

_EXAMPLE_OVERHEAD_BYTES = 200  # keys, label, ids and TFRecord framing per clip, roughly


@dataclasses.dataclass(frozen=True)
class ShardPlan:
    split: str
    index: int
    count: int
    clips: tuple[ClipSource, ...]

    @property
    def name(self) -> str:
        return shard_name(self.split, self.index, self.count)


def bytes_per_clip(config: BuildConfig) -> int:
    sample_bytes = np.dtype(ENCODINGS[config.records.waveform_encoding]).itemsize
    return config.audio.clip_samples * sample_bytes + _EXAMPLE_OVERHEAD_BYTES


def plan_shards(splits: dict[str, list[ClipSource]], config: BuildConfig) -> list[ShardPlan]:
    """Every split's shards, in split order; empty splits get no shard."""
    target_bytes = config.records.shard_size_mb * 1e6
    plans: list[ShardPlan] = []
    for split_index, split in enumerate(SPLITS):
        clips = splits.get(split, [])
        if not clips:
            continue
        count = config.records.num_shards or max(1, int(round(len(clips) * bytes_per_clip(config) / target_bytes)))
        count = min(max(count, config.records.min_shards), len(clips))
        rng = np.random.default_rng([config.seed, split_index])
        shuffled = [clips[i] for i in rng.permutation(len(clips))]
        dealt = sorted(shuffled, key=lambda clip: clip.label)  # stable: keeps the shuffle within a label
        for index in range(count):
            members = dealt[index::count]
            order = rng.permutation(len(members))
            plans.append(ShardPlan(split, index, count, tuple(members[i] for i in order)))
    return plans
