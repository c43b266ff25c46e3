"""Decoding files: formats, channels, rates, and one-line reasons for bad input."""

import numpy as np
import pytest
import soundfile

from kser.audio import read_audio, resample
from kser.errors import KserError, SkipClip
from tests.synthetic import tone


def dominant_frequency(samples, sample_rate):
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return np.argmax(spectrum) * sample_rate / samples.size


@pytest.mark.parametrize("fmt, subtype", [("WAV", "PCM_16"), ("FLAC", "PCM_16"), ("WAV", "FLOAT"), ("OGG", "VORBIS")])
def test_common_formats_decode_to_float32_mono(tmp_path, fmt, subtype):
    path = tmp_path / f"clip.{fmt.lower()}"
    soundfile.write(path, tone(0.5, 440), 16_000, format=fmt, subtype=subtype)
    samples, rate = read_audio(str(path), 16_000, decoder="soundfile")
    assert rate == 16_000 and samples.dtype == np.float32 and samples.ndim == 1
    assert abs(samples.size - 8000) <= 1
    assert dominant_frequency(samples, 16_000) == pytest.approx(440, abs=3)


def test_stereo_is_mixed_to_mono(tmp_path):
    left, right = tone(0.2, 440), tone(0.2, 440) * 0.5
    soundfile.write(tmp_path / "s.wav", np.stack([left, right], axis=1), 16_000, subtype="FLOAT")
    samples, _ = read_audio(str(tmp_path / "s.wav"), 16_000, decoder="soundfile")
    np.testing.assert_allclose(samples, (left + right) / 2, atol=1e-6)


@pytest.mark.parametrize("source_rate", [8_000, 22_050, 44_100, 48_000])
def test_resampling_keeps_pitch_and_duration(tmp_path, source_rate):
    soundfile.write(tmp_path / "r.wav", tone(0.5, 440, sample_rate=source_rate), source_rate, subtype="FLOAT")
    samples, rate = read_audio(str(tmp_path / "r.wav"), 16_000, decoder="soundfile")
    assert rate == source_rate
    assert samples.size == 8000
    assert dominant_frequency(samples, 16_000) == pytest.approx(440, abs=3)


def test_fft_resampling_matches_a_directly_sampled_tone():
    source = np.sin(2 * np.pi * 1000 * np.arange(44_100) / 44_100)
    expected = np.sin(2 * np.pi * 1000 * np.arange(16_000) / 16_000)
    out = resample(source.astype(np.float32), 44_100, 16_000)
    np.testing.assert_allclose(out[100:-100], expected[100:-100], atol=1e-3)


@pytest.mark.parametrize(
    "content, reason",
    [(b"", "empty file"), (b"this is not audio" * 20, "not a readable audio file"), (None, "zero length")],
)
def test_bad_files_raise_skip_with_reason(tmp_path, content, reason):
    path = tmp_path / "bad.wav"
    if content is None:
        soundfile.write(path, np.zeros(0, dtype=np.float32), 16_000)
    else:
        path.write_bytes(content)
    with pytest.raises(SkipClip, match=reason):
        read_audio(str(path), 16_000, decoder="soundfile")


def test_non_finite_samples_are_refused(tmp_path):
    samples = tone(0.1, 440)
    samples[10] = np.nan
    soundfile.write(tmp_path / "nan.wav", samples, 16_000, subtype="FLOAT")
    with pytest.raises(SkipClip, match="NaN"):
        read_audio(str(tmp_path / "nan.wav"), 16_000, decoder="soundfile")


def test_missing_file_is_a_skip_not_a_crash(tmp_path):
    with pytest.raises(SkipClip, match="cannot open"):
        read_audio(str(tmp_path / "nope.wav"), 16_000)


def test_unknown_decoder_is_a_clear_error(tmp_path):
    with pytest.raises(KserError, match="decoder"):
        read_audio(str(tmp_path / "x.wav"), 16_000, decoder="ffmpeg")
