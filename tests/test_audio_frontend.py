"""kser.audio_frontend: the model's own front end, and the waveform classifier every stage loads."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from kser import models
from kser.audio_frontend import (
    AudioFrontEnd,
    classifier_of,
    front_end_for,
    front_end_of,
    is_waveform_classifier,
    waveform_classifier,
    with_dft,
)
from kser.config import AudioConfig, FeatureConfig
from kser.features import log_mel_deltas
from kser.waveform import normalize
from tests.test_models import TINY

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")

RATE = 8_000
CLIP = 4_000  # 0.5 s at 8 kHz
FEATURES = FeatureConfig(n_fft=256, win_length=200, hop_length=80, n_mels=16, num_frames=None)


def waveforms(rows: int = 3) -> np.ndarray:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((rows, CLIP)) * rng.uniform(0.01, 3.0, (rows, 1)) + rng.uniform(-1, 1, (rows, 1))
    x[-1] = 0.7  # a constant row: silent once centred
    return x.astype(np.float32)


def test_front_end_is_numpy_normalisation_then_the_librosa_features():
    front_end = AudioFrontEnd(RATE, CLIP, 1e-6, FEATURES)
    x = waveforms()
    expected = log_mel_deltas(np.stack([normalize(row)[0] for row in x]), FeatureConfig(**{**FEATURES.__dict__, "sample_rate": RATE}))
    np.testing.assert_allclose(np.asarray(front_end(x)), np.asarray(expected), atol=2e-3)  # dB, float32 normalisation
    assert front_end.output_feature_shape == expected.shape[1:] == (51, 16, 3)
    unnormalised = AudioFrontEnd(RATE, CLIP, None, FEATURES)
    np.testing.assert_allclose(
        np.asarray(unnormalised(x)), np.asarray(log_mel_deltas(x, unnormalised.feature_config)), atol=1e-5
    )


def test_the_front_end_owns_the_sample_rate_and_clip_length():
    front_end = AudioFrontEnd(RATE, CLIP, features=FeatureConfig(sample_rate=44_100))
    assert front_end.feature_config.sample_rate == RATE  # the layer's rate wins: one place
    assert "sample_rate" not in front_end.get_config()["features"]
    with pytest.raises(ValueError, match=r"takes waveforms \[batch, 4000\].*got shape \(None, 3999\)"):
        front_end(keras.Input((CLIP - 1,)))
    with pytest.raises(ValueError, match="sample_rate must be a positive whole number"):
        AudioFrontEnd(0, CLIP)
    built = front_end_for(AudioConfig(sample_rate=RATE, clip_seconds=0.5, normalize=False), FEATURES)
    assert (built.sample_rate, built.clip_samples, built.silence_std) == (RATE, CLIP, None)


def test_config_round_trip_and_portable_dft_give_the_same_features():
    front_end = AudioFrontEnd(RATE, CLIP, 1e-6, FEATURES, name="front_end")
    again = AudioFrontEnd.from_config(front_end.get_config())
    assert again.get_config() == front_end.get_config()
    x = waveforms()
    np.testing.assert_allclose(np.asarray(front_end.with_dft("matmul")(x)), np.asarray(front_end(x)), atol=1e-3)


# Every architecture on log-mel features; whisper's waveform model (a pretrained encoder as its
# front end) is tested in tests/test_whisper.py.
@pytest.mark.parametrize("arch", [arch for arch in sorted(TINY) if models.input_rank(arch) == 3])
def test_every_architecture_saves_as_a_waveform_model_that_scores_audio(arch, tmp_path):
    """model.keras round-trips through keras.saving with its front end inside, and scores waveforms."""
    front_end = AudioFrontEnd(RATE, CLIP, 1e-6, FEATURES, name="front_end")
    keras.utils.set_random_seed(0)
    classifier = models.build(arch, num_classes=4, input_shape=front_end.output_feature_shape, **TINY[arch])
    model = waveform_classifier(front_end, classifier)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    x = waveforms()
    assert is_waveform_classifier(loaded) and loaded.input_shape == (None, CLIP)
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), atol=1e-6)
    assert front_end_of(loaded).get_config() == front_end.get_config()
    assert classifier_of(loaded).count_params() == classifier.count_params()
    portable = with_dft(loaded, "matmul", batch_size=3)
    np.testing.assert_allclose(np.asarray(portable(x)), np.asarray(model(x)), atol=1e-4)


def test_a_features_in_classifier_is_not_a_waveform_model():
    classifier = models.build("small", num_classes=4, input_shape=(51, 16, 3), **TINY["small"])
    assert not is_waveform_classifier(classifier)
    with pytest.raises(ValueError, match="not a kser waveform classifier"):
        front_end_of(classifier)


def test_keras_load_model_needs_only_import_kser(tmp_path):
    """A user's script: ``import kser`` (which does not load Keras), then Keras's own loader."""
    front_end = AudioFrontEnd(RATE, CLIP, 1e-6, FEATURES, name="front_end")
    classifier = models.build("small", num_classes=4, input_shape=front_end.output_feature_shape, **TINY["small"])
    waveform_classifier(front_end, classifier).save(tmp_path / "model.keras")
    script = textwrap.dedent(
        f"""
        import sys
        import kser
        assert "keras" not in sys.modules, "import kser must stay cheap"
        import keras
        import numpy as np
        model = keras.saving.load_model({str(tmp_path / "model.keras")!r})
        print(model(np.zeros((2, {CLIP}), "float32")).shape)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("(2, 4)")
