"""Splits happen first, keep speakers apart and keep the emotion mix."""

import collections
import random

import numpy as np
import pytest

from kser.config import CREMA_D_EMOTIONS, SplitConfig
from kser.errors import KserError
from kser.layouts import UNKNOWN_SPEAKER, ClipSource
from kser.splits import SPLITS, split_clips


def corpus(speakers=40, per_emotion=4, drop_every=7):
    """A CREMA-D-like set with uneven speakers (some clips missing) and a minority class."""
    clips = []
    for s in range(speakers):
        for emotion in CREMA_D_EMOTIONS:
            count = per_emotion - (1 if emotion == "NEU" else 0) - (1 if (s % drop_every == 0) else 0)
            for k in range(count):
                clip_id = f"{1001 + s}_{k:03d}_{emotion}_XX"
                clips.append(ClipSource(f"/x/{clip_id}.wav", emotion, str(1001 + s), clip_id))
    return clips


def test_every_clip_in_exactly_one_split_and_speakers_disjoint():
    clips = corpus()
    result = split_clips(clips, SplitConfig(), seed=0)
    ids = [c.clip_id for split in SPLITS for c in result[split]]
    assert sorted(ids) == sorted(c.clip_id for c in clips)
    speakers = {split: {c.speaker for c in result[split]} for split in SPLITS}
    assert not speakers["train"] & speakers["validation"]
    assert not speakers["train"] & speakers["test"]
    assert not speakers["validation"] & speakers["test"]


def test_speaker_split_is_stratified_and_near_target_fractions():
    clips = corpus()
    total = collections.Counter(c.label for c in clips)
    result = split_clips(clips, SplitConfig(fractions=(0.7, 0.15, 0.15)), seed=3)
    for split, target in zip(SPLITS, (0.7, 0.15, 0.15)):
        counts = collections.Counter(c.label for c in result[split])
        assert abs(len(result[split]) / len(clips) - target) < 0.03, split
        for label in CREMA_D_EMOTIONS:
            assert abs(counts[label] / total[label] - target) < 0.05, (split, label)


def test_random_split_is_stratified_per_clip():
    clips = corpus()
    total = collections.Counter(c.label for c in clips)
    result = split_clips(clips, SplitConfig(strategy="random"), seed=0)
    for split, target in zip(SPLITS, (0.7, 0.15, 0.15)):
        counts = collections.Counter(c.label for c in result[split])
        for label in CREMA_D_EMOTIONS:
            assert abs(counts[label] - target * total[label]) <= 1, (split, label)


@pytest.mark.parametrize("strategy", ["speaker", "random"])
def test_same_seed_same_split_whatever_the_input_order(strategy):
    clips = corpus()
    shuffled = clips[:]
    random.Random(5).shuffle(shuffled)
    first = split_clips(clips, SplitConfig(strategy=strategy), seed=11)
    again = split_clips(shuffled, SplitConfig(strategy=strategy), seed=11)
    other = split_clips(clips, SplitConfig(strategy=strategy), seed=12)
    assert first == again
    assert first != other


def test_speaker_split_needs_speakers():
    clips = [ClipSource(f"/x/{i}.wav", "a", UNKNOWN_SPEAKER, str(i)) for i in range(10)]
    with pytest.raises(KserError, match="--split=random"):
        split_clips(clips, SplitConfig(), seed=0)


def test_every_split_gets_a_speaker_even_when_few():
    clips = [ClipSource(f"/x/{s}_{i}.wav", "a", str(s), f"{s}_{i}") for s in range(3) for i in range(5)]
    result = split_clips(clips, SplitConfig(), seed=0)
    assert all(len({c.speaker for c in result[split]}) == 1 for split in SPLITS)


@pytest.mark.parametrize("fractions", [(0.5, 0.5, 0.5), (0.0, 0.5, 0.5), (0.8, 0.2)])
def test_bad_fractions_are_refused(fractions):
    with pytest.raises(KserError, match="fractions"):
        split_clips(corpus(speakers=5), SplitConfig(fractions=fractions), seed=0)
