"""Tests of kser.features: librosa parity, shapes, batching, serialization, other backends.

The parity target is the study's librosa recipe (melspectrogram -> power_to_db -> delta and
delta-delta over all frames, then the first 300 frames); librosa and scipy are test-only.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import textwrap
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from tests.cli_runner import run_under_jax
from kser.config import FeatureConfig  # noqa: E402
from kser.features import (  # noqa: E402
    DFT_METHODS,
    LogMelDeltas,
    analysis_window,
    delta_matrix,
    dft_basis,
    log_mel_deltas,
    mel_filterbank,
)

CONFIG = FeatureConfig()
CLIP = 48_000  # 3 s at 16 kHz
TOLERANCE_DB = 0.01


def speech_like(num_samples: int, seed: int = 0) -> np.ndarray:
    """A voiced-speech stand-in: harmonics of a vibrato f0, syllable envelope, a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(num_samples) / CONFIG.sample_rate
    f0 = 140.0 + 20.0 * np.sin(2 * np.pi * 3.0 * t)
    phase = 2 * np.pi * np.cumsum(f0) / CONFIG.sample_rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 20))
    syllables = 0.6 + 0.4 * np.sin(2 * np.pi * 4 * t) ** 2
    envelope = 0.5 * (1 - np.cos(2 * np.pi * t / t[-1])) * syllables
    y = 0.3 * envelope * voiced + 0.003 * rng.standard_normal(num_samples)
    return y.astype(np.float32)


def white_noise(num_samples: int, seed: int = 1) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(num_samples)).astype(np.float32)


def librosa_features(y: np.ndarray, config: FeatureConfig = CONFIG) -> np.ndarray:
    """The reference recipe, [time, mel, 3]."""
    librosa = pytest.importorskip("librosa")
    mel = librosa.feature.melspectrogram(
        y=y,
        sr=config.sample_rate,
        n_fft=config.n_fft,
        win_length=config.win_length,
        hop_length=config.hop_length,
        window=config.window,
        center=config.center,
        pad_mode="constant",
        power=2.0,
        n_mels=config.n_mels,
        fmin=config.fmin,
        fmax=config.fmax,
    )
    log_mel = librosa.power_to_db(mel, ref=1.0, amin=config.amin, top_db=None)
    d1 = librosa.feature.delta(log_mel, width=config.delta_width)
    d2 = librosa.feature.delta(log_mel, width=config.delta_width, order=2)
    return np.stack([log_mel.T, d1.T, d2.T], axis=-1)[: config.num_frames]


def run(waveforms: np.ndarray, config: FeatureConfig = CONFIG, dft: str = "rfft") -> np.ndarray:
    return keras.ops.convert_to_numpy(log_mel_deltas(waveforms, config, dft))


# ----------------------------------------------------------------------------- constants


def test_mel_filterbank_matches_librosa() -> None:
    librosa = pytest.importorskip("librosa")
    for config in (CONFIG, dataclasses.replace(CONFIG, n_mels=40, fmin=50.0, fmax=7000.0)):
        expected = librosa.filters.mel(
            sr=config.sample_rate,
            n_fft=config.n_fft,
            n_mels=config.n_mels,
            fmin=config.fmin,
            fmax=config.fmax,
            htk=False,
            norm="slaney",
        ).T
        bank = mel_filterbank(config)
        assert bank.shape == (config.n_fft // 2 + 1, config.n_mels)
        assert bank.dtype == np.float32
        np.testing.assert_allclose(bank, expected, rtol=0, atol=1e-6)


def test_window_matches_librosa_stft_window() -> None:
    librosa = pytest.importorskip("librosa")
    scipy_signal = pytest.importorskip("scipy.signal")
    for name in ("hamming", "hann"):
        config = dataclasses.replace(CONFIG, window=name)
        expected = librosa.util.pad_center(
            scipy_signal.get_window(name, config.win_length, fftbins=True), size=config.n_fft
        )
        np.testing.assert_allclose(analysis_window(config), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("order", [1, 2])
def test_delta_matrix_matches_librosa_delta(order: int) -> None:
    """Savitzky-Golay 'interp' (edges fitted on the first/last window) as one operator."""
    librosa = pytest.importorskip("librosa")
    data = np.random.default_rng(2).standard_normal((5, 23))
    expected = librosa.feature.delta(data, width=9, order=order)
    np.testing.assert_allclose(delta_matrix(23, 9, order) @ data.T, expected.T, atol=1e-10)


@pytest.mark.parametrize("n_fft, win_length, hop_length", [(512, 400, 160), (401, 300, 100)])
def test_dft_basis_is_the_windowed_power_spectrum(n_fft: int, win_length: int, hop_length: int) -> None:
    """Squared basis outputs summed per bin equal |rfft(window * frame)|^2 (odd n_fft: no Nyquist)."""
    config = dataclasses.replace(CONFIG, n_fft=n_fft, win_length=win_length, hop_length=hop_length)
    step = math.gcd(n_fft, hop_length)
    dft = dft_basis(config, step)
    frames = np.random.default_rng(7).standard_normal((5, n_fft))
    expected = np.abs(np.fft.rfft(frames * analysis_window(config))) ** 2 @ mel_filterbank(config)
    parts = frames[:, dft.first * step : dft.stop * step] @ dft.basis.astype(np.float64)
    np.testing.assert_allclose(parts**2 @ dft.mel, expected, rtol=1e-5)
    assert dft.first * step <= (n_fft - win_length) // 2 and dft.stop * step >= (n_fft + win_length) // 2


# ----------------------------------------------------------------------------- librosa parity


@pytest.mark.parametrize("dft", DFT_METHODS)
@pytest.mark.parametrize(
    "signal, num_samples",
    [(speech_like, CLIP), (white_noise, CLIP), (speech_like, 16_037), (white_noise, 20_000)],
)
def test_matches_librosa_recipe(signal, num_samples: int, dft: str) -> None:
    y = signal(num_samples)
    expected = librosa_features(y)
    got = run(y[None], dft=dft)[0]
    assert got.shape == expected.shape
    error = np.abs(got - expected).max(axis=(0, 1))
    assert np.all(error <= TOLERANCE_DB), f"max |kser - librosa| per channel: {error}"


@pytest.mark.parametrize("dft", DFT_METHODS)
@pytest.mark.parametrize(
    "overrides",
    [
        {"num_frames": None},  # all 301 frames
        {"center": False, "num_frames": None},
        {"window": "hann", "win_length": 512, "hop_length": 128, "n_mels": 40, "fmax": 7000.0},
        {"n_fft": 400, "hop_length": 100},  # the window fills the frame: no sub-chunk skipped
        {"n_fft": 401, "win_length": 300, "hop_length": 100, "num_frames": None},  # odd n_fft: 120 frames, not 121
    ],
)
def test_matches_librosa_with_other_settings(overrides: dict, dft: str) -> None:
    config = dataclasses.replace(CONFIG, **overrides)
    y = speech_like(12_000, seed=3)
    expected = librosa_features(y, config)
    got = run(y, config, dft)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= TOLERANCE_DB


@pytest.mark.parametrize("num_frames", [3, 60, 123, 125])
def test_cut_comes_after_deltas_over_all_frames(num_frames: int) -> None:
    """Cutting inside the head, middle or tail rows never changes the kept deltas."""
    y = white_noise(20_000, seed=6)  # 126 frames
    full = librosa_features(y, dataclasses.replace(CONFIG, num_frames=None))
    got = run(y, dataclasses.replace(CONFIG, num_frames=num_frames))
    assert got.shape == (num_frames, 64, 3)
    assert np.abs(got - full[:num_frames]).max() <= TOLERANCE_DB


# ----------------------------------------------------------------------------- shapes, batching


def test_shape_for_three_second_batch() -> None:
    waveforms = np.stack([speech_like(CLIP, seed=s) for s in range(3)])
    layer = LogMelDeltas()
    out = keras.ops.convert_to_numpy(layer(waveforms))
    assert out.shape == (3, 300, 64, 3)
    assert out.dtype == np.float32
    assert layer.compute_output_shape((None, CLIP)) == (None, 300, 64, 3)
    assert LogMelDeltas(num_frames=None).compute_output_shape((3, CLIP)) == (3, 301, 64, 3)


def test_batch_rows_are_independent() -> None:
    silence = np.zeros(CLIP, np.float32)
    waveforms = np.stack([speech_like(CLIP, seed=4), white_noise(CLIP, seed=5), silence])
    batch = run(waveforms)
    for row, y in zip(batch, waveforms):
        np.testing.assert_allclose(row, run(y[None])[0], atol=1e-4)
        np.testing.assert_allclose(row, run(y), atol=1e-4)  # unbatched [samples] input
    # Digital silence floors at 10*log10(amin) with zero deltas, like librosa.
    np.testing.assert_allclose(batch[2, :, :, 0], -100.0, atol=1e-3)
    np.testing.assert_allclose(batch[2, :, :, 1:], 0.0, atol=1e-3)


def test_rejects_dynamic_and_too_short_lengths() -> None:
    with pytest.raises(ValueError, match="static"):
        LogMelDeltas()(keras.Input(shape=(None,)))
    with pytest.raises(ValueError, match="at least 9 frames"):
        run(np.zeros((1, 1000), np.float32))  # 7 frames


def test_keeps_float32_under_mixed_precision() -> None:
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        layer = LogMelDeltas()
    finally:
        keras.config.set_dtype_policy(previous)
    y = speech_like(CLIP)[None]
    out = layer(y)
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out), run(y), atol=1e-4)


# ----------------------------------------------------------------------------- keras integration


def test_has_no_weights() -> None:
    layer = LogMelDeltas()
    inputs = keras.Input(shape=(CLIP,))
    model = keras.Model(inputs, layer(inputs))
    assert layer.count_params() == 0
    assert model.count_params() == 0
    assert not layer.weights and not model.weights


def test_config_round_trip() -> None:
    layer = LogMelDeltas(FeatureConfig(n_mels=40), num_frames=None, name="front", dft="matmul")
    config = layer.get_config()
    assert config["n_mels"] == 40 and config["num_frames"] is None and config["dft"] == "matmul"
    clone = LogMelDeltas.from_config(config)
    assert clone.feature_config == layer.feature_config
    assert clone.name == "front" and clone.dft == "matmul"
    del config["dft"]  # saved before the option existed: the FFT, as then
    assert LogMelDeltas.from_config(config).dft == "rfft"
    with pytest.raises(ValueError, match="dft must be one of"):
        LogMelDeltas(dft="fft")
    assert keras.saving.get_registered_object("kser>LogMelDeltas") is LogMelDeltas


def test_saved_model_reloads_with_same_output(tmp_path: Path) -> None:
    inputs = keras.Input(shape=(CLIP,))
    features = LogMelDeltas(fmax=7600.0)(inputs)
    outputs = keras.layers.GlobalAveragePooling2D()(features)
    model = keras.Model(inputs, outputs)
    path = tmp_path / "front.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    y = np.stack([speech_like(CLIP), white_noise(CLIP)])
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(reloaded(y)), keras.ops.convert_to_numpy(model(y))
    )
    assert reloaded.layers[1].feature_config.fmax == 7600.0


def test_runs_in_tf_data_pipeline() -> None:
    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.data graph mode is only exercised under the TensorFlow backend")
    tf = pytest.importorskip("tensorflow")
    waveforms = np.stack([speech_like(CLIP), white_noise(CLIP)])
    dataset = tf.data.Dataset.from_tensor_slices(waveforms).batch(2).map(LogMelDeltas())
    (batch,) = list(dataset)
    assert batch.shape == (2, 300, 64, 3)
    np.testing.assert_allclose(batch.numpy(), run(waveforms), atol=1e-4)


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_runs_under_jax_backend(tmp_path: Path) -> None:
    """The layer uses only keras.ops, so a fresh process with KERAS_BACKEND=jax agrees."""
    y = speech_like(CLIP)[None]
    np.save(tmp_path / "in.npy", y)
    script = textwrap.dedent(
        """
        import sys
        import keras
        import numpy as np
        from kser.features import LogMelDeltas
        from kser.frontend import features_can_run_in_tf_data
        assert keras.backend.backend() == "jax", keras.backend.backend()
        assert not features_can_run_in_tf_data()  # training and evaluation then run it in the model
        y = np.load(sys.argv[1])
        out = keras.ops.convert_to_numpy(LogMelDeltas()(y))
        np.save(sys.argv[2], out)
        """
    )
    run_under_jax(script, str(tmp_path / "in.npy"), str(tmp_path / "out.npy"))
    out = np.load(tmp_path / "out.npy")
    assert out.shape == (1, 300, 64, 3)
    np.testing.assert_allclose(out, run(y), atol=1e-3)
