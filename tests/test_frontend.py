"""kser.frontend: the one builder of the training front end, used by the pipeline and the model."""

import numpy as np

from kser.audio_frontend import AudioFrontEnd
from kser.augment import SpecAugment, WaveformAugment
from kser.config import AugmentConfig
from kser.frontend import derived_seed, features_can_run_in_tf_data, training_front_end

FRONT = AudioFrontEnd(16_000, 8000, name="front_end")
OFF = AugmentConfig(noise_prob=0.0, gain_prob=0.0, pitch_prob=0.0, specaugment_prob=0.0)


def test_stages_in_order_and_only_those_that_can_act():
    full = training_front_end(FRONT, AugmentConfig(pitch_method="resample"), seed=5)
    assert [type(layer) for layer, _ in full.stages()] == [WaveformAugment, AudioFrontEnd, SpecAugment]
    assert [random for _, random in full.stages()] == [True, False, True]
    for augment in (None, OFF, AugmentConfig(enabled=False)):
        assert [type(layer) for layer, _ in training_front_end(FRONT, augment, seed=5).stages()] == [AudioFrontEnd]
    spec_only = AugmentConfig(noise_prob=0.0, gain_prob=0.0, pitch_prob=0.0)
    assert [type(layer) for layer, _ in training_front_end(FRONT, spec_only, 5).stages()] == [AudioFrontEnd, SpecAugment]
    assert derived_seed(None, 2) is None and derived_seed(7, 2) == 9
    assert features_can_run_in_tf_data()  # this process runs Keras on TensorFlow (the JAX case: test_features)


def test_the_same_seed_draws_the_same_augmentations():
    waveforms = np.random.default_rng(0).normal(size=(3, 8000)).astype("float32")

    def run(seed):
        x = waveforms
        for layer, random in training_front_end(FRONT, AugmentConfig(pitch_method="resample"), seed).stages():
            x = layer(x, training=True) if random else layer(x)
        return np.asarray(x)

    first, again, other = run(3), run(3), run(4)
    assert first.shape == (3, 51, 64, 3)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)
