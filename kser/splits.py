"""Train / validation / test splits, made before anything else touches the data.

``speaker``: no speaker appears in two splits, and each split's emotion mix follows the
whole set's (speakers are assigned greedily, largest first, to the split whose per-class
targets they fill best). ``random``: the study's per-clip split, stratified by label.
Both are deterministic functions of the seed and the set of clips, whatever their order.
"""

from __future__ import annotations

import collections

import numpy as np

from kser.config import SplitConfig
from kser.errors import KserError
from kser.layouts import UNKNOWN_SPEAKER, ClipSource

SPLITS: tuple[str, ...] = ("train", "validation", "test")
STRATEGIES = ("speaker", "random")


def split_clips(clips: list[ClipSource], config: SplitConfig, seed: int) -> dict[str, list[ClipSource]]:
    """Assign every clip to exactly one split; each split's list is sorted by clip id."""
    fractions = np.asarray(config.fractions, dtype=np.float64)
    if fractions.shape != (3,) or np.any(fractions < 0) or not np.isclose(fractions.sum(), 1.0) or fractions[0] <= 0:
        raise KserError(f"split fractions must be three non-negative numbers summing to 1 with train > 0; got {config.fractions}")
    ordered = sorted(clips, key=lambda clip: clip.clip_id)
    rng = np.random.default_rng(seed)
    if config.strategy == "speaker":
        assignment = _by_speaker(ordered, fractions, rng)
    elif config.strategy == "random":
        assignment = _by_clip(ordered, fractions, rng)
    else:
        raise KserError(f"unknown split strategy {config.strategy!r}; choose one of {', '.join(STRATEGIES)}")
    result: dict[str, list[ClipSource]] = {name: [] for name in SPLITS}
    for clip, split_index in zip(ordered, assignment):
        result[SPLITS[split_index]].append(clip)
    return result


def _by_clip(clips: list[ClipSource], fractions: np.ndarray, rng: np.random.Generator) -> list[int]:
    assignment = [0] * len(clips)
    by_label: dict[str, list[int]] = collections.defaultdict(list)
    for index, clip in enumerate(clips):
        by_label[clip.label].append(index)
    for label in sorted(by_label):
        members = np.asarray(by_label[label])[rng.permutation(len(by_label[label]))]
        bounds = np.round(np.cumsum(fractions) * len(members)).astype(int)
        for split_index, chunk in enumerate(np.split(members, bounds[:-1])):
            for index in chunk:
                assignment[int(index)] = split_index
    return assignment


def _by_speaker(clips: list[ClipSource], fractions: np.ndarray, rng: np.random.Generator) -> list[int]:
    unknown = [clip.path for clip in clips if clip.speaker == UNKNOWN_SPEAKER]
    if unknown:
        raise KserError(
            f"--split=speaker needs a speaker for every clip, but {len(unknown)} have none (e.g. {unknown[0]}); "
            "give --speaker_pattern, a speaker column, or use --split=random"
        )
    labels = sorted({clip.label for clip in clips})
    label_index = {label: i for i, label in enumerate(labels)}
    speakers = sorted({clip.speaker for clip in clips})
    needed = int(np.count_nonzero(fractions))
    if len(speakers) < needed:
        raise KserError(f"--split=speaker needs at least {needed} speakers, found {len(speakers)}; use --split=random")
    counts = {speaker: np.zeros(len(labels)) for speaker in speakers}
    for clip in clips:
        counts[clip.speaker][label_index[clip.label]] += 1
    total = sum(counts.values())
    targets = fractions[:, None] * total[None, :]
    filled = np.zeros_like(targets)
    # Shuffle, then a stable sort by size: largest speakers first, ties broken by the seed.
    order = [speakers[i] for i in rng.permutation(len(speakers))]
    order.sort(key=lambda speaker: -counts[speaker].sum())
    speaker_split: dict[str, int] = {}
    for position, speaker in enumerate(order):
        remaining_speakers = len(order) - position
        empty_splits = [s for s in range(3) if fractions[s] > 0 and filled[s].sum() == 0]
        if len(empty_splits) >= remaining_speakers:
            choice = empty_splits[0]  # every split with a share gets at least one speaker
        else:
            gain = [
                np.sum((filled[s] + counts[speaker] - targets[s]) ** 2 - (filled[s] - targets[s]) ** 2)
                if fractions[s] > 0
                else np.inf
                for s in range(3)
            ]
            choice = int(np.argmin(gain))
        speaker_split[speaker] = choice
        filled[choice] += counts[speaker]
    return [speaker_split[clip.speaker] for clip in clips]
