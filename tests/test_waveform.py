"""Per-clip preparation: normalisation (incl. silence), pad/trim, noise, storage encoding."""

import numpy as np
import pytest

from kser.config import AudioConfig
from kser.records import encode_waveform
from kser.waveform import add_peak_relative_noise, clip_rng, decode_int16, encode_int16, normalize, pad_or_trim, prepare
from tests.synthetic import tone


def test_normalize_gives_zero_mean_unit_variance():
    samples = 3.0 + 0.2 * tone(0.5, 220)
    out, silent = normalize(samples)
    assert not silent
    assert abs(float(out.mean())) < 1e-5 and abs(float(out.std()) - 1.0) < 1e-4


@pytest.mark.parametrize("value", [0.0, 0.7])
def test_silent_clip_becomes_zeros_without_dividing_by_zero(value):
    with np.errstate(all="raise"):
        out, silent = normalize(np.full(1000, value, dtype=np.float32))
    assert silent and np.all(out == 0) and np.all(np.isfinite(out))


@pytest.mark.parametrize("length", [10, 16_000, 48_000, 60_000])
def test_pad_or_trim_gives_exact_length_and_keeps_the_start(length):
    samples = np.arange(1, length + 1, dtype=np.float32)
    out = pad_or_trim(samples, 48_000)
    assert out.shape == (48_000,)
    kept = min(length, 48_000)
    np.testing.assert_array_equal(out[:kept], samples[:kept])
    assert np.all(out[kept:] == 0)


def test_noise_amplitude_follows_the_study_formula():
    clean = tone(1.0, 300, amplitude=1.0)
    rng_a, rng_b = np.random.default_rng(7), np.random.default_rng(7)
    noisy, amplitude = add_peak_relative_noise(clean, 0.035, rng_a)
    expected = 0.035 * rng_b.uniform() * clean.max()
    assert amplitude == pytest.approx(expected)
    residual = noisy - clean
    assert float(residual.std()) == pytest.approx(amplitude, rel=0.05)  # 16k Gaussian draws
    assert abs(float(residual.mean())) < 0.05 * amplitude + 1e-9


def test_noise_amplitude_distribution_over_many_clips():
    clean = tone(0.1, 300, amplitude=1.0)
    amplitudes = [add_peak_relative_noise(clean, 0.035, clip_rng(0, f"clip{i}"))[1] for i in range(400)]
    ratios = np.asarray(amplitudes) / (0.035 * clean.max())
    assert ratios.min() >= 0 and ratios.max() <= 1
    assert abs(ratios.mean() - 0.5) < 0.05  # U(0, 1)


def test_noise_is_reproducible_per_clip_and_differs_between_clips():
    clean = tone(0.2, 300)
    a = add_peak_relative_noise(clean, 0.035, clip_rng(0, "1001_DFA_ANG_XX"))[0]
    b = add_peak_relative_noise(clean, 0.035, clip_rng(0, "1001_DFA_ANG_XX"))[0]
    c = add_peak_relative_noise(clean, 0.035, clip_rng(0, "1001_DFA_DIS_XX"))[0]
    d = add_peak_relative_noise(clean, 0.035, clip_rng(1, "1001_DFA_ANG_XX"))[0]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c) and not np.array_equal(a, d)


def test_noise_level_zero_writes_clean_audio():
    config = AudioConfig(noise_level=0.0, clip_seconds=0.5)
    clip = prepare(tone(0.3, 300), config, clip_rng(0, "x"))
    expected = pad_or_trim(normalize(tone(0.3, 300))[0], 8000)
    np.testing.assert_array_equal(clip.samples, expected)
    assert clip.noise_amplitude == 0.0 and clip.source_samples == 4800


def test_prepare_order_normalise_then_pad_then_noise():
    config = AudioConfig(clip_seconds=1.0)
    clip = prepare(tone(0.5, 300), config, clip_rng(0, "y"))
    assert clip.samples.shape == (16_000,) and clip.samples.dtype == np.float32
    tail = clip.samples[8000:]  # padded silence carries only the injected noise
    assert 0 < float(tail.std()) <= 0.035 * 3.5  # amplitude <= 0.035 * peak of a unit-variance tone


def test_int16_encoding_error_is_within_half_a_step():
    samples = normalize(tone(1.0, 440))[0] * 3
    data, scale = encode_int16(samples)
    restored = decode_int16(data, scale)
    assert len(data) == 2 * samples.size
    float32_rounding = 2 * float(np.max(np.abs(samples))) * 2.0**-24  # decode multiplies in float32
    assert float(np.max(np.abs(restored - samples))) <= scale / 2 + float32_rounding
    assert scale == pytest.approx(float(np.max(np.abs(samples))) / 32767)


def test_float32_encoding_is_exact_and_unknown_encoding_refused():
    samples = tone(0.1, 440)
    data, scale = encode_waveform(samples, "float32")
    np.testing.assert_array_equal(np.frombuffer(data, "<f4"), samples)
    assert scale == 1.0
    with pytest.raises(ValueError, match="int16"):
        encode_waveform(samples, "mu-law")
