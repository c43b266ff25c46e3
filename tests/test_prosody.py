"""kser.prosody: in-graph pitch, voicing and energy contours, and the front end's prosody channels."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest

from kser.audio_frontend import AudioFrontEnd, classifier_of, waveform_classifier, with_dft
from kser.config import FeatureConfig
from kser.prosody import CHANNELS, VOICED, decimation_factor, pitch_track, prosody_contours

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")

RATE = 16_000
SAMPLES = 16_000  # 1 s
FRAMES = 100
CONFIG = FeatureConfig()


def voiced(f0: np.ndarray | float, *, formant_hz: float | None = None, seed: int = 0, noise: float = 0.05) -> np.ndarray:
    """A harmonic 'voice' with pitch ``f0`` (Hz, per sample or constant), harmonics with random
    phases falling off, or shaped by one resonance at ``formant_hz``, plus white noise."""
    rng = np.random.default_rng(seed)
    f0 = np.broadcast_to(np.asarray(f0, dtype=np.float64), (SAMPLES,))
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    x = np.zeros(SAMPLES)
    for k in range(1, int(3500 / f0.max()) + 1):
        gain = 0.7**k if formant_hz is None else 1.0 / (1.0 + ((k * f0.mean() - formant_hz) / 150.0) ** 2)
        x += gain * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
    x /= x.std()
    return (x + noise * rng.standard_normal(SAMPLES)).astype(np.float32)


def track(x: np.ndarray, dft: str = "rfft") -> tuple[np.ndarray, np.ndarray]:
    pitch, voicing, _ = pitch_track(x[None], CONFIG, FRAMES, dft)
    return keras.ops.convert_to_numpy(pitch)[0], keras.ops.convert_to_numpy(voicing)[0]


@pytest.mark.parametrize("f0", [75.0, 110.0, 180.0, 260.0, 400.0])
def test_steady_voices_are_tracked_within_half_a_percent(f0):
    pitch, voicing = track(voiced(f0))
    inner = slice(3, -3)  # the edge frames reach into the zero padding
    np.testing.assert_allclose(pitch[inner], f0, rtol=5e-3)
    assert voicing[inner].min() > 0.9


def test_no_octave_errors_on_formant_shaped_voices():
    """The octave-down error (a period's multiple correlating as well as the period) is the
    classic failure of autocorrelation pitch; a resonance near a harmonic provokes it."""
    rng = np.random.default_rng(3)
    for trial in range(12):
        f0, formant = rng.uniform(70, 420), rng.uniform(300, 900)
        pitch, _ = track(voiced(f0, formant_hz=formant, seed=trial, noise=0.1))
        gross = np.abs(pitch[3:-3] / f0 - 1) > 0.05
        assert not gross.any(), f"f0 {f0:.1f} Hz, formant {formant:.0f} Hz: {pitch[3:-3][gross][:5]}"


def test_a_moving_pitch_follows_the_truth_and_librosa_yin():
    librosa = pytest.importorskip("librosa")
    times = np.arange(SAMPLES) / RATE
    f0 = 200.0 * (1 + 0.1 * np.sin(2 * np.pi * 3 * times))  # 3 Hz vibrato, +-10 %
    x = voiced(f0)
    pitch, _ = track(x)
    truth = f0[np.arange(FRAMES) * CONFIG.hop_length]  # frame t is centred on sample t * hop
    np.testing.assert_allclose(pitch[3:-3], truth[3:-3], rtol=0.015)
    yin = librosa.yin(x, fmin=50, fmax=450, sr=RATE, frame_length=1024, hop_length=CONFIG.hop_length)[:FRAMES]
    np.testing.assert_allclose(pitch[5:-5], yin[5:-5], rtol=0.02)


def test_noise_and_silence_are_unvoiced_and_finite():
    noise = np.random.default_rng(0).standard_normal(SAMPLES).astype(np.float32)
    _, voicing = track(noise)
    assert voicing.mean() < 0.4
    contours = keras.ops.convert_to_numpy(prosody_contours(np.zeros((1, SAMPLES), np.float32), CONFIG, FRAMES))
    assert np.isfinite(contours).all() and not contours[..., 1:].any()


def test_channels_say_energy_voicing_and_pitch_relative_to_the_clip():
    """A clip at 150 Hz then an octave higher after 0.5 s, silent for its last 0.2 s."""
    f0 = np.where(np.arange(SAMPLES) < SAMPLES // 2, 150.0, 300.0)
    x = voiced(f0, noise=0.0)
    x[-3200:] = 0.0
    contours = keras.ops.convert_to_numpy(prosody_contours(x[None], CONFIG, FRAMES))[0]
    energy, voicing, semitones = contours.T
    assert CHANNELS == ("energy_db", "voicing", "pitch_semitones")
    low, high, silent = slice(5, 45), slice(55, 75), slice(85, FRAMES)
    assert energy.max() == 0.0 and energy[silent].max() < -40  # dB below the loudest frame
    assert voicing[low].min() > 0.9 and voicing[silent].max() == 0.0
    # The clip's mean pitch is voicing-weighted over 0.5 s at 150 Hz and 0.3 s at 300 Hz.
    mean = (40 * 0 + 20 * 12) / 60
    np.testing.assert_allclose(semitones[low], -mean, atol=0.6)
    np.testing.assert_allclose(semitones[high], 12 - mean, atol=0.6)
    assert not semitones[silent].any()


def test_portable_lag_products_equal_the_fft_ones():
    x = np.stack([voiced(130.0, seed=1), voiced(330.0, formant_hz=700, seed=2), np.random.default_rng(4).standard_normal(SAMPLES)])
    fast = keras.ops.convert_to_numpy(prosody_contours(x.astype(np.float32), CONFIG, FRAMES, "rfft"))
    portable = keras.ops.convert_to_numpy(prosody_contours(x.astype(np.float32), CONFIG, FRAMES, "matmul"))
    np.testing.assert_allclose(portable, fast, atol=1e-3)


def test_decimation_keeps_frames_aligned_and_the_rate_near_8_khz():
    assert decimation_factor(16_000, 160) == 2
    assert decimation_factor(44_100, 441) == 3  # 14.7 kHz: 441 has no divisor 4 or 5
    assert decimation_factor(8_000, 80) == 1
    with pytest.raises(ValueError, match="sample rate above 900 Hz"):
        pitch_track(np.zeros((1, 800), np.float32), FeatureConfig(sample_rate=800, n_fft=32, win_length=20, hop_length=8), 50)


def test_the_front_end_adds_the_channels_broadcast_over_the_mel_bands(tmp_path):
    clips = np.stack([voiced(140.0), voiced(260.0, seed=5)])
    plain = AudioFrontEnd(RATE, SAMPLES, features=FeatureConfig())
    prosody = AudioFrontEnd(RATE, SAMPLES, features=FeatureConfig(prosody=True), name="front_end")
    assert prosody.output_feature_shape == (101, 64, 6) and plain.output_feature_shape == (101, 64, 3)  # 1 s, centred frames
    assert prosody.describe() == {"kind": "log_mel_deltas", "prosody": list(CHANNELS)}
    features = keras.ops.convert_to_numpy(prosody(clips))
    np.testing.assert_allclose(features[..., :3], keras.ops.convert_to_numpy(plain(clips)), atol=1e-4)
    np.testing.assert_array_equal(features[..., 3:], np.broadcast_to(features[:, :, :1, 3:], features[..., 3:].shape))
    classifier = keras.Sequential([keras.Input(prosody.output_feature_shape), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2, activation="softmax")])
    model = waveform_classifier(prosody, classifier)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    expected = keras.ops.convert_to_numpy(model(clips))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(clips)), expected, atol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(with_dft(loaded, "matmul")(clips)), expected, atol=1e-4)


def test_kser_train_with_prosody_evaluates_and_refuses_a_pretrained_encoder(tmp_path):
    from tests.cli_runner import assert_one_line_error, demo_records, run_kser
    from tests.test_models import TINY

    records = demo_records(tmp_path, ("--actors=4", "--sentences=1"), ("--clip_seconds=0.5", "--workers=1"))
    model = tmp_path / "model"
    trained = run_kser(
        "train", "--arch=small", f"--records_dir={records}", f"--model_dir={model}", "--epochs=1", "--batch_size=8", "--prosody",
        f"--model_options={json.dumps(TINY['small'])}", timeout=600,
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    info = json.loads((model / "kser_model.json").read_text())
    assert info["extra"]["front_end"]["prosody"] == list(CHANNELS)
    assert classifier_of(keras.saving.load_model(model / "model.keras")).input_shape[-1] == 6
    evaluated = run_kser("evaluate", f"--model_dir={model}", f"--records_dir={records}", "--split=test", timeout=600)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    refused = run_kser("train", "--arch=whisper", "--preset=whisper_tiny_en", f"--records_dir={records}", f"--model_dir={tmp_path / 'w'}", "--prosody")
    assert_one_line_error(refused, "--prosody", "--arch=whisper")


RAVDESS = Path(__file__).resolve().parents[2] / "shared" / "data" / "ravdess16k"


@pytest.mark.skipif(not RAVDESS.is_dir(), reason=f"real RAVDESS clips not found at {RAVDESS} (../shared is absent)")
def test_real_voices_agree_with_librosa_pyin():
    """Four real clips (a male and a female actor, neutral and angry): on frames both call voiced,
    the pitch is within 10% of pYIN's on at least 90% of them, and the voicing decisions agree on
    78% of all frames on average (82% measured over 12 clips), 60% at least."""
    librosa = pytest.importorskip("librosa")
    soundfile = pytest.importorskip("soundfile")
    gross, agree = [], []
    for actor in ("Actor_01", "Actor_02"):
        for emotion in ("01", "05"):
            path = RAVDESS / actor / f"03-01-{emotion}-01-01-01-{actor[-2:]}.flac"
            audio, rate = soundfile.read(path, dtype="float32")
            audio = np.pad(audio[:48_000], (0, max(0, 48_000 - audio.size)))
            audio = (audio - audio.mean()) / audio.std()
            pitch, voicing, _ = pitch_track(audio[None], CONFIG, 300)
            pitch, voiced = keras.ops.convert_to_numpy(pitch)[0], keras.ops.convert_to_numpy(voicing)[0] > VOICED
            reference, reference_voiced, _ = librosa.pyin(audio, fmin=50, fmax=450, sr=rate, frame_length=1024, hop_length=CONFIG.hop_length)
            reference, reference_voiced = reference[:300], reference_voiced[:300]
            both = voiced & reference_voiced
            assert both.sum() > 40, path
            gross.append(np.mean(np.abs(pitch[both] / reference[both] - 1) > 0.1))
            agree.append(np.mean(voiced == reference_voiced))
    assert np.mean(gross) < 0.1 and np.mean(agree) > 0.78 and min(agree) > 0.6, (gross, agree)
