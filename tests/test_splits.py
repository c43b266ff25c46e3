"""Splits happen first, keep speakers apart and keep the emotion mix."""

import collections
import random

import pytest

from kser.config import CREMA_D_EMOTIONS, SplitConfig
from kser.errors import KserError
from kser.layouts import UNKNOWN_SPEAKER, ClipSource
from kser.splits import SPLITS, speaker_folds, split_clips


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


def test_split_none_puts_every_clip_in_test_whatever_the_fractions():
    clips = corpus(speakers=5)
    result = split_clips(clips, SplitConfig(strategy="none", fractions=(0.0, 0.0, 1.0)), seed=0)
    assert result["train"] == [] and result["validation"] == []
    assert sorted(c.clip_id for c in result["test"]) == sorted(c.clip_id for c in clips)


def test_a_split_with_a_share_but_no_clips_is_refused():
    clips = corpus(speakers=4, per_emotion=2)
    with pytest.raises(KserError, match="leave the train and validation splits with no clips"):
        split_clips(clips, SplitConfig(strategy="random", fractions=(0.01, 0.01, 0.98)), seed=0)
    # The speaker split gives every split with a share at least one speaker instead.
    result = split_clips(clips, SplitConfig(strategy="speaker", fractions=(0.01, 0.01, 0.98)), seed=0)
    assert all(result[split] for split in SPLITS)


def per_speaker_counts(clips):
    counts = collections.defaultdict(collections.Counter)
    for clip in clips:
        counts[clip.speaker][clip.label] += 1
    return {speaker: dict(c) for speaker, c in counts.items()}


@pytest.mark.parametrize("speakers, folds", [(18, 6), (40, 5), (7, 7), (10, 3)])
def test_speaker_folds_test_every_speaker_exactly_once(speakers, folds):
    from kser.cross_validation import make_folds

    counts = per_speaker_counts(corpus(speakers=speakers))
    groups = speaker_folds(counts, folds, seed=0)
    assert len(groups) == folds and all(groups)
    assert sorted(s for group in groups for s in group) == sorted(counts)  # every speaker in exactly one fold
    plans = make_folds(groups)
    tested = [s for plan in plans for s in plan.test]
    assert sorted(tested) == sorted(counts)  # tested exactly once, never in two folds' test sets
    for plan in plans:
        roles = [set(plan.train), set(plan.validation), set(plan.test)]
        assert all(roles) and not (roles[0] & roles[1] or roles[0] & roles[2] or roles[1] & roles[2])
        assert roles[0] | roles[1] | roles[2] == set(counts)
    for plan, validated in zip(make_folds(groups, validate=False), plans):  # the validation group trains too
        assert plan.validation == () and plan.test == validated.test
        assert set(plan.train) == set(validated.train) | set(validated.validation)


def test_speaker_folds_are_stratified_and_seeded():
    counts = per_speaker_counts(corpus(speakers=40))
    totals = collections.Counter()
    for per_label in counts.values():
        totals.update(per_label)
    groups = speaker_folds(counts, 5, seed=1)
    for group in groups:
        fold = collections.Counter()
        for speaker in group:
            fold.update(counts[speaker])
        for label, total in totals.items():
            assert abs(fold[label] / total - 0.2) < 0.05, (label, fold)
    assert speaker_folds(counts, 5, seed=1) == groups
    assert speaker_folds(counts, 5, seed=2) != groups


@pytest.mark.parametrize("speakers, folds, message", [(3, 4, "at least 4 speakers"), (5, 1, "at least 2 folds")])
def test_speaker_folds_refuse_impossible_requests(speakers, folds, message):
    with pytest.raises(KserError, match=message):
        speaker_folds(per_speaker_counts(corpus(speakers=speakers)), folds, seed=0)


@pytest.mark.parametrize("fractions", [(0.5, 0.5, 0.5), (0.0, 0.5, 0.5), (0.8, 0.2)])
def test_bad_fractions_are_refused(fractions):
    with pytest.raises(KserError, match="fractions"):
        split_clips(corpus(speakers=5), SplitConfig(fractions=fractions), seed=0)
