"""kser.robustness: noise mixed at the asked SNR, babble from other speakers only, repeatable draws; shorter recordings as the builder makes them."""

import numpy as np
import pytest

from kser.robustness import ONSET_TOP_DB, babble, mix_at_snr, noisy_copies, shortened, uar_by_duration, uar_under_noise
from kser.waveform import add_peak_relative_noise, normalize, pad_or_trim, speech_bounds


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


def _speech_after_silence(seed: int, silence: int = 4000, length: int = 24_000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    clip = 0.001 * rng.standard_normal(length)
    t = np.arange(length - silence) / 8000
    clip[silence:] += np.sin(2 * np.pi * 180 * t) * (1.0 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return clip.astype(np.float32)


def test_shortened_is_the_builder_on_the_first_seconds_of_speech():
    """From the speech onset (0.5 s of near-silence skipped, less the trimmer's 0.1 s margin), one
    second through kser.waveform's normalize, pad_or_trim and peak-relative noise: the same draws."""
    clip = _speech_after_silence(0)
    ours = shortened(clip, 1.0, 8000, 0.035, np.random.default_rng(5))
    start, _ = speech_bounds(clip, 8000, ONSET_TOP_DB)
    assert 4000 - 800 - 200 <= start <= 4000 - 800  # the onset's frame (25 ms), less 100 ms of margin at 8 kHz
    expected = add_peak_relative_noise(pad_or_trim(normalize(clip[start : start + 8000])[0], clip.size), 0.035, np.random.default_rng(5))[0]
    np.testing.assert_allclose(ours, expected, atol=1e-6)
    assert ours.shape == clip.shape and np.abs(ours[9000:]).max() < 0.035 * ours[:8000].max() * 5
    whole = shortened(clip, 10.0, 8000, 0.0, np.random.default_rng(5))  # longer than what is left: the rest, padded
    np.testing.assert_allclose(whole[: clip.size - start], normalize(clip[start:])[0], atol=1e-6)
    assert not whole[clip.size - start :].any()


def test_uar_by_duration_scores_each_duration_with_repeatable_draws():
    waveforms = np.stack([_speech_after_silence(seed) * (1.0 if seed % 2 else 0.0) + 0.01 * seed for seed in range(6)])
    labels = np.asarray([0, 1] * 3)

    def predict(batch):  # speech in the last second: right for long recordings, wrong for short ones
        speech = np.abs(batch[:, -8000:]).mean(axis=1) > 0.3
        return np.stack([~speech, speech], axis=1).astype(np.float32)

    def score(truth, probabilities):
        predicted = probabilities.argmax(axis=1)
        return {"uar": float(np.mean([np.mean(predicted[truth == c] == c) for c in (0, 1)]))}

    table = uar_by_duration(predict, waveforms, labels, [1.0, 3.0], score, 8000, 0.035)
    assert table == {"1": 0.5, "3": 1.0}
    assert uar_by_duration(predict, waveforms, labels, [1.0], score, 8000, 0.035) == {"1": 0.5}
    with pytest.raises(ValueError, match="a duration must be > 0 s"):
        uar_by_duration(predict, waveforms, labels, [0.0], score, 8000, 0.035)
