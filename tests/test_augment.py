"""Tests of kser.augment: training-only waveform augmentation and SpecAugment layers.

Signals are synthetic (tones, a speech stand-in, random positive "features"), small batches,
so the whole file runs in seconds on a CPU.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import textwrap
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from tests.cli_runner import run_under_jax
from kser.augment import (  # noqa: E402
    SpecAugment,
    WaveformAugment,
    babble_of_batch,
    channel_response,
    crop_to_start,
    fft_convolve,
    mu_law_quantize,
    range_mask,
    room_impulse_responses,
    resample_speed,
    shift_pitch,
    time_stretch,
)
from kser.config import AugmentConfig, from_dict, to_dict  # noqa: E402

SR = 16_000
CLIP = 48_000
OFF = AugmentConfig(noise_prob=0.0, gain_prob=0.0, pitch_prob=0.0, specaugment_prob=0.0)


def to_numpy(x) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(x))


def tone(freq: float = 440.0, num_samples: int = CLIP, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(num_samples) / SR
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def speech_like(num_samples: int = CLIP, seed: int = 0) -> np.ndarray:
    """Harmonics of a vibrato f0 under a syllable envelope, plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(num_samples) / SR
    f0 = 140.0 + 20.0 * np.sin(2 * np.pi * 3.0 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    voiced = sum(np.sin(k * phase) / k for k in range(1, 20))
    envelope = 0.6 + 0.4 * np.sin(2 * np.pi * 4 * t) ** 2
    return (0.3 * envelope * voiced + 0.003 * rng.standard_normal(num_samples)).astype(np.float32)


def waveform_batch(batch: int = 16, num_samples: int = 16_000) -> np.ndarray:
    rng = np.random.default_rng(3)
    scales = rng.uniform(0.2, 2.0, size=(batch, 1))
    return (scales * rng.standard_normal((batch, num_samples))).astype(np.float32)


def feature_batch(batch: int = 32, frames: int = 300, mels: int = 64) -> np.ndarray:
    """Strictly positive values, so that a 0 in the output can only come from a mask."""
    rng = np.random.default_rng(4)
    return (1.0 + rng.uniform(size=(batch, frames, mels, 3))).astype(np.float32)


def dominant_frequency(y: np.ndarray) -> float:
    segment = y[4_000:-8_000]  # away from the edges (and the speed-perturbed zero tail)
    spectrum = np.abs(np.fft.rfft(segment * np.hanning(len(segment)), 1 << 20))
    return float(np.argmax(spectrum)) * SR / (1 << 20)


def runs(flags: np.ndarray) -> list[int]:
    """Lengths of the runs of True in a 1-D bool array."""
    padded = np.concatenate([[0], flags.astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(padded))
    return list(edges[1::2] - edges[::2])


def split_masks(out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(masked mel bands [batch, mels], masked frames [batch, frames]) of SpecAugment output."""
    zero = out == 0
    assert (zero == zero[..., :1]).all(), "every channel must share one mask"
    zero = zero[..., 0]
    freq = zero.all(axis=1)
    time = zero.all(axis=2)
    np.testing.assert_array_equal(zero, freq[:, None, :] | time[:, :, None])
    return freq, time


# ----------------------------------------------------------------------------- config


def test_config_defaults_and_switches() -> None:
    config = AugmentConfig()
    assert (config.noise_level, config.gain_db, config.pitch_semitones) == (0.035, 5.0, 2.0)
    assert (config.freq_masks, config.freq_mask_width) == (2, 8)
    assert (config.time_masks, config.time_mask_width) == (2, 8)
    assert config.active and config.waveform_active and config.specaugment_active
    assert not AugmentConfig(enabled=False).active
    assert not OFF.active
    no_width = dataclasses.replace(OFF, specaugment_prob=1.0, freq_mask_width=1, time_masks=0)
    assert not no_width.active
    assert from_dict(AugmentConfig, to_dict(config)) == config
    for bad in ({"noise_prob": 1.5}, {"gain_db": -1.0}, {"freq_masks": -1}, {"pitch_method": "x"}):
        with pytest.raises(ValueError):
            AugmentConfig(**bad)


# ----------------------------------------------------------------------------- identity


@pytest.mark.parametrize("training", [False, None])
def test_identity_unless_training(training) -> None:
    waveforms = waveform_batch()
    features = feature_batch(4)
    wave_layer, spec_layer = WaveformAugment(seed=1), SpecAugment(seed=1)
    kwargs = {} if training is None else {"training": training}
    np.testing.assert_array_equal(to_numpy(wave_layer(waveforms, **kwargs)), waveforms)
    np.testing.assert_array_equal(to_numpy(spec_layer(features, **kwargs)), features)


def test_zero_probabilities_and_master_switch_are_identity_in_training() -> None:
    waveforms = waveform_batch()
    features = feature_batch(4)
    for config in (OFF, AugmentConfig(enabled=False)):
        out = to_numpy(WaveformAugment(config, seed=1)(waveforms, training=True))
        np.testing.assert_array_equal(out, waveforms)
        out = to_numpy(SpecAugment(config)(features, training=True))
        np.testing.assert_array_equal(out, features)


# ----------------------------------------------------------------------------- waveform


def test_gain_within_bounds_and_per_clip() -> None:
    waveforms = waveform_batch(64)
    out = to_numpy(WaveformAugment(OFF, seed=2, gain_prob=1.0)(waveforms, training=True))
    ratio = out / waveforms
    one_gain = np.broadcast_to(ratio[:, :1], ratio.shape)
    np.testing.assert_allclose(ratio, one_gain, rtol=1e-5)  # one gain per clip
    rms = lambda y: np.sqrt(np.mean(y.astype(np.float64) ** 2, axis=1))  # noqa: E731
    gain_db = 20 * np.log10(rms(out) / rms(waveforms))
    assert np.all(np.abs(gain_db) <= 5.0 + 1e-4)
    assert gain_db.std() > 1.5 and gain_db.min() < -2 and gain_db.max() > 2  # spread over +-5 dB

    half = to_numpy(WaveformAugment(OFF, seed=2, gain_prob=0.5)(waveforms, training=True))
    untouched = np.all(half == waveforms, axis=1)
    assert 10 < untouched.sum() < 54  # about half the clips, each either exact or scaled


def test_noise_is_peak_relative_and_bounded() -> None:
    waveforms = waveform_batch(64)
    out = to_numpy(WaveformAugment(OFF, seed=3, noise_prob=1.0)(waveforms, training=True))
    residual = (out - waveforms).astype(np.float64)
    peak = np.maximum(waveforms.max(axis=1), 0.0)
    fraction = residual.std(axis=1) / (0.035 * peak)  # = the drawn U(0, 1)
    assert np.all(fraction <= 1.03)
    assert 0.35 < fraction.mean() < 0.65 and fraction.min() < 0.2 and fraction.max() > 0.8
    assert np.all(np.abs(residual.mean(axis=1)) < 4 * 0.035 * peak / np.sqrt(out.shape[1]) + 1e-7)


@pytest.mark.parametrize("method", ["vocoder", "resample"])
@pytest.mark.parametrize("semitones", [2.0, -2.0])
def test_shift_pitch_moves_a_tone(method: str, semitones: float) -> None:
    y = np.stack([tone(440.0), tone(440.0, amplitude=0.2)])
    out = to_numpy(shift_pitch(y, np.full(2, semitones, np.float32), method=method))
    assert out.shape == y.shape
    expected = 440.0 * 2 ** (semitones / 12)
    for row in out:
        assert abs(dominant_frequency(row) - expected) / expected < 0.015


def test_vocoder_keeps_timing_and_resample_changes_it() -> None:
    """A tone burst from 1.0 s to 2.0 s: the vocoder keeps its onset, speed perturbation moves
    it to 1.0 / ratio s (tempo changes with pitch)."""
    t = np.arange(CLIP) / SR
    burst = (tone(300.0) * ((t >= 1.0) & (t < 2.0))).astype(np.float32)[None]
    ratio = 2 ** (2 / 12)

    def onset(y: np.ndarray) -> float:
        envelope = np.convolve(np.abs(y), np.ones(160) / 160, mode="same")
        return float(np.argmax(envelope > 0.5 * envelope.max())) / SR

    vocoder = to_numpy(shift_pitch(burst, np.array([2.0], np.float32), method="vocoder"))[0]
    speed = to_numpy(shift_pitch(burst, np.array([2.0], np.float32), method="resample"))[0]
    assert abs(onset(vocoder) - 1.0) < 0.02
    assert abs(onset(speed) - 1.0 / ratio) < 0.01


def test_time_stretch_matches_librosa_phase_vocoder() -> None:
    librosa = pytest.importorskip("librosa")
    y = speech_like()
    stretch = 1.0617  # not a ratio of small integers: frame indices round the same way
    length = int(round(CLIP * stretch))
    stft = librosa.stft(y, n_fft=512, hop_length=128, window="hann")
    reference = librosa.istft(
        librosa.phase_vocoder(stft, rate=1 / stretch, hop_length=128, n_fft=512),
        hop_length=128,
        n_fft=512,
        window="hann",
        length=length,
    )
    out = to_numpy(time_stretch(y[None], np.array([stretch], np.float32), length))[0]
    # The last frame length differs on purpose: librosa runs out of frames there (its last
    # samples lack overlap partners); time_stretch pads the analysis so that they keep them.
    np.testing.assert_allclose(out[:-512], reference[:-512], atol=3e-3)
    assert np.abs(out[-512:] - reference[-512:]).max() < 0.05


def test_zero_semitones_and_unit_speed_are_near_identity() -> None:
    y = speech_like()[None]
    np.testing.assert_allclose(to_numpy(resample_speed(y, np.ones(1))), y, atol=1e-6)
    out = to_numpy(shift_pitch(y, np.zeros(1, np.float32), max_semitones=2.0))
    np.testing.assert_allclose(out, y, atol=2e-3)


def test_layer_pitch_shift_draws_per_clip_within_range() -> None:
    y = np.stack([tone(440.0)] * 8)
    layer = WaveformAugment(OFF, seed=5, pitch_prob=1.0, pitch_method="resample")
    freqs = np.array([dominant_frequency(row) for row in to_numpy(layer(y, training=True))])
    low, high = 440 * 2 ** (-2 / 12), 440 * 2 ** (2 / 12)
    assert np.all((freqs > low * 0.985) & (freqs < high * 1.015))
    assert len(np.unique(np.round(freqs))) > 4  # a different shift for each clip


# ----------------------------------------------------------------------------- SpecAugment


def test_range_mask_marks_exactly_the_ranges() -> None:
    mask = to_numpy(range_mask(10, np.array([[2, 7], [0, 0]]), np.array([[3, 0], [1, 9]])))
    expected = np.zeros((2, 10), bool)
    expected[0, 2:5] = True
    expected[1, 0:9] = True
    np.testing.assert_array_equal(mask, expected)


def test_specaugment_masks_only_the_drawn_bands_and_frames() -> None:
    features = feature_batch(64)
    out = to_numpy(SpecAugment(seed=6)(features, training=True))
    freq, time = split_masks(out)
    keep = out != 0
    np.testing.assert_array_equal(out[keep], features[keep])  # untouched elsewhere, bitwise
    for masked, limit in ((freq, 8), (time, 8)):
        for row in masked:
            lengths = runs(row)
            assert len(lengths) <= 2 and sum(lengths) <= 2 * (limit - 1)
            if len(lengths) == 2:  # two separate masks: each narrower than the bound
                assert max(lengths) < limit
        widths = [length for row in masked for length in runs(row)]
        assert max(widths) >= 5  # widths span the range, not just tiny ones
    patterns = {(f.tobytes(), t.tobytes()) for f, t in zip(freq, time)}
    assert len(patterns) > 50  # clips get their own masks
    assert freq.any(axis=1).mean() > 0.6 and time.any(axis=1).mean() > 0.6


def test_specaugment_probability_and_three_dimensional_input() -> None:
    features = feature_batch(64)
    out = to_numpy(SpecAugment(seed=7, specaugment_prob=0.5)(features, training=True))
    untouched = np.all(out == features, axis=(1, 2, 3))
    assert 12 < untouched.sum() < 52
    out3 = to_numpy(SpecAugment(seed=7)(features[..., 0], training=True))
    split_masks(out3[..., None])


def test_fresh_draws_each_call_and_reproducible_from_seed() -> None:
    features = feature_batch(8)
    waveforms = waveform_batch(8)
    a, b = SpecAugment(seed=11), SpecAugment(seed=11)
    first = to_numpy(a(features, training=True))
    np.testing.assert_array_equal(first, to_numpy(b(features, training=True)))
    assert not np.array_equal(first, to_numpy(a(features, training=True)))
    assert not np.array_equal(first, to_numpy(SpecAugment(seed=12)(features, training=True)))
    w1, w2 = WaveformAugment(seed=11), WaveformAugment(seed=11)
    once = to_numpy(w1(waveforms, training=True))
    np.testing.assert_array_equal(once, to_numpy(w2(waveforms, training=True)))
    assert not np.array_equal(once, to_numpy(w1(waveforms, training=True)))


# ----------------------------------------------------------------------------- tf.data, Keras


def test_runs_in_tf_data_map_with_new_draws_per_batch_and_epoch() -> None:
    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.data graph mode is only exercised under the TensorFlow backend")
    tf = pytest.importorskip("tensorflow")
    spec = SpecAugment(seed=21)
    wave = WaveformAugment(seed=21, pitch_prob=1.0)
    features = feature_batch(4)
    waveforms = np.stack([speech_like(16_000, seed=k) for k in range(4)])
    dataset = tf.data.Dataset.from_tensor_slices((waveforms, features)).batch(2)
    dataset = dataset.map(lambda w, f: (wave(w, training=True), spec(f, training=True)))
    epochs = [[(w.numpy(), f.numpy()) for w, f in dataset] for _ in range(2)]
    masks = []
    for epoch in epochs:
        for w, f in epoch:
            freq, time = split_masks(f)
            masks.append(np.concatenate([freq, time], axis=1).tobytes())
            assert w.shape == (2, 16_000) and np.isfinite(w).all()
    assert len(set(masks)) == 4  # every batch of every epoch differs
    assert not np.array_equal(epochs[0][0][0], epochs[1][0][0])
    assert not np.array_equal(epochs[0][0][0], waveforms[:2])
    # The same seed replays the same sequence through a fresh pipeline.
    again = SpecAugment(seed=21)
    replay = tf.data.Dataset.from_tensor_slices(features).batch(2)
    replay = replay.map(lambda f: again(f, training=True))
    np.testing.assert_array_equal(next(iter(replay)).numpy(), epochs[0][0][1])
    # A sequential map over single clips: a fresh draw for every element.
    single = tf.data.Dataset.from_tensor_slices(features).batch(1)
    single = single.map(lambda f: again(f, training=True))
    drawn = {np.concatenate(split_masks(f.numpy()), axis=1).tobytes() for f in single}
    assert len(drawn) == 4


def test_config_round_trip_and_no_parameters(tmp_path: Path) -> None:
    layer = WaveformAugment(AugmentConfig(gain_db=3.0), seed=9, pitch_method="resample", name="aug")
    clone = WaveformAugment.from_config(layer.get_config())
    assert clone.augment_config == layer.augment_config and clone.seed == 9 and clone.name == "aug"
    assert clone.augment_config.pitch_method == "resample" and clone.augment_config.gain_db == 3.0
    spec = SpecAugment(seed=None, time_masks=1)
    assert SpecAugment.from_config(spec.get_config()).augment_config.time_masks == 1
    for name, cls in (("kser>WaveformAugment", WaveformAugment), ("kser>SpecAugment", SpecAugment)):
        assert keras.saving.get_registered_object(name) is cls

    inputs = keras.Input(shape=(300, 64, 3))
    x = SpecAugment(seed=1)(inputs)
    outputs = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, outputs)
    assert model.count_params() == 0 and not model.weights
    assert layer.count_params() == 0 and not layer.weights
    path = tmp_path / "spec.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    features = feature_batch(2)
    np.testing.assert_array_equal(to_numpy(reloaded(features)), to_numpy(model(features)))
    assert isinstance(reloaded.layers[1], SpecAugment)


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_runs_under_jax_backend() -> None:
    """Only keras.ops and keras.random: a fresh process with KERAS_BACKEND=jax runs both layers,
    eagerly and in a jitted function."""
    script = textwrap.dedent(
        """
        import jax
        import keras
        import numpy as np
        from kser.augment import SpecAugment, WaveformAugment
        assert keras.backend.backend() == "jax", keras.backend.backend()
        rng = np.random.default_rng(0)
        y = rng.standard_normal((4, 16000)).astype("float32")
        f = (1 + rng.uniform(size=(4, 300, 64, 3))).astype("float32")
        wave, spec = WaveformAugment(seed=1, pitch_prob=1.0, reverb_prob=1.0, channel_prob=1.0, codec_prob=1.0, babble_prob=1.0, crop_prob=1.0), SpecAugment(seed=1)
        assert np.array_equal(np.asarray(wave(y)), y)
        a = np.asarray(wave(y, training=True))
        b = np.asarray(wave(y, training=True))
        assert a.shape == y.shape and np.isfinite(a).all() and not np.array_equal(a, b)
        g = np.asarray(spec(f, training=True))
        assert (g == 0).any() and ((g == 0) | (g == f)).all()
        state = [v.value for v in spec.non_trainable_variables]
        jitted = jax.jit(lambda s, x: spec.stateless_call([], s, x, training=True))
        out, new_state = jitted(state, f)
        assert (np.asarray(out) == 0).any()
        print("ok")
        """
    )
    result = run_under_jax(script)
    assert "ok" in result.stdout


def test_fft_convolve_equals_numpy_convolution_cut_to_the_clip() -> None:
    rng = np.random.default_rng(3)
    x, k = rng.standard_normal((2, 300)).astype("float32"), rng.standard_normal((2, 40)).astype("float32")
    ours = np.asarray(fft_convolve(x, k))
    for row in range(2):
        np.testing.assert_allclose(ours[row], np.convolve(x[row], k[row])[:300], atol=1e-4)


def test_room_impulse_responses_have_a_unit_direct_path_the_asked_ratio_and_decay() -> None:
    noise = np.random.default_rng(0).standard_normal((2, 8000)).astype("float32")
    rooms = np.asarray(room_impulse_responses(noise, np.asarray([0.2, 0.5], "float32"), np.asarray([0.0, 10.0], "float32"), 16_000))
    assert rooms[:, 0].tolist() == [1.0, 1.0]
    tail_energy = (rooms[:, 1:] ** 2).sum(axis=1)
    np.testing.assert_allclose(10 * np.log10(1.0 / tail_energy), [0.0, 10.0], atol=1e-3)
    # 60 dB of decay over RT60: the tail's envelope 0.2 s in is ~1e-3 of its start (room 0).
    start, later = np.abs(rooms[0, 1:160]).mean(), np.abs(rooms[0, 3200 - 80 : 3200 + 80]).mean()
    assert 20 * np.log10(start / later) == pytest.approx(60, abs=6)


def test_channel_response_band_limits_and_tilts() -> None:
    gains = np.asarray(channel_response(16_000, 16_000, np.asarray([200.0, 0.0]), np.asarray([3400.0, 8000.0]), np.asarray([0.0, 6.0])))
    hertz = np.arange(8001)  # 1 Hz per bin for one second at 16 kHz
    assert gains[0, 1000] == pytest.approx(1.0, abs=0.02)  # the pass band of a telephone line
    assert 20 * np.log10(gains[0, 50]) < -30 and gains[0, 6000] < 1e-6  # well below 200 Hz and above 3.4 kHz: gone
    assert 20 * np.log10(gains[1, 2000] / gains[1, 1000]) == pytest.approx(6.0, abs=0.1)  # 6 dB per octave
    assert hertz.size == gains.shape[1]


def test_room_and_channel_augment_only_the_drawn_clips_and_only_in_training() -> None:
    rng = np.random.default_rng(1)
    y = rng.standard_normal((6, 16_000)).astype("float32")
    layer = WaveformAugment(dataclasses.replace(OFF, reverb_prob=0.5, channel_prob=0.5), seed=2)
    assert np.array_equal(np.asarray(layer(y)), y)
    out = np.asarray(layer(y, training=True))
    changed = ~np.isclose(out, y, atol=1e-5).all(axis=1)
    assert out.shape == y.shape and np.isfinite(out).all() and 0 < changed.sum() <= 6
    restored = WaveformAugment.from_config(layer.get_config())
    assert restored.sample_rate == 16_000 and restored.augment_config.reverb_prob == 0.5


def test_room_and_channel_settings_are_stored_only_when_used() -> None:
    """Runs stored before these settings existed resume: at their defaults they are not written."""
    stored = to_dict(AugmentConfig())
    assert not {
        "reverb_prob", "reverb_rt60", "channel_prob", "channel_tilt_db", "codec_prob", "codec_bits", "babble_prob", "babble_talkers", "babble_snr_db",
        "crop_prob", "crop_min_seconds",
    } & set(stored)
    assert from_dict(AugmentConfig, stored) == AugmentConfig()
    used = to_dict(AugmentConfig(reverb_prob=0.5))
    assert used["reverb_prob"] == 0.5 and from_dict(AugmentConfig, used).reverb_prob == 0.5
    with pytest.raises(ValueError, match="reverb_prob must be a probability"):
        AugmentConfig(reverb_prob=1.5)


def test_mu_law_codec_keeps_a_level_independent_snr_and_silence() -> None:
    """G.711's curve: at 8 bits about 38 dB SNR on a full-scale tone and still above 30 dB 40 dB
    below the peak (a uniform 8-bit quantiser would give about 10 dB there); fewer bits, more noise;
    at most 2**bits - 1 levels; a second pass changes nothing; silence stays silent."""
    t = np.arange(16_000) / 16_000

    def snr(amplitude: float, bits: int) -> tuple[float, int]:
        x = (amplitude * np.sin(2 * np.pi * 220 * t)).astype("float32")
        x[0] = 1.0  # the peak that sets the codec's scale
        y = np.asarray(mu_law_quantize(x[None], np.asarray([bits])))[0]
        error = y[1:] - x[1:]
        return 10 * np.log10(np.mean(x[1:] ** 2) / np.mean(error**2)), np.unique(y).size

    loud, levels = snr(1.0, 8)
    assert loud == pytest.approx(38.4, abs=1.5) and levels <= 255
    assert snr(0.01, 8)[0] > 30
    assert snr(1.0, 4)[0] < loud - 15 and snr(1.0, 4)[1] <= 15
    once = np.asarray(mu_law_quantize(np.sin(2 * np.pi * 3 * t)[None].astype("float32"), np.asarray([6])))
    np.testing.assert_allclose(np.asarray(mu_law_quantize(once, np.asarray([6]))), once, atol=1e-6)
    assert not np.asarray(mu_law_quantize(np.zeros((1, 8), "float32"), np.asarray([8]))).any()


def test_the_codec_augments_only_the_drawn_clips() -> None:
    y = np.random.default_rng(5).standard_normal((8, 4000)).astype("float32")
    layer = WaveformAugment(dataclasses.replace(OFF, codec_prob=0.5, codec_bits=4), seed=3)
    assert np.array_equal(np.asarray(layer(y)), y)
    out = np.asarray(layer(y, training=True))
    changed = ~np.isclose(out, y, atol=1e-6).all(axis=1)
    assert 0 < changed.sum() < 8 and np.isfinite(out).all()
    assert np.abs(out - y).max() < np.abs(y).max() / 2  # a codec's error, not another signal
    assert WaveformAugment.from_config(layer.get_config()).augment_config.codec_bits == 4
    with pytest.raises(ValueError, match="codec_bits must be a whole number in"):
        AugmentConfig(codec_bits=1)


def test_crop_to_start_is_the_record_builder_on_a_shorter_recording() -> None:
    """Row b: samples [start, start + length) through kser.waveform's normalize and pad_or_trim, then
    the builder's noise (level * u * peak * normal) where it padded; a silent stretch stays zeros."""
    from kser.waveform import normalize, pad_or_trim

    rng = np.random.default_rng(6)
    y = (rng.standard_normal((3, 4000)) * [[0.1], [2.0], [1.0]] + [[0.0], [0.5], [0.0]]).astype("float32")
    y[2, 1000:2500] = 0.0
    starts, lengths = np.asarray([0, 1234, 1000]), np.asarray([4000, 1600, 1500])
    uniform, normal = rng.uniform(size=3).astype("float32"), rng.standard_normal((3, 4000)).astype("float32")
    ours = np.asarray(crop_to_start(y, starts, lengths, 0.035, uniform, normal))
    for row in range(3):
        speech, silent = normalize(y[row, starts[row] : starts[row] + lengths[row]])
        padded = pad_or_trim(speech, 4000)
        padding = 0.035 * uniform[row] * max(float(speech.max()), 0.0) * normal[row, lengths[row] :]
        np.testing.assert_allclose(ours[row, : lengths[row]], padded[: lengths[row]], atol=1e-4)
        np.testing.assert_allclose(ours[row, lengths[row] :], padding, atol=1e-5)
        assert silent == (row == 2)
    assert not ours[2].any()


def test_shorter_clips_only_for_the_drawn_clips_and_at_least_the_shortest_length() -> None:
    rng = np.random.default_rng(7)
    y = rng.standard_normal((16, 8000)).astype("float32")
    layer = WaveformAugment(dataclasses.replace(OFF, crop_prob=0.5, crop_min_seconds=0.25), seed=4, sample_rate=SR)
    assert np.array_equal(np.asarray(layer(y)), y)
    out = np.asarray(layer(y, training=True))
    changed = ~np.isclose(out, y, atol=1e-6).all(axis=1)
    assert 0 < changed.sum() < 16 and np.isfinite(out).all()
    for row in np.flatnonzero(changed):
        # the kept stretch is a piece of the clip, standardised: find it by correlation with the clip
        head = out[row, : int(0.25 * SR)]
        lag = int(np.argmax(np.correlate(y[row], head, mode="valid")))
        assert np.corrcoef(y[row, lag : lag + head.size], head)[0, 1] > 0.9999
    every = np.asarray(WaveformAugment(dataclasses.replace(OFF, crop_prob=1.0, crop_min_seconds=0.25), seed=5, sample_rate=SR)(y, training=True))
    quiet_tail = np.abs(every[:, -200:]).max(axis=1) < 0.1 * np.abs(every).max(axis=1)
    assert quiet_tail.any() and not quiet_tail.all()  # some clips cut short (padding noise <= 0.035 of the peak), some kept to the end
    assert WaveformAugment.from_config(layer.get_config()).augment_config.crop_min_seconds == 0.25
    with pytest.raises(ValueError, match="crop_prob must be a probability"):
        AugmentConfig(crop_prob=2.0)
    with pytest.raises(ValueError, match="crop_min_seconds must be > 0"):
        AugmentConfig(crop_min_seconds=0.0)


def test_babble_is_the_next_clips_at_the_asked_snr() -> None:
    """Clip i's babble is the next talkers[i] clips (cyclically), each at unit power, scaled to
    snr_db[i]; a silent clip gets none."""
    rng = np.random.default_rng(4)
    y = rng.standard_normal((4, 2000)).astype("float32") * np.asarray([[1.0], [3.0], [0.5], [2.0]], "float32")
    y[3] = 0.0
    talkers, snr = np.asarray([1.0, 2.0, 3.0, 2.0], "float32"), np.asarray([5.0, 10.0, 20.0, 5.0], "float32")
    babble = np.asarray(babble_of_batch(y, talkers, snr, 3))
    power = (y**2).mean(axis=1)
    np.testing.assert_allclose(10 * np.log10(power[:3] / (babble[:3] ** 2).mean(axis=1)), snr[:3], atol=1e-3)
    assert np.array_equal(babble[3], np.zeros(2000, "float32"))
    unit = y / np.sqrt(np.maximum(power, 1e-12))[:, None]
    expected = unit[2] + unit[3]  # clip 1 with 2 talkers: clips 2 and 3 (3 is silent, so it adds nothing)
    np.testing.assert_allclose(babble[1] / np.linalg.norm(babble[1]), expected / np.linalg.norm(expected), atol=1e-5)
    expected = unit[3] + unit[0] + unit[1]  # clip 2 with 3 talkers wraps around the batch
    np.testing.assert_allclose(babble[2] / np.linalg.norm(babble[2]), expected / np.linalg.norm(expected), atol=1e-5)


def test_babble_augments_only_the_drawn_clips_and_only_in_training() -> None:
    rng = np.random.default_rng(5)
    y = rng.standard_normal((8, 4000)).astype("float32")
    layer = WaveformAugment(dataclasses.replace(OFF, babble_prob=0.5), seed=3)
    assert np.array_equal(np.asarray(layer(y)), y)
    out = np.asarray(layer(y, training=True))
    changed = ~np.isclose(out, y, atol=1e-6).all(axis=1)
    assert 0 < changed.sum() < 8 and np.array_equal(out[~changed], y[~changed])
    snr = 10 * np.log10((y[changed] ** 2).mean(axis=1) / ((out[changed] - y[changed]) ** 2).mean(axis=1))
    assert ((snr > 5.0 - 1e-3) & (snr < 20.0 + 1e-3)).all()
    with pytest.raises(ValueError, match="babble_prob must be a probability"):
        AugmentConfig(babble_prob=2.0)
