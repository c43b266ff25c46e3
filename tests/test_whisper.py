"""kser.whisper, kser.feature_cache and ``--arch=whisper``: a pretrained encoder as the front end.

No real preset can be downloaded here, so each test loads a tiny randomly initialised Whisper that
the tests write as a local keras-hub preset (``kser.whisper.save_preset``, keras-hub's own
``save_to_preset``): the loading, caching, training and export code is the real one.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")
keras_hub = pytest.importorskip("keras_hub", reason="keras-hub is in requirements/hub.txt (kser[hub])")

from kser import models  # noqa: E402
from kser.audio_frontend import front_end_of, waveform_classifier, with_dft  # noqa: E402
from kser.config import AudioConfig  # noqa: E402
from kser.errors import KserError  # noqa: E402
from kser.records_info import read_records_info  # noqa: E402
from kser.feature_cache import CACHE_DIR, cache_key, cached_features, ensure_cache  # noqa: E402
from kser.whisper import WhisperLogMel, load_front_end, save_preset  # noqa: E402
from tests.cli_runner import assert_one_line_error, demo_records, run_kser, run_under_jax  # noqa: E402
from tests.portable_runner import run_isolated  # noqa: E402
from tests.test_features import speech_like  # noqa: E402

CONVERTER = {"num_mels": 80, "num_fft_bins": 400, "stride": 160, "sampling_rate": 16_000}
CLIP_SECONDS = 0.5
CLIP = int(16_000 * CLIP_SECONDS)


@pytest.fixture(scope="module")
def preset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_preset(tmp_path_factory.mktemp("preset") / "tiny_whisper")


def waveforms(rows: int = 3, samples: int = CLIP) -> np.ndarray:
    rng = np.random.default_rng(0)
    batch = rng.standard_normal((rows, samples)) * rng.uniform(0.01, 1.0, (rows, 1))
    batch[0] = speech_like(samples) * 0.1
    batch[1, : samples // 3] *= 1e-3  # a quiet stretch, where the clamp to max - 8 acts
    return batch.astype(np.float32)


@pytest.mark.parametrize("dft", ["rfft", "matmul"])
def test_log_mel_is_the_converters(preset: Path, dft: str) -> None:
    """WhisperLogMel == keras-hub's WhisperAudioConverter on clip-long input (its first frames);
    the portable DFT's float32 sums differ by up to ~5e-5 where a band's power is low."""
    converter = keras_hub.layers.WhisperAudioConverter.from_preset(str(preset))
    audio = waveforms(samples=48_000)
    expected = np.asarray(converter(audio))[:, :300]
    got = keras.ops.convert_to_numpy(WhisperLogMel(CONVERTER, dft=dft)(audio))
    assert got.shape == expected.shape == (3, 300, 80)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5 if dft == "rfft" else 1e-4)


def test_front_end_holds_the_presets_encoder(preset: Path) -> None:
    """The encoder weights are the preset's, and no decoder weight is kept."""
    front_end = load_front_end(str(preset), AudioConfig(clip_seconds=CLIP_SECONDS))
    backbone = keras_hub.models.WhisperBackbone.from_preset(str(preset))
    audio = waveforms()
    log_mel = keras.ops.convert_to_numpy(front_end.log_mel(front_end.normalization(audio) * front_end.level))
    frames = log_mel.shape[1]
    expected = backbone(
        {"encoder_features": log_mel, "decoder_token_ids": np.ones((3, 2), "int32"), "decoder_padding_mask": np.ones((3, 2), "int32")}
    )["encoder_sequence_output"]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(front_end(audio)), keras.ops.convert_to_numpy(expected), atol=1e-5)
    assert front_end.output_feature_shape == (-(-frames // 2), 8)
    assert not any("decoder" in weight.path for weight in front_end.weights)
    assert front_end.trainable_weights == []


def test_saved_model_keeps_front_end_and_weights(preset: Path, tmp_path: Path) -> None:
    """A whisper waveform classifier saves and loads (.keras) with the same outputs; the portable
    DFT gives the same probabilities."""
    front_end = load_front_end(str(preset), AudioConfig(clip_seconds=CLIP_SECONDS))
    head = models.build("whisper", num_classes=4, input_shape=front_end.output_feature_shape, hidden_units=8)
    model = waveform_classifier(front_end, head)
    audio = waveforms()
    expected = keras.ops.convert_to_numpy(model(audio))
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(audio)), expected, atol=1e-6)
    assert front_end_of(loaded).preset == str(preset.resolve())
    portable = with_dft(loaded, "matmul")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(portable(audio)), expected, atol=1e-5)


def test_front_end_runs_under_jax(preset: Path) -> None:
    """The front end is keras.ops and keras-hub layers: the same outputs under Keras's JAX backend."""
    audio = waveforms()
    front_end = load_front_end(str(preset), AudioConfig(clip_seconds=CLIP_SECONDS))
    expected = keras.ops.convert_to_numpy(front_end(audio))
    folder = preset.parent
    np.save(folder / "audio.npy", audio)
    np.save(folder / "expected.npy", expected)
    run_under_jax(
        "import sys, numpy as np, keras\n"
        "from kser.config import AudioConfig\n"
        "from kser.whisper import load_front_end\n"
        "folder = sys.argv[1]\n"
        "assert keras.backend.backend() == 'jax'\n"
        f"front_end = load_front_end(sys.argv[2], AudioConfig(clip_seconds={CLIP_SECONDS}))\n"
        "got = keras.ops.convert_to_numpy(front_end(np.load(folder + '/audio.npy')))\n"
        "np.testing.assert_allclose(got, np.load(folder + '/expected.npy'), atol=1e-4)\n",
        str(folder),
        str(preset),
    )


def test_unknown_preset_name_lists_the_presets() -> None:
    with pytest.raises(KserError, match="neither a folder nor a keras-hub Whisper preset; the presets are .*whisper_tiny_en.*local preset folder"):
        load_front_end("whisper_no_such_preset_xyz", AudioConfig())


def test_preset_that_cannot_be_downloaded_says_to_pass_a_folder() -> None:
    """No internet here (and no kagglehub): a real preset name fails in one line that says what to do."""
    with pytest.raises(KserError, match="--preset=whisper_tiny_en could not be downloaded .*local preset folder"):
        load_front_end("whisper_tiny_en", AudioConfig())


def test_folder_that_is_not_a_preset(tmp_path: Path) -> None:
    with pytest.raises(KserError, match="not a keras-hub Whisper preset folder"):
        load_front_end(str(tmp_path), AudioConfig())


def test_other_sample_rates_are_refused(preset: Path) -> None:
    with pytest.raises(KserError, match="16000 Hz.*8000 Hz"):
        load_front_end(str(preset), AudioConfig(sample_rate=8_000))


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo_records(
        tmp_path_factory.mktemp("whisper"), ("--actors=6", "--sentences=1"), (f"--clip_seconds={CLIP_SECONDS}", "--workers=1")
    )


def test_cache_holds_the_front_ends_outputs_under_its_key(preset: Path, records: Path, tmp_path: Path) -> None:
    """The cache gives each clip's front-end output (float16), by clip id, and a front end with
    other weights gets another file."""
    from kser.pydataset import read_clips

    front_end = load_front_end(str(preset), AudioConfig(clip_seconds=CLIP_SECONDS))
    path = ensure_cache(tmp_path, records, front_end)
    assert path.parent == tmp_path and path.stat().st_mtime == ensure_cache(tmp_path, records, front_end).stat().st_mtime
    clips = read_clips(records, "test")
    order = np.arange(len(clips))[::-1]  # any order
    got = cached_features(path, clips.clip_ids[order])
    expected = keras.ops.convert_to_numpy(front_end(clips.waveforms(order)))
    np.testing.assert_allclose(got, expected, rtol=1e-2, atol=1e-2)
    key = cache_key(records, front_end)
    front_end.encoder.weights[0].assign(front_end.encoder.weights[0] + 1.0)
    assert cache_key(records, front_end) != key
    with pytest.raises(KserError, match="no features for 1 clip"):
        cached_features(path, np.asarray(["no-such-clip"]))


def test_a_damaged_cache_is_computed_again(preset: Path, records: Path, tmp_path: Path) -> None:
    front_end = load_front_end(str(preset), AudioConfig(clip_seconds=CLIP_SECONDS))
    path = ensure_cache(tmp_path, records, front_end)
    intact = path.read_bytes()
    path.write_bytes(intact[: len(intact) // 2])  # cut short, as a full disk or a bad copy leaves it
    said: list[str] = []
    assert ensure_cache(tmp_path, records, front_end, said.append) == path
    assert any("cannot be read" in line for line in said) and path.read_bytes() == intact


def test_train_evaluate_export_predict(preset: Path, records: Path, tmp_path: Path) -> None:
    """The whole user path with --arch=whisper: the encoder's outputs are cached beside the
    records once, the head trains on them, and the saved model takes waveforms everywhere."""
    model_dir = tmp_path / "model"
    train = ("train", "--arch=whisper", f"--preset={preset}", f"--records_dir={records}", "--epochs=2", "--seed=0", "--batch_size=8")
    result = run_kser(*train, f"--model_dir={model_dir}")
    assert result.returncode == 0, result.stderr
    assert "features in the cache" in result.stdout
    assert "cached" in result.stderr and len(list((records / CACHE_DIR).glob("*.npz"))) == 1
    info = json.loads((model_dir / "kser_model.json").read_text())
    assert info["extra"]["front_end"]["kind"] == "whisper" and info["extra"]["features_on"] == "cache"
    again = run_kser(*train, f"--model_dir={tmp_path / 'again'}")
    assert again.returncode == 0 and "cached" not in again.stderr  # the second run reads the cache

    result = run_kser("evaluate", f"--model_dir={model_dir}", f"--records_dir={records}", "--split=test")
    assert result.returncode == 0, result.stderr
    report = json.loads((model_dir / "eval" / "report.json").read_text())
    assert report["clips"] == read_records_info(records).splits["test"].clips > 0

    export_dir = tmp_path / "export"
    result = run_kser("export", f"--model_dir={model_dir}", f"--export_dir={export_dir}", "--format=saved_model,litert,onnx", "--window_hop_seconds=0.25")
    assert result.returncode == 0, result.stderr
    clips = waveforms(rows=4)
    keras_probabilities = keras.ops.convert_to_numpy(keras.saving.load_model(model_dir / "model.keras")(clips))
    onnx_probabilities, _ = run_isolated("onnx", export_dir / "model.onnx", clips, tmp_path)  # without TensorFlow
    np.testing.assert_allclose(onnx_probabilities, keras_probabilities, rtol=0, atol=1e-4)
    litert_probabilities, ops = run_isolated("litert", export_dir / "model.tflite", clips[:1], tmp_path)
    np.testing.assert_allclose(litert_probabilities, keras_probabilities[:1], rtol=0, atol=1e-4)
    assert "GELU" in ops and not [op for op in ops if op.startswith("CUSTOM") or "FLEX" in op.upper()], ops
    audio = sorted((records.parent / "audio").glob("*.wav"))[:2]
    result = run_kser("predict", f"--export_dir={export_dir}", *map(str, audio))
    assert result.returncode == 0, result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines() if line.endswith(".wav") or ".wav\t" in line]
    assert len(rows) == 2
    probabilities = np.asarray([[float(value) for value in row[2:8]] for row in rows])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)


def test_cross_validate_computes_the_cache_once(preset: Path, records: Path, tmp_path: Path) -> None:
    """Before its folds (here two at once), and reports the encoder's cost beside the head's."""
    records = Path(shutil.copytree(records, tmp_path / "records", ignore=shutil.ignore_patterns(CACHE_DIR)))
    result = run_kser(
        "cross-validate", "--arch=whisper", f"--preset={preset}", f"--records_dir={records}", f"--model_dir={tmp_path / 'cv'}",
        "--folds=3", "--max_folds=2", "--parallel_folds=2", "--epochs=1", "--batch_size=8",
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "cv" / "cv_report.json").read_text())
    assert report["model"]["front_end_gflops_per_clip"] > 0 and report["model"]["front_end_parameters"] > 0
    assert (result.stdout + result.stderr).count("cached ") == 1 and len(list((records / CACHE_DIR).glob("*.npz"))) == 1


@pytest.mark.parametrize(
    "flags, fragments",
    [
        (("--arch=whisper",), ("--arch=whisper needs --preset",)),
        (("--arch=small", "--preset=whisper_tiny_en"), ("--preset is for --arch=whisper",)),
        (("--arch=whisper", "--preset=whisper_base_en"), ("could not be downloaded", "local preset folder")),
    ],
)
def test_preset_mistakes_are_one_line(flags: tuple[str, ...], fragments: tuple[str, ...], records: Path, tmp_path: Path) -> None:
    result = run_kser("train", *flags, f"--records_dir={records}", f"--model_dir={tmp_path / 'model'}", "--epochs=1")
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "model").exists()


def test_augmentation_cannot_use_the_cache(preset: Path, records: Path, tmp_path: Path) -> None:
    result = run_kser("train", "--arch=whisper", f"--preset={preset}", "--augment", f"--records_dir={records}", f"--model_dir={tmp_path / 'model'}", "--epochs=1")
    assert_one_line_error(result, "feature cache", "--features_on=model")


def test_speaker_norm_is_refused_for_a_pretrained_encoder(preset: Path, records: Path, tmp_path: Path) -> None:
    """--speaker_norm normalises kser's log-mel; Whisper's encoder takes its own: one line, before any epoch."""
    result = run_kser("train", "--arch=whisper", f"--preset={preset}", "--speaker_norm", f"--records_dir={records}", f"--model_dir={tmp_path / 'model'}", "--epochs=1")
    assert_one_line_error(result, "--speaker_norm", "--arch=whisper")
    assert "Epoch" not in result.stdout
    assert not (tmp_path / "model").exists()


def test_encoder_in_the_model_trains_with_augmentation(preset: Path, records: Path, tmp_path: Path) -> None:
    """--features_on=model runs the frozen encoder every step instead of caching, so the waveform
    augmentation can act (SpecAugment, which masks spectrograms, is left out)."""
    result = run_kser(
        "train", "--arch=whisper", f"--preset={preset}", "--features_on=model", "--augment", f"--records_dir={records}",
        f"--model_dir={tmp_path / 'model'}", "--epochs=1", "--batch_size=8",
    )
    assert result.returncode == 0, result.stderr
    assert "features in the model" in result.stdout
    assert json.loads((tmp_path / "model" / "kser_model.json").read_text())["extra"]["features_on"] == "model"
