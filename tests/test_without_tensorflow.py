"""kser on a machine without TensorFlow, on Keras's JAX backend: build records, train, cross-validate
and evaluate from the command line, as a JAX user would (`make test` runs this file in .venv-jax,
where `pip install kser[jax]` installed no TensorFlow).

The records must be the same bytes as a TensorFlow environment's build: ``$KSER_REFERENCE_KSER``
(set by `make test-jax` to the main environment's ``kser``) builds the same audio there.
"""

import hashlib
import importlib.util
import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.cli_runner import assert_one_line_error, kser_env, run_kser

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is not None,
    reason="TensorFlow is installed here; this file runs in the TensorFlow-free environment (make test-jax)",
)
TINY = '{"conv_filters": [4, 8, 8], "proj_units": 16, "rnn_units": 8}'


@pytest.fixture(scope="module", autouse=True)
def jax_backend():
    previous = os.environ.get("KERAS_BACKEND")
    os.environ["KERAS_BACKEND"] = "jax"
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    yield
    if previous is None:
        os.environ.pop("KERAS_BACKEND")
    else:
        os.environ["KERAS_BACKEND"] = previous


def ok(*args: str) -> subprocess.CompletedProcess:
    result = run_kser(*args, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "Traceback" not in result.stderr
    return result


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("no-tf")
    ok("demo-data", f"--out={root / 'audio'}", "--actors=6", "--sentences=2")
    ok("build-records", f"--data_dir={root / 'audio'}", f"--output_dir={root / 'records'}", "--clip_seconds=0.5", "--min_shards=2")
    return root / "records"


def shard_digests(records: Path) -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(records.glob("*.tfrecord"))}


def test_the_build_is_byte_identical_to_a_tensorflow_environments(records, tmp_path):
    reference = os.environ.get("KSER_REFERENCE_KSER")
    if not reference:
        pytest.skip("KSER_REFERENCE_KSER (a kser with TensorFlow) is not set; make test-jax sets it")
    env = {key: value for key, value in kser_env().items() if key != "PYTHONPATH"}
    result = subprocess.run(
        [reference, "build-records", f"--data_dir={records.parent / 'audio'}", f"--output_dir={tmp_path / 'records'}",
         "--clip_seconds=0.5", "--min_shards=2"],
        env={**env, "KERAS_BACKEND": "tensorflow"}, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert shard_digests(records) == shard_digests(tmp_path / "records") and len(shard_digests(records)) >= 3


def test_train_evaluate_and_tensorboard_without_tensorflow(records, tmp_path):
    model = tmp_path / "model"
    trained = ok("train", "--arch=small", f"--records_dir={records}", f"--model_dir={model}", "--epochs=1", "--seed=0",
                 f"--model_options={TINY}")
    assert "features in the model" in trained.stdout + trained.stderr
    info = json.loads((model / "kser_model.json").read_text())
    assert info["extra"]["features_on"] == "model"
    tags = set()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for run in ("train", "validation"):
        accumulator = EventAccumulator(str(model / "logs" / run))
        accumulator.Reload()
        tags |= {f"{run}/{tag}" for tag in accumulator.Tags()["tensors"]}
    assert {"train/epoch_loss", "train/epoch_learning_rate", "validation/epoch_loss", "validation/epoch_uar"} <= tags
    ok("evaluate", f"--model_dir={model}", f"--records_dir={records}", "--split=test")
    report = json.loads((model / "eval" / "report.json").read_text())
    assert report["clips"] > 0 and 0.0 <= report["uar"] <= 1.0
    exported = run_kser("export", f"--model_dir={model}", f"--export_dir={tmp_path / 'export'}", "--window_hop_seconds=0.25", timeout=600)
    assert_one_line_error(exported, "kser[tensorflow]")


def test_cross_validate_without_tensorflow_one_fold_at_a_time_or_in_parallel(records, tmp_path):
    """--parallel_folds (the GPU's mode: one process per fold) gives the sequential run's folds and scores."""
    flags = ("--arch=small", f"--records_dir={records}", "--folds=3", "--max_folds=2", "--epochs=1", "--seed=0", "--novalidate",
             f"--model_options={TINY}")
    ok("cross-validate", f"--model_dir={tmp_path / 'cv'}", *flags)
    parallel = ok("cross-validate", f"--model_dir={tmp_path / 'parallel'}", "--parallel_folds=2", *flags)
    assert "started in its own process" in parallel.stdout
    reports = [json.loads((tmp_path / name / "cv_report.json").read_text()) for name in ("cv", "parallel")]
    for report in reports:
        assert report["folds_run"] == len(report["per_fold"]) == 2 and all(fold["clips"] > 0 for fold in report["per_fold"])
    one, other = ([(fold["fold"], fold["seed"], fold["speakers"], fold["clips"]) for fold in report["per_fold"]] for report in reports)
    assert one == other
    # The same seeds on the same CPU: the same weights, so the same scores.
    assert [fold["uar"] for fold in reports[0]["per_fold"]] == [fold["uar"] for fold in reports[1]["per_fold"]]
    assert "uar:" in (tmp_path / "parallel" / "fold-1.log").read_text()  # the fold's epoch lines went to its log


def test_a_command_that_needs_tensorflow_says_which_extra_to_install(tmp_path):
    result = run_kser("train", "--arch=small", f"--records_dir={tmp_path}", f"--model_dir={tmp_path / 'm'}", "--profile_batches=2")
    assert_one_line_error(result, "kser[tensorflow]")


def test_prosody_channels_under_jax(records, tmp_path):
    """kser.prosody's pitch under JAX (a 200 Hz voice), and a model trained with its channels."""
    import keras
    import numpy as np

    from kser.config import FeatureConfig
    from kser.prosody import pitch_track

    assert keras.backend.backend() == "jax"
    phase = 2 * np.pi * 200.0 * np.arange(16_000) / 16_000
    voice = sum(0.7**k * np.sin(k * phase) for k in range(1, 15)).astype(np.float32)
    pitch, voicing, _ = pitch_track(voice[None], FeatureConfig(), 100)
    np.testing.assert_allclose(np.asarray(pitch)[0, 3:-3], 200.0, rtol=5e-3)
    assert np.asarray(voicing)[0, 3:-3].min() > 0.9
    model = tmp_path / "model"
    ok("train", "--arch=small", f"--records_dir={records}", f"--model_dir={model}", "--epochs=1", "--seed=0", "--prosody",
       f"--model_options={TINY}")
    assert json.loads((model / "kser_model.json").read_text())["extra"]["front_end"]["prosody"] == ["energy_db", "voicing", "pitch_semitones"]


def test_speaker_adversary_trains_under_jax(records, tmp_path):
    """The gradient reversal is plain keras.ops (stop_gradient), and the PyDataset appends the speaker targets."""
    model = tmp_path / "model"
    ok("train", "--arch=small", f"--records_dir={records}", f"--model_dir={model}", "--epochs=1", "--seed=0",
       "--speaker_adversary=0.5", f"--model_options={TINY}")
    assert json.loads((model / "train_config.json").read_text())["train"]["speaker_adversary"] == 0.5
    ok("evaluate", f"--model_dir={model}", f"--records_dir={records}", "--split=test")


def test_speaker_norm_trains_and_scores_by_speaker_under_jax(records, tmp_path):
    """Under JAX the features are computed in the model: the PyDataset packs each waveform with its
    speaker's statistics; the saved model scores each test speaker with its own."""
    import keras
    import numpy as np

    from kser import model_dir as model_files
    from kser.audio_frontend import front_end_of
    from kser.pydataset import read_clips
    from kser.speaker_norm import MIN_CLIPS, BandMoments, predict_by_speaker, speaker_normalization_of

    model_dir = tmp_path / "model"
    ok("train", "--arch=small", f"--records_dir={records}", f"--model_dir={model_dir}", "--epochs=1", "--seed=0",
       "--speaker_norm", f"--model_options={TINY}")
    ok("evaluate", f"--model_dir={model_dir}", f"--records_dir={records}", "--split=test")
    model = model_files.load_model(model_dir)
    layer, front_end = speaker_normalization_of(model), front_end_of(model)
    clips = read_clips(records, "test")
    waveforms = clips.waveforms(np.arange(len(clips)))
    scored = predict_by_speaker(model, waveforms, clips.speakers, batch_size=8)
    for speaker in sorted(set(clips.speakers)):
        rows = np.flatnonzero(clips.speakers == speaker)
        assert len(rows) >= MIN_CLIPS
        moments = BandMoments()
        moments.add(keras.ops.convert_to_numpy(front_end(waveforms[rows])), [speaker] * len(rows))
        layer.set_statistics(*moments.moments([speaker]))
        np.testing.assert_allclose(scored[rows], keras.ops.convert_to_numpy(model(waveforms[rows])), rtol=1e-4, atol=1e-6)
