"""kser.speaker_norm: per-speaker log-mel statistics, the layer a model saves, both pipelines, training and evaluation."""

from __future__ import annotations

import dataclasses
import json

import keras
import numpy as np
import pytest

from kser import model_dir as model_files
from kser.audio_frontend import classifier_of, front_end_for, front_end_of
from kser.data import make_dataset
from kser.evaluation import predict_split
from kser.pydataset import RecordsDataset, read_clips
from kser.records_info import read_records_info
from kser.speaker_norm import (
    MIN_CLIPS,
    BandMoments,
    SpeakerNormalization,
    measure,
    normalize_features,
    predict_by_speaker,
    speaker_normalization_of,
)
from kser.training import build_training_model
from tests.cli_runner import run_kser
from tests.test_data import records  # noqa: F401  (the module-scoped fixture)
from tests.test_models import TINY

tf = pytest.importorskip("tensorflow")
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


def _numpy_normalised(features: np.ndarray, mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """The definition, written out: log-mel z-scored per band, deltas divided by the sd, the rest as they are."""
    out = features.astype(np.float64).copy()
    out[..., 0] = (out[..., 0] - mean[:, None, :]) / sd[:, None, :]
    out[..., 1:3] = out[..., 1:3] / sd[:, None, :, None]
    return out


def test_normalize_features_z_scores_the_log_mel_scales_the_deltas_and_leaves_prosody():
    rng = np.random.default_rng(0)
    features = rng.standard_normal((2, 7, 5, 6)).astype(np.float32) * 3 + 1
    mean, sd = rng.standard_normal((2, 5)).astype(np.float32), rng.uniform(0.5, 2, (2, 5)).astype(np.float32)
    got = keras.ops.convert_to_numpy(normalize_features(features, mean, sd))
    np.testing.assert_allclose(got, _numpy_normalised(features, mean, sd), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(got[..., 3:], features[..., 3:])


def test_band_moments_are_each_speakers_frame_statistics_with_a_fallback():
    rng = np.random.default_rng(1)
    moments = BandMoments()
    clips = {"a": rng.normal(2, 3, (MIN_CLIPS, 4, 3, 3)), "b": rng.normal(-1, 0.5, (MIN_CLIPS + 1, 4, 3, 3)), "c": rng.normal(0, 1, (2, 4, 3, 3))}
    for name, features in clips.items():
        moments.add(features[:2], [name] * min(2, len(features)))
        if len(features) > 2:
            moments.add(features[2:], [name] * (len(features) - 2))
    moments.add(rng.normal(0, 1, (6, 4, 3, 3)), [""] * 6)
    fallback = BandMoments()
    fallback.add(np.concatenate([clips["a"], clips["b"]]), ["x"] * (2 * MIN_CLIPS + 1))
    statistics = moments.statistics(fallback)
    assert statistics.names == ("a", "b")  # c has too few clips, "" is no speaker
    for row, name in enumerate(statistics.names):
        frames = clips[name][..., 0].reshape(-1, 3)
        np.testing.assert_allclose(statistics.mean[row], frames.mean(axis=0), rtol=1e-5)
        np.testing.assert_allclose(statistics.sd[row], frames.std(axis=0), rtol=1e-5)
    pooled = np.concatenate([clips["a"], clips["b"]])[..., 0].reshape(-1, 3)
    np.testing.assert_allclose(statistics.global_mean, pooled.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(statistics.global_sd, pooled.std(axis=0), rtol=1e-5)
    np.testing.assert_array_equal(statistics.rows_of(["b", "c", "", "a"]), [1, 2, 2, 0])
    mean, sd = statistics.tables()
    assert mean.shape == sd.shape == (3, 3) and np.allclose(mean[2], statistics.global_mean)
    with pytest.raises(ValueError, match="no clips"):
        BandMoments().statistics()


def test_the_layer_round_trips_with_its_statistics(tmp_path):
    layer = SpeakerNormalization(4, name="speaker_normalization")
    inputs = keras.Input((6, 4, 3))
    model = keras.Model(inputs, layer(inputs))
    layer.set_statistics(np.arange(4.0), np.linspace(1, 2, 4))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    x = np.random.default_rng(2).standard_normal((3, 6, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(loaded(x)), _numpy_normalised(x, np.arange(4.0)[None], np.linspace(1, 2, 4)[None]), rtol=1e-5, atol=1e-6)
    assert not loaded.trainable_weights


@pytest.fixture(scope="module")
def statistics(records):  # noqa: F811
    return measure(records, ["train"], front_end_for(read_records_info(records).audio), fallback_subset="train")


def test_measure_reads_each_speakers_clean_clips_through_the_front_end(records, statistics):  # noqa: F811
    clips = read_clips(records, "train")
    front_end = front_end_for(read_records_info(records).audio)
    speaker = statistics.names[0]
    own = keras.ops.convert_to_numpy(front_end(clips.waveforms(np.flatnonzero(clips.speakers == speaker))))[..., 0]
    np.testing.assert_allclose(statistics.mean[0], own.reshape(-1, own.shape[-1]).mean(axis=0), rtol=1e-4, atol=1e-4)
    assert set(statistics.names) == {name for name in set(clips.speakers) if (clips.speakers == name).sum() >= MIN_CLIPS}


@pytest.mark.parametrize("split", ["train", "validation"])
def test_both_pipelines_normalise_each_clip_by_its_speaker(records, statistics, split):  # noqa: F811
    """Speakers with statistics by their own; the others (here: all but two) by the fallback."""
    statistics = dataclasses.replace(statistics, names=statistics.names[:2], mean=statistics.mean[:2], sd=statistics.sd[:2])
    options = dict(batch_size=7, output="features", training=False, speaker_statistics=statistics)
    ours = np.concatenate([x for x, _ in RecordsDataset(records, split, **options)])
    theirs = np.concatenate([x for x, _ in make_dataset(records, split, **options).as_numpy_iterator()])
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)
    clips = read_clips(records, split)
    plain = np.concatenate([x for x, _ in RecordsDataset(records, split, batch_size=7, output="features", training=False)])
    mean, sd = statistics.tables()
    rows = statistics.rows_of(clips.speakers)
    assert (rows < 2).any() and (rows == 2).any()
    np.testing.assert_allclose(ours, _numpy_normalised(plain, mean[rows], sd[rows]), rtol=1e-4, atol=1e-4)


def test_kser_train_with_speaker_norm_saves_the_fallback_and_evaluates_by_speaker(records, tmp_path):  # noqa: F811
    model_dir = tmp_path / "model"
    trained = run_kser(
        "train", "--arch=small", f"--records_dir={records}", f"--model_dir={model_dir}", "--epochs=1", "--batch_size=8",
        "--speaker_norm", f"--model_options={json.dumps(TINY['small'])}", timeout=600,
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "speaker normalisation: statistics of" in trained.stderr
    model = model_files.load_model(model_dir)
    layer = speaker_normalization_of(model)
    assert layer is not None
    front_end = front_end_of(model)
    fallback = measure(records, ["train"], front_end, fallback_subset="train")
    for got, expected in zip(layer.statistics(), (fallback.global_mean, fallback.global_sd)):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    assert json.loads((model_dir / "train_config.json").read_text())["train"]["speaker_norm"] is True
    assert json.loads((model_dir / "kser_model.json").read_text())["extra"]["speaker_norm"] == {"min_clips": MIN_CLIPS}

    # Evaluation: each test speaker's own statistics, computed from its clips, through the saved model.
    info = model_files.load_info(model_dir)
    clips = read_clips(records, "test")
    waveforms = clips.waveforms(np.arange(len(clips)))
    _, by_speaker = predict_split(model, info, records, "test")
    core = [item for item in classifier_of(model).layers if isinstance(item, keras.Model)][0]
    features = keras.ops.convert_to_numpy(front_end(waveforms))
    assert max((clips.speakers == speaker).sum() for speaker in set(clips.speakers)) >= MIN_CLIPS
    for speaker in set(clips.speakers):
        rows = np.flatnonzero(clips.speakers == speaker)
        moments = BandMoments()
        moments.add(features[rows], [speaker] * len(rows))
        mean, sd = moments.moments([speaker]) if len(rows) >= MIN_CLIPS else (fallback.global_mean, fallback.global_sd)
        expected = np.asarray(core(normalize_features(features[rows], np.broadcast_to(mean, (len(rows), mean.size)), np.broadcast_to(sd, (len(rows), sd.size)))))
        np.testing.assert_allclose(by_speaker[rows], expected, rtol=1e-4, atol=1e-5)
    for got, expected in zip(layer.statistics(), (fallback.global_mean, fallback.global_sd)):  # restored afterwards
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    _, as_predict = predict_split(model, info, records, "test", speaker_stats="training")
    np.testing.assert_allclose(as_predict, model.predict(waveforms, verbose=0), rtol=1e-4, atol=1e-5)
    assert np.abs(as_predict - by_speaker).max() > 1e-4  # the two kinds of statistics score differently

    evaluated = run_kser("evaluate", f"--model_dir={model_dir}", f"--records_dir={records}", "--speaker_stats=training", f"--output_dir={tmp_path / 'eval'}")
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert json.loads((tmp_path / "eval" / "report.json").read_text())["speaker_statistics"] == "training"



def test_a_model_computing_its_features_normalises_as_the_pipelines_do(records, statistics):  # noqa: F811
    """Features in the model (a GPU, JAX): both pipelines pack each waveform with its speaker's
    statistics, and the training model's front end then gives the pipelines' normalised features."""
    statistics = dataclasses.replace(statistics, names=statistics.names[:2], mean=statistics.mean[:2], sd=statistics.sd[:2])
    front_end = front_end_for(read_records_info(records).audio)
    options = dict(batch_size=7, training=False, speaker_statistics=statistics, front_end=front_end)
    packed = np.concatenate([x for x, _ in RecordsDataset(records, "train", output="waveforms", **options)])
    theirs = np.concatenate([x for x, _ in make_dataset(records, "train", output="waveforms", **options).as_numpy_iterator()])
    np.testing.assert_array_equal(packed, theirs)
    clips = read_clips(records, "train")
    samples = front_end.clip_samples
    mean, sd = statistics.tables()
    rows = statistics.rows_of(clips.speakers)
    np.testing.assert_allclose(packed[:, :samples], clips.waveforms(np.arange(len(clips))), atol=1e-6)
    np.testing.assert_array_equal(packed[:, samples:], np.concatenate([mean[rows], sd[rows]], axis=1))
    features = keras.Input(front_end.output_feature_shape)
    identity = keras.Model(features, features)
    model = build_training_model(identity, front_end, None, 0, speaker_norm=True)
    expected = np.concatenate([x for x, _ in RecordsDataset(records, "train", output="features", **options)])
    np.testing.assert_allclose(model.predict(packed, verbose=0), expected, rtol=1e-4, atol=1e-4)


def test_predict_by_speaker_falls_back_for_a_speaker_with_few_clips(records, statistics):  # noqa: F811
    """A speaker with fewer than MIN_CLIPS clips is scored with the model's own (training) statistics."""
    front_end = front_end_for(read_records_info(records).audio)
    features = keras.Input(front_end.output_feature_shape)
    layer = SpeakerNormalization(front_end.output_feature_shape[1], name="speaker_normalization")
    pooled = keras.layers.GlobalAveragePooling2D()(layer(features))
    classifier = keras.Model(features, keras.layers.Dense(3, activation="softmax")(pooled), name="classifier")
    waveform = keras.Input((front_end.clip_samples,))
    model = keras.Model(waveform, classifier(front_end(waveform)))
    layer.set_statistics(statistics.global_mean, statistics.global_sd)
    clips = read_clips(records, "test")
    few = clips.speakers[0]
    rows = np.flatnonzero(clips.speakers == few)[: MIN_CLIPS - 1]
    scored = predict_by_speaker(model, clips.waveforms(rows), clips.speakers[rows], batch_size=4)
    np.testing.assert_allclose(scored, model.predict(clips.waveforms(rows), verbose=0), rtol=1e-5, atol=1e-6)
