"""The PyDataset pipeline (kser.pydataset) against tf.data (kser.data) on the same records:
the same clips, order, counts, balance and features. tests/test_data.py runs the shared contract
on both; these compare the two directly and cover what only the PyDataset does."""

import collections

import numpy as np
import pytest

from kser.data import class_counts, make_dataset, split_size
from kser.pydataset import RecordsDataset, balanced_indices, read_clips
from kser.records_info import read_records_info
from tests.records_reader import read_split
from tests.test_data import records  # noqa: F401  (the module-scoped fixture)


def tf_batches(*args, **options):
    return list(make_dataset(*args, **options).as_numpy_iterator())


def rows(batches):
    return np.concatenate([batch[0] for batch in batches])


@pytest.mark.parametrize("output", ["waveforms", "features"])
def test_evaluation_batches_equal_tf_data_in_order_and_value(records, output):  # noqa: F811
    ours = list(RecordsDataset(records, "validation", batch_size=5, output=output))
    theirs = tf_batches(records, "validation", batch_size=5, output=output)
    assert [len(batch[0]) for batch in ours] == [len(batch[0]) for batch in theirs]
    for (x, y), (tx, ty) in zip(ours, theirs):
        np.testing.assert_array_equal(y, ty)
        if output == "waveforms":
            np.testing.assert_array_equal(x, tx)  # the same int16 * scale, the records' order
        else:
            np.testing.assert_allclose(x, tx, atol=1e-4)  # the same AudioFrontEnd, eager vs graph


def test_clips_are_the_records_in_their_order(records):  # noqa: F811
    clips = read_clips(records, "train")
    expected = read_split(records, "train")
    assert list(clips.clip_ids) == [row["clip_id"] for row in expected]
    np.testing.assert_array_equal(clips.waveforms(np.arange(len(clips))), np.stack([row["waveform"] for row in expected]))


def test_an_unbalanced_training_epoch_holds_the_clips_tf_data_holds_once_each(records):  # noqa: F811
    ours = RecordsDataset(records, "train", batch_size=16, output="waveforms", seed=3)
    theirs = tf_batches(records, "train", batch_size=16, output="waveforms", seed=3)
    first, second = rows(ours), rows(ours)
    assert len(ours) == len(theirs)
    assert sorted(r.tobytes() for r in first) == sorted(r.tobytes() for r in rows(theirs)) == sorted(r.tobytes() for r in second)
    assert not np.array_equal(first, second)  # a new order each epoch
    np.testing.assert_array_equal(first, rows(RecordsDataset(records, "train", batch_size=16, output="waveforms", seed=3)))


def test_oversampling_balances_every_epoch_exactly_with_tf_datas_epoch_length(records):  # noqa: F811
    manifest = read_records_info(records)
    counts = class_counts(manifest, "train")
    dataset = RecordsDataset(records, "train", batch_size=16, balance="oversample", output="waveforms", seed=0)
    for _ in range(3):
        labels = np.concatenate([np.argmax(y, axis=1) for _, y in dataset])
        assert labels.size == split_size(manifest, "train", "oversample")
        assert collections.Counter(labels) == {label: counts.max() for label in range(6) if counts[label]}
    assert len(dataset) == -(-split_size(manifest, "train", "oversample") // 16)


def test_balanced_indices_copy_each_clip_floor_times_and_draw_the_rest_without_replacement():
    labels = np.asarray([0] * 7 + [1] * 3 + [2] * 2)
    chosen = balanced_indices(labels, np.random.default_rng(0))
    assert collections.Counter(labels[chosen]) == {0: 7, 1: 7, 2: 7}
    per_clip = collections.Counter(chosen)
    assert all(per_clip[i] == 1 for i in range(7))
    assert sorted(per_clip[i] for i in range(7, 10)) == [2, 2, 3]  # 7 = 2 * 3 + 1
    assert all(per_clip[i] in (3, 4) for i in range(10, 12))


def test_worker_shares_are_disjoint_full_batches_covering_the_split(records):  # noqa: F811
    manifest = read_records_info(records)
    shares = [
        RecordsDataset(records, "train", batch_size=4, output="waveforms", seed=1 + i, worker=(i, 2), steps=5) for i in range(2)
    ]
    seen = []
    for share in shares:
        batches = list(share)
        assert len(batches) == 5 and all(len(x) == 4 for x, _ in batches)
        seen.append({row.tobytes() for x, _ in batches for row in x})
    assert not seen[0] & seen[1]
    everything = {row["waveform"].tobytes() for row in read_split(records, "train")}
    assert seen[0] | seen[1] <= everything and manifest.splits["train"].clips == len(everything)


def test_keras_fits_on_it_for_the_epochs_and_steps_asked(records):  # noqa: F811
    import keras

    dataset = RecordsDataset(records, "train", batch_size=16, output="features", seed=0)
    model = keras.Sequential([keras.Input(dataset[0][0].shape[1:]), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(6, activation="softmax")])
    model.compile("adam", "categorical_crossentropy")
    history = model.fit(dataset, epochs=2, steps_per_epoch=len(dataset), verbose=0)
    assert len(history.history["loss"]) == 2 and dataset.epoch >= 2  # a fresh draw after each epoch


def test_an_unknown_pipeline_or_tf_data_without_tensorflow_is_one_clear_error(records, monkeypatch):  # noqa: F811
    import kser.inputs
    from kser.errors import KserError
    from kser.inputs import PIPELINE_ENV, make_inputs

    monkeypatch.setenv(PIPELINE_ENV, "grain")
    with pytest.raises(KserError, match="KSER_INPUT_PIPELINE='grain' is not a pipeline; choose one of tf.data, pydataset"):
        make_inputs(records, "validation")
    monkeypatch.setenv(PIPELINE_ENV, "tf.data")
    monkeypatch.setattr(kser.inputs, "tensorflow_installed", lambda: False)  # as on a machine without it
    with pytest.raises(KserError, match=r"needs TensorFlow: pip install 'kser\[tensorflow\]'"):
        make_inputs(records, "validation")
