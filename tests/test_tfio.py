"""The optional tensorflow-io path (``kser[tfio]``): used only when its native kernels load.

In the main environment (current TensorFlow, where tensorflow-io's kernels do not load or it is
not installed) these tests check the graceful fallback; `make test` also runs this file in a
second environment with tensorflow-cpu 2.16.2 + tensorflow-io 0.37.1, where the real path runs.
"""

import subprocess
import sys

import numpy as np
import pytest
import soundfile

from kser import tfio_support
from kser.audio import read_audio, resample
from kser.config import AudioConfig, BuildConfig, RecordsConfig
from kser.errors import KserError
from tests.cli_runner import REPO, kser_env
from tests.synthetic import tone, write_crema_d

needs_tfio = pytest.mark.skipif(not tfio_support.tfio_available(), reason="tensorflow-io kernels do not load here")
without_tfio = pytest.mark.skipif(tfio_support.tfio_available(), reason="tensorflow-io kernels load here")


def dominant_frequency(samples, sample_rate):
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return np.argmax(spectrum) * sample_rate / samples.size


def test_detection_is_quiet_and_honours_the_kill_switch():
    code = (
        "import os, kser.tfio_support as t; a = t.tfio_available(); t.load_tfio.cache_clear(); "
        "os.environ['KSER_DISABLE_TFIO'] = '1'; print(a, t.tfio_available())"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=kser_env(), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    available, disabled = result.stdout.split()
    assert available == str(tfio_support.tfio_available()) and disabled == "False"
    assert result.stderr == "", "tensorflow-io must not print warnings when kser probes it"


@without_tfio
def test_asking_for_tfio_without_its_kernels_is_a_clear_error(tmp_path):
    soundfile.write(tmp_path / "a.wav", tone(0.1, 440), 16_000)
    with pytest.raises(KserError, match="tensorflow-io"):
        read_audio(str(tmp_path / "a.wav"), 16_000, decoder="tfio")


@needs_tfio
@pytest.mark.parametrize("fmt, subtype", [("WAV", "PCM_16"), ("FLAC", "PCM_16")])
def test_tfio_decoding_matches_soundfile(tmp_path, fmt, subtype):
    path = tmp_path / f"a.{fmt.lower()}"
    soundfile.write(path, np.stack([tone(0.3, 440), tone(0.3, 660)], axis=1), 16_000, format=fmt, subtype=subtype)
    by_tfio, rate = read_audio(str(path), 16_000, decoder="tfio")
    by_soundfile, _ = read_audio(str(path), 16_000, decoder="soundfile")
    assert rate == 16_000
    np.testing.assert_allclose(by_tfio, by_soundfile, atol=1e-6)


@needs_tfio
def test_tfio_resampling_keeps_pitch_length_and_agrees_with_fft_resampling():
    source = tone(0.5, 440, sample_rate=44_100)
    by_tfio = resample(source, 44_100, 16_000, use_tfio=True)
    by_fft = resample(source, 44_100, 16_000, use_tfio=False)
    assert abs(by_tfio.size - 8000) <= 1
    assert dominant_frequency(by_tfio, 16_000) == pytest.approx(440, abs=3)
    # tensorflow-io's polyphase filter delays the signal a little: align, then compare.
    core = by_fft[800:-800]
    errors = {lag: np.max(np.abs(by_tfio[800 + lag : 800 + lag + core.size] - core)) for lag in range(-100, 101)}
    lag = min(errors, key=errors.get)
    assert abs(lag) <= 100 and float(errors[lag]) < 0.02, (lag, errors[lag])


@needs_tfio
def test_build_with_the_tfio_decoder(tmp_path):
    from kser_tfrecords_builder import build_records

    write_crema_d(tmp_path / "data", actors=3, sentences=("DFA",), sample_rate=22_050)
    config = BuildConfig(
        data_dir=str(tmp_path / "data"),
        output_dir=str(tmp_path / "out"),
        audio=AudioConfig(clip_seconds=0.5),
        records=RecordsConfig(shard_size_mb=1),
        decoder="tfio",
        workers=2,
    )
    result = build_records(config, progress_stream=open("/dev/null", "w"))
    assert result.manifest["total_clips"] == 18 and not result.manifest["skipped"]
