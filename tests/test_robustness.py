"""kser.robustness: noise mixed at the asked SNR, babble from other speakers only, repeatable draws."""

import numpy as np
import pytest

from kser.robustness import babble, mix_at_snr, noisy_copies, uar_under_noise


def test_mix_at_snr_gives_the_asked_power_ratio_per_clip():
    rng = np.random.default_rng(0)
    clean = rng.standard_normal((3, 4000)).astype(np.float32) * np.asarray([[0.1], [1.0], [5.0]], np.float32)
    noise = rng.standard_normal((3, 4000)).astype(np.float32)
    for snr in (20.0, 5.0, 0.0, -5.0):
        mixed = mix_at_snr(clean, noise, snr)
        added = mixed.astype(np.float64) - clean
        ratio = 10 * np.log10(np.mean(clean.astype(np.float64) ** 2, axis=1) / np.mean(added**2, axis=1))
        np.testing.assert_allclose(ratio, snr, atol=1e-3)
    assert not mix_at_snr(np.zeros((1, 100), np.float32), noise[:1, :100], 0.0).any()  # silence stays silent


def test_babble_sums_unit_power_clips_of_other_speakers_only():
    waveforms = np.stack([np.full(50, value, np.float32) for value in (1.0, 2.0, 3.0, 4.0, 5.0)])
    speakers = np.asarray(["a", "a", "b", "c", "d"])
    mix = babble(waveforms, speakers, 0, np.random.default_rng(0), talkers=3)
    np.testing.assert_allclose(mix, 3.0)  # three other clips, each scaled to unit power (constant 1)
    alone = babble(waveforms[:2], speakers[:2], 0, np.random.default_rng(0))
    assert alone.shape == (50,) and alone.std() > 0.5  # no other speaker: white noise instead


def test_noisy_copies_repeat_with_the_seed_and_differ_by_kind():
    rng = np.random.default_rng(1)
    waveforms, speakers = rng.standard_normal((4, 800)).astype(np.float32), np.asarray(["a", "b", "c", "d"])
    white = noisy_copies(waveforms, speakers, "white", 10.0, seed=3)
    np.testing.assert_array_equal(white, noisy_copies(waveforms, speakers, "white", 10.0, seed=3))
    assert not np.array_equal(white, noisy_copies(waveforms, speakers, "babble", 10.0, seed=3))
    with pytest.raises(ValueError, match="unknown noise"):
        noisy_copies(waveforms, speakers, "pink", 10.0, seed=3)


def test_uar_under_noise_scores_each_kind_and_snr():
    waveforms = np.stack([np.full(100, 1.0, np.float32), np.full(100, -1.0, np.float32)] * 3)
    labels, speakers = np.asarray([0, 1] * 3), np.asarray(list("abcdef"))

    def predict(batch):  # the sign of the mean: right when clean, a coin toss when the noise swamps it
        positive = batch.mean(axis=1) > 0
        return np.stack([positive, ~positive], axis=1).astype(np.float32)

    def score(truth, probabilities):
        predicted = probabilities.argmax(axis=1)
        return {"uar": float(np.mean([np.mean(predicted[truth == c] == c) for c in (0, 1)]))}

    table = uar_under_noise(predict, waveforms, labels, speakers, [60, -30], score)
    assert table["white"]["60"] == table["babble"]["60"] == 1.0
    assert table["white"]["-30"] < 1.0
