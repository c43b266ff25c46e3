"""Train / validation / test splits, made before anything else touches the data, and speaker folds.

``speaker``: no speaker appears in two splits, and each split's emotion mix follows the
whole set's (speakers are assigned greedily, largest first, to the split whose per-class
targets they fill best). ``random``: the study's per-clip split, stratified by label.
``none``: every clip goes to the test split (records to score a model on, or to cross-validate).
All are deterministic functions of the seed and the set of clips, whatever their order.
:func:`speaker_folds` makes K speaker-disjoint, emotion-stratified folds the same way.
"""

from __future__ import annotations

import collections

import numpy as np

from kser.config import SplitConfig
from kser.errors import KserError
from kser.layouts import UNKNOWN_SPEAKER, ClipSource

SPLITS: tuple[str, ...] = ("train", "validation", "test")
STRATEGIES = ("speaker", "random", "none")


def split_clips(clips: list[ClipSource], config: SplitConfig, seed: int) -> dict[str, list[ClipSource]]:
    """Assign every clip to exactly one split; each split's list is sorted by clip id."""
    if config.strategy not in STRATEGIES:
        raise KserError(f"unknown split strategy {config.strategy!r}; choose one of {', '.join(STRATEGIES)}")
    ordered = sorted(clips, key=lambda clip: clip.clip_id)
    if config.strategy == "none":
        return {name: ordered if name == "test" else [] for name in SPLITS}
    fractions = np.asarray(config.fractions, dtype=np.float64)
    if fractions.shape != (3,) or np.any(fractions < 0) or not np.isclose(fractions.sum(), 1.0) or fractions[0] <= 0:
        raise KserError(
            f"split fractions must be three non-negative numbers summing to 1 with train > 0; got {config.fractions} "
            "(for records that are all test data, use --split=none)"
        )
    rng = np.random.default_rng(seed)
    if config.strategy == "speaker":
        assignment = _by_speaker(ordered, fractions, rng)
    else:
        assignment = _by_clip(ordered, fractions, rng)
    result: dict[str, list[ClipSource]] = {name: [] for name in SPLITS}
    for clip, split_index in zip(ordered, assignment):
        result[SPLITS[split_index]].append(clip)
    empty = [name for name, fraction in zip(SPLITS, fractions) if fraction > 0 and not result[name]]
    if empty:
        splits = f"{' and '.join(empty)} split{'s' if len(empty) > 1 else ''}"
        raise KserError(
            f"split fractions {tuple(config.fractions)} leave the {splits} with no clips "
            f"({len(ordered)} clips in all); give {'them' if len(empty) > 1 else 'it'} a larger share"
        )
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


def _require_speakers(clips: list[ClipSource], what: str) -> None:
    unknown = [clip.path for clip in clips if clip.speaker == UNKNOWN_SPEAKER]
    if unknown:
        raise KserError(
            f"{what} needs a speaker for every clip, but {len(unknown)} have none (e.g. {unknown[0]}); "
            "give --speaker_pattern, a speaker column, or use --split=random"
        )


def _by_speaker(clips: list[ClipSource], fractions: np.ndarray, rng: np.random.Generator) -> list[int]:
    _require_speakers(clips, "--split=speaker")
    labels = sorted({clip.label for clip in clips})
    label_index = {label: i for i, label in enumerate(labels)}
    counts: dict[str, np.ndarray] = collections.defaultdict(lambda: np.zeros(len(labels)))
    for clip in clips:
        counts[clip.speaker][label_index[clip.label]] += 1
    needed = int(np.count_nonzero(fractions))
    if len(counts) < needed:
        raise KserError(f"--split=speaker needs at least {needed} speakers, found {len(counts)}; use --split=random")
    speaker_split = assign_speakers(dict(counts), fractions, rng)
    return [speaker_split[clip.speaker] for clip in clips]


def assign_speakers(counts: dict[str, np.ndarray], fractions: np.ndarray, rng: np.random.Generator) -> dict[str, int]:
    """Speaker -> group index, for groups that should get ``fractions`` of every class.

    ``counts[speaker]`` is that speaker's clip count per class. Speakers are shuffled, then taken
    largest first (a stable sort, so ties stay in the seed's order), and each goes to the group whose
    per-class targets it fills best (least increase of the squared distance to the targets). Every
    group with a share gets at least one speaker.
    """
    speakers = sorted(counts)
    total = sum(counts.values())
    targets = fractions[:, None] * total[None, :]
    filled = np.zeros_like(targets)
    order = [speakers[i] for i in rng.permutation(len(speakers))]
    order.sort(key=lambda speaker: -counts[speaker].sum())
    groups = range(len(fractions))
    assignment: dict[str, int] = {}
    for position, speaker in enumerate(order):
        remaining_speakers = len(order) - position
        empty_groups = [g for g in groups if fractions[g] > 0 and filled[g].sum() == 0]
        if len(empty_groups) >= remaining_speakers:
            choice = empty_groups[0]
        else:
            gain = [
                np.sum((filled[g] + counts[speaker] - targets[g]) ** 2 - (filled[g] - targets[g]) ** 2)
                if fractions[g] > 0
                else np.inf
                for g in groups
            ]
            choice = int(np.argmin(gain))
        assignment[speaker] = choice
        filled[choice] += counts[speaker]
    return assignment


def speaker_folds(speaker_class_counts: dict[str, dict[str, int]], folds: int, seed: int) -> list[list[str]]:
    """``folds`` speaker-disjoint groups (sorted speaker lists) with about the same emotion mix each.

    ``speaker_class_counts[speaker][label]`` is how many clips of ``label`` that speaker has (the
    records manifest stores it). Every speaker is in exactly one fold.
    """
    if UNKNOWN_SPEAKER in speaker_class_counts:
        raise KserError("cross-validation needs a speaker for every clip; these records hold clips without one")
    if folds < 2:
        raise KserError(f"cross-validation needs at least 2 folds, got {folds}")
    if len(speaker_class_counts) < folds:
        raise KserError(f"{folds} folds need at least {folds} speakers; the records hold {len(speaker_class_counts)}")
    labels = sorted({label for per_label in speaker_class_counts.values() for label in per_label})
    counts = {
        speaker: np.asarray([per_label.get(label, 0) for label in labels], dtype=np.float64)
        for speaker, per_label in speaker_class_counts.items()
    }
    assignment = assign_speakers(counts, np.full(folds, 1.0 / folds), np.random.default_rng(seed))
    return [sorted(s for s, fold in assignment.items() if fold == k) for k in range(folds)]
