"""Both input pipelines (tf.data, and the PyDataset used without TensorFlow) under one contract:
shapes, features, rebalancing of the training split only, determinism. Every test runs on each."""

import collections

import numpy as np
import pytest

from kser.config import AudioConfig, AugmentConfig, BuildConfig, RecordsConfig, SplitConfig
from kser.data import Subset, class_counts, class_weights, split_size
from kser.inputs import PIPELINE_ENV, PIPELINES, make_inputs
from kser.records_info import read_records_info
from kser.errors import KserError
from kser.features import log_mel_deltas
from kser.waveform import normalize
from tests.records_reader import read_split
from tests.synthetic import write_crema_d
from kser_tfrecords_builder import build_records

SENTENCES = ("DFA", "IEO", "IOM", "ITH", "ITS", "IWL", "IWW", "MTI")


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """An imbalanced set: NEU has 3 of 8 sentences, SAD 5, the others all 8."""
    root = tmp_path_factory.mktemp("data")
    write_crema_d(root / "audio", actors=6, sentences=SENTENCES, seconds=(0.2, 0.6))
    for path in (root / "audio").glob("*.wav"):
        sentence, emotion = path.stem.split("_")[1:3]
        if (emotion == "NEU" and sentence not in SENTENCES[:3]) or (emotion == "SAD" and sentence not in SENTENCES[:5]):
            path.unlink()
    config = BuildConfig(
        data_dir=str(root / "audio"),
        output_dir=str(root / "records"),
        audio=AudioConfig(clip_seconds=0.5),
        records=RecordsConfig(shard_size_mb=0.3),
        split=SplitConfig(strategy="random"),
        workers=1,
    )
    build_records(config, progress_stream=open("/dev/null", "w"))
    return root / "records"


@pytest.fixture(params=PIPELINES)
def make_dataset(request, monkeypatch):
    """kser.inputs.make_inputs on one pipeline, as each pipeline's users get it."""
    monkeypatch.setenv(PIPELINE_ENV, request.param)

    def make(*args, **options):
        dataset = make_inputs(*args, **options)
        return NumpyBatches(dataset) if request.param == "tf.data" else dataset

    return make


class NumpyBatches:
    """A tf.data dataset whose batches come as numpy arrays, as the PyDataset's do."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __iter__(self):
        return self.dataset.as_numpy_iterator()


def labels_of(dataset):
    return np.concatenate([np.argmax(np.asarray(batch[1]), axis=1) for batch in dataset])


def test_feature_batches_have_the_study_layout_and_equal_the_features_of_the_records(make_dataset, records):
    dataset = make_dataset(records, "validation", batch_size=4)
    inputs, labels = next(iter(dataset))
    assert inputs.shape[1:] == (51, 64, 3) and inputs.dtype.name == "float32"  # 0.5 s clips -> 51 frames
    assert labels.shape == (inputs.shape[0], 6)
    waveforms = next(iter(make_dataset(records, "validation", batch_size=4, output="waveforms")))[0]
    by_bytes = {row["waveform"].tobytes(): row for row in read_split(records, "validation")}
    rows = [by_bytes[waveform.tobytes()] for waveform in waveforms]  # shards are interleaved
    expected = log_mel_deltas(np.stack([normalize(waveform)[0] for waveform in waveforms]))  # the model's front end
    np.testing.assert_allclose(inputs, np.asarray(expected), atol=1e-3)  # dB; float32 vs float64 normalisation
    assert list(np.argmax(labels, axis=1)) == [row["label"] for row in rows]


@pytest.mark.parametrize("split", ["validation", "test"])
def test_evaluation_splits_are_never_resampled_or_augmented(make_dataset, records, split):
    plain = make_dataset(records, split, batch_size=8)
    busy = make_dataset(records, split, batch_size=8, balance="oversample", augment=AugmentConfig(), seed=3)
    first = [x for x, _ in plain]
    again = [x for x, _ in plain]
    other = [x for x, _ in busy]
    for a, b, c in zip(first, again, other):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    manifest = read_records_info(records)
    assert len(labels_of(busy)) == manifest.splits[split].clips
    assert collections.Counter(labels_of(busy)) == collections.Counter(
        {i: n for i, n in enumerate(manifest.splits[split].class_counts.values()) if n}
    )


def test_oversampled_training_epoch_is_balanced(make_dataset, records):
    manifest = read_records_info(records)
    counts = manifest.splits["train"].class_counts
    assert min(counts.values()) < 0.5 * max(counts.values())  # the fixture really is imbalanced
    dataset = make_dataset(records, "train", batch_size=16, balance="oversample", output="waveforms", seed=0)
    totals = collections.Counter()
    for _ in range(4):
        totals.update(labels_of(dataset))
    target = 4 * max(counts.values())
    for label in range(6):
        assert abs(totals[label] - target) <= 0.08 * target, (label, totals[label], target)
    assert abs(sum(totals.values()) - 4 * split_size(manifest, "train", "oversample")) <= 0.05 * sum(totals.values())


def test_unbalanced_training_epoch_holds_each_clip_once(make_dataset, records):
    manifest = read_records_info(records)
    dataset = make_dataset(records, "train", batch_size=16, output="waveforms", seed=0)
    waveforms = np.concatenate([x for x, _ in dataset])
    assert waveforms.shape == (manifest.splits["train"].clips, 8000)
    assert len({row.tobytes() for row in waveforms}) == waveforms.shape[0]


def test_weights_mode_adds_class_weights(make_dataset, records):
    manifest = read_records_info(records)
    weights = class_weights(manifest)
    counts = np.asarray(list(manifest.splits["train"].class_counts.values()))
    np.testing.assert_allclose(weights * counts, counts.sum() / 6, rtol=1e-6)
    for _, labels, sample_weights in make_dataset(records, "train", batch_size=16, balance="weights", seed=0):
        np.testing.assert_allclose(sample_weights, weights[np.argmax(labels, axis=1)])
    assert len(next(iter(make_dataset(records, "validation", balance="weights")))) == 2


def test_training_order_and_augmentation_are_fresh_each_epoch_and_repeatable_by_seed(make_dataset, records):
    augment = AugmentConfig(pitch_prob=0.0)
    dataset = make_dataset(records, "train", batch_size=8, augment=augment, seed=5)
    epoch_one = next(iter(dataset))[0]
    epoch_two = next(iter(dataset))[0]
    assert not np.array_equal(epoch_one, epoch_two)
    replay = next(iter(make_dataset(records, "train", batch_size=8, augment=augment, seed=5)))[0]
    np.testing.assert_array_equal(epoch_one, replay)


def test_clear_errors_for_missing_or_unknown_inputs(make_dataset, records, tmp_path):
    with pytest.raises(KserError, match="no manifest.json"):
        make_dataset(tmp_path, "train")
    with pytest.raises(KserError, match="split 'dev'"):
        make_dataset(records, "dev")
    with pytest.raises(KserError, match="balance"):
        make_dataset(records, "train", balance="undersample")


def test_a_speaker_subset_reads_only_those_speakers_from_every_split(make_dataset, records):
    manifest = read_records_info(records)
    speakers = {row["speaker"]: row for split in ("train", "validation", "test") for row in read_split(records, split)}
    chosen = frozenset(sorted({row["speaker"] for split in ("train", "test") for row in read_split(records, split)})[:2])
    subset = Subset(("train", "validation", "test"), chosen, name="two speakers")
    expected = [row for split in ("train", "validation", "test") for row in read_split(records, split) if row["speaker"] in chosen]
    assert len(speakers) == 6 and 0 < len(expected) < sum(info.clips for info in manifest.splits.values())
    dataset = make_dataset(records, subset, batch_size=8, training=False, output="waveforms")
    waveforms = np.concatenate([batch[0] for batch in dataset])
    assert sorted(w.tobytes() for w in waveforms) == sorted(row["waveform"].tobytes() for row in expected)
    counts = collections.Counter(row["label"] for row in expected)
    assert list(class_counts(manifest, subset)) == [counts.get(i, 0) for i in range(6)]
    assert split_size(manifest, subset) == len(expected)
    assert split_size(manifest, subset, "oversample") == max(counts.values()) * len(counts)


def test_an_empty_subset_is_a_clear_error(make_dataset, records):
    with pytest.raises(KserError, match="nobody of .*records has no clips"):
        make_dataset(records, Subset(("train",), frozenset({"no such speaker"}), name="nobody"), batch_size=8)


def test_mixup_blends_each_clip_with_another_of_the_batch_and_its_label_alike(make_dataset, records):
    common = dict(batch_size=8, training=True, output="waveforms", seed=4)
    plain_x, plain_y = next(iter(make_dataset(records, "train", **common)))
    mixed_x, mixed_y = next(iter(make_dataset(records, "train", mixup_alpha=0.4, **common)))
    plain_x, plain_y, mixed_x, mixed_y = (t.astype(np.float64) for t in (plain_x, plain_y, mixed_x, mixed_y))
    np.testing.assert_allclose(mixed_y.sum(axis=1), 1.0, atol=1e-6)
    assert not np.allclose(mixed_x, plain_x)
    for i in range(len(mixed_x)):
        fits = []
        for j in range(len(plain_x)):
            difference = plain_x[i] - plain_x[j]
            lam = 1.0 if not difference.any() else float(np.dot(mixed_x[i] - plain_x[j], difference) / np.dot(difference, difference))
            blend = lam * plain_x[i] + (1 - lam) * plain_x[j]
            if 0 <= lam <= 1 and np.allclose(blend, mixed_x[i], atol=1e-4):
                fits.append(np.allclose(lam * plain_y[i] + (1 - lam) * plain_y[j], mixed_y[i], atol=1e-4))
        assert fits and any(fits), i
    again_x, _ = next(iter(make_dataset(records, "train", mixup_alpha=0.4, **common)))
    np.testing.assert_array_equal(again_x, mixed_x.astype(np.float32))  # repeatable with a seed


def test_mixup_never_touches_evaluation_splits(make_dataset, records):
    plain = make_dataset(records, "validation", batch_size=8)
    mixed = make_dataset(records, "validation", batch_size=8, mixup_alpha=0.4, seed=1)
    for (a, b), (c, d) in zip(plain, mixed):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
