"""Per-clip preparation: normalisation (incl. silence), pad/trim, noise, storage encoding."""

import numpy as np
import pytest

from kser.config import AudioConfig
from kser.records import encode_waveform
from kser.waveform import add_peak_relative_noise, clip_rng, decode_int16, encode_int16, normalize, pad_or_trim, prepare, trim_silence
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


def speech_in_silence(lead=1.0, speech=1.5, tail=0.7, floor=1e-4, sample_rate=16_000):
    rng = np.random.default_rng(0)
    quiet = lambda seconds: (floor * rng.standard_normal(int(seconds * sample_rate))).astype(np.float32)
    return np.concatenate([quiet(lead), tone(speech, 220, amplitude=0.5), quiet(tail)])


def test_trim_silence_keeps_the_loud_part_with_a_margin():
    samples = speech_in_silence()
    out = trim_silence(samples, 16_000, top_db=40)
    start = (out.__array_interface__["data"][0] - samples.__array_interface__["data"][0]) // samples.itemsize  # a slice
    assert abs(start - (16_000 - 1_600)) <= 400  # 100 ms before the tone, to within one 25 ms frame
    assert abs(out.size - (1.5 + 0.2) * 16_000) <= 2 * 400  # the tone plus two margins, within a frame each
    np.testing.assert_array_equal(out, samples[start : start + out.size])


def test_trim_silence_off_short_or_silent_clips_are_unchanged():
    samples = speech_in_silence()
    assert trim_silence(samples, 16_000, top_db=0) is samples
    short = samples[:100]
    assert trim_silence(short, 16_000, top_db=40) is short
    zeros = np.zeros(16_000, dtype=np.float32)
    assert trim_silence(zeros, 16_000, top_db=40) is zeros


def test_prepare_trims_before_normalising_and_cropping():
    samples = speech_in_silence(lead=2.0, speech=1.0, tail=2.0)
    config = AudioConfig(trim_db=40, noise_level=0.0, clip_seconds=3.0)
    prepared = prepare(samples, config, clip_rng(0, "x"))
    assert prepared.source_samples == samples.size  # the decoded length, before any trimming
    voiced = np.abs(prepared.samples) > 1e-3
    assert voiced[: int(0.2 * 16_000)].any()  # the tone now starts near the beginning of the crop
    assert not voiced[int(1.3 * 16_000) :].any()  # and the rest is padding
    untrimmed = prepare(samples, AudioConfig(noise_level=0.0), clip_rng(0, "x"))
    assert not (np.abs(untrimmed.samples[: int(1.9 * 16_000)]) > 0.05).any()  # the study's crop: mostly silence first
