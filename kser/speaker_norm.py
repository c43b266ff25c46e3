"""Speaker-level feature normalisation: each speaker's log-mel mapped to zero mean, unit sd per mel band.

Why: issue 22's first candidate for generalising to new speakers and corpora. A speaker's voice and
a corpus's recording chain shift the long-term spectrum; normalising it out per speaker leaves the
model what changes within a speaker (the emotion). E13 showed that matching statistics at test time
alone does not help a model trained without it: the model must learn on normalised features.

What a clip of speaker s becomes, per mel band b (Δ and ΔΔ are linear in the log-mel, so the shift
drops out of them and the scale stays; channels after the third, kser.prosody's, are left alone)::

    log-mel  (x - mean[s, b]) / sd[s, b]        Δ, ΔΔ  x / sd[s, b]

``mean`` and ``sd`` are over every frame of the speaker's clean clips (no augmentation). Training
uses the statistics of each training (and validation) speaker; evaluation the test speaker's own
clips (transductive, as E13's probe: no labels are used). A speaker with fewer than ``MIN_CLIPS``
clips, a clip without a speaker, and every runtime that scores one clip at a time (``kser
predict``, the exported models) falls back to the statistics of all training clips, which the saved
model holds in its :class:`SpeakerNormalization` layer.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, Iterable

import keras
import numpy as np
from keras import ops

MIN_CLIPS = 5  # fewer clips than this say too little about a speaker: the global statistics instead
MIN_SD = 1e-3  # a band that never changes (digital silence) is not blown up
LAYER_NAME = "speaker_normalization"


def normalize_features(features: Any, mean: Any, sd: Any) -> Any:
    """``features`` [batch, frames, mels, channels] normalised by ``mean`` and ``sd``
    ([batch, mels] per clip, or [1, mels] for all); any backend's tensors, or tf.data's."""
    mean = ops.expand_dims(ops.cast(mean, features.dtype), 1)
    sd = ops.expand_dims(ops.cast(sd, features.dtype), 1)
    log_mel = (features[..., :1] - ops.expand_dims(mean, -1)) / ops.expand_dims(sd, -1)
    deltas = features[..., 1:3] / ops.expand_dims(sd, -1)
    return ops.concatenate([log_mel, deltas, features[..., 3:]], axis=-1)


@keras.saving.register_keras_serializable(package="kser")
class SpeakerNormalization(keras.layers.Layer):
    """:func:`normalize_features` with one speaker's statistics, held as (non-trainable) weights.

    A saved model holds the statistics of all its training clips: the fallback for a clip whose
    speaker is unknown. ``kser evaluate`` sets each test speaker's own (:func:`predict_by_speaker`).
    """

    def __init__(self, n_mels: int, **kwargs: Any) -> None:
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.n_mels = int(n_mels)
        self.mean = self.add_weight(shape=(self.n_mels,), initializer="zeros", trainable=False, name="mean")
        self.sd = self.add_weight(shape=(self.n_mels,), initializer="ones", trainable=False, name="sd")

    def call(self, features: Any) -> Any:
        return normalize_features(features, ops.expand_dims(self.mean, 0), ops.expand_dims(self.sd, 0))

    def set_statistics(self, mean: np.ndarray, sd: np.ndarray) -> None:
        self.mean.assign(np.asarray(mean, np.float32))
        self.sd.assign(np.asarray(sd, np.float32))

    def statistics(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(ops.convert_to_numpy(self.mean)), np.asarray(ops.convert_to_numpy(self.sd))

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "n_mels": self.n_mels}


@dataclasses.dataclass(frozen=True)
class SpeakerStatistics:
    """Per-speaker log-mel statistics and the global fallback; row ``len(names)`` of :meth:`tables` is the fallback."""

    names: tuple[str, ...]  # speakers with their own statistics (at least MIN_CLIPS clips), sorted
    mean: np.ndarray  # [speakers, mels]
    sd: np.ndarray  # [speakers, mels]
    global_mean: np.ndarray  # [mels]: every clip the fallback was measured on
    global_sd: np.ndarray

    def tables(self) -> tuple[np.ndarray, np.ndarray]:
        """``(mean, sd)`` [speakers + 1, mels] float32, the fallback last."""
        return (
            np.vstack([self.mean, self.global_mean[None]]).astype(np.float32),
            np.vstack([self.sd, self.global_sd[None]]).astype(np.float32),
        )

    def rows_of(self, speakers: Iterable[str]) -> np.ndarray:
        """Each speaker's row of :meth:`tables` (the fallback row for a speaker without statistics)."""
        index = {name: row for row, name in enumerate(self.names)}
        return np.asarray([index.get(speaker, len(self.names)) for speaker in speakers], np.int64)


class BandMoments:
    """Running per-band sums of log-mel frames per group: what :class:`SpeakerStatistics` is made from."""

    def __init__(self) -> None:
        self.clips: dict[str, int] = {}
        self.frames: dict[str, float] = {}
        self.sums: dict[str, np.ndarray] = {}
        self.squares: dict[str, np.ndarray] = {}

    def add(self, features: np.ndarray, groups: Iterable[str]) -> None:
        """``features`` [clips, frames, mels, channels] of clips in ``groups`` (one name per clip)."""
        log_mel = np.asarray(features, np.float64)[..., 0]
        for clip, group in enumerate(map(str, groups)):
            self.clips[group] = self.clips.get(group, 0) + 1
            self.frames[group] = self.frames.get(group, 0.0) + log_mel.shape[1]
            self.sums[group] = self.sums.get(group, 0.0) + log_mel[clip].sum(axis=0)
            self.squares[group] = self.squares.get(group, 0.0) + np.square(log_mel[clip]).sum(axis=0)

    def moments(self, groups: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
        """Mean and sd per band over every frame of ``groups`` together."""
        groups = list(groups)
        frames = sum(self.frames[group] for group in groups)
        mean = sum(self.sums[group] for group in groups) / frames
        variance = sum(self.squares[group] for group in groups) / frames - np.square(mean)
        return mean.astype(np.float32), np.maximum(np.sqrt(np.maximum(variance, 0.0)), MIN_SD).astype(np.float32)

    def statistics(self, fallback: "BandMoments | None" = None, min_clips: int = MIN_CLIPS) -> SpeakerStatistics:
        """Own statistics for groups with ``min_clips`` clips or more (never the unnamed ""); the
        fallback pooled over every clip of ``fallback`` (default: of these moments)."""
        fallback = fallback or self
        if not self.clips or not fallback.clips:
            raise ValueError("no clips to measure speaker statistics on")
        names = tuple(sorted(group for group, clips in self.clips.items() if group and clips >= min_clips))
        own = [self.moments([name]) for name in names]
        global_mean, global_sd = fallback.moments(fallback.clips)
        n_mels = global_mean.shape[0]
        return SpeakerStatistics(
            names=names,
            mean=np.asarray([mean for mean, _ in own], np.float32).reshape(len(names), n_mels),
            sd=np.asarray([sd for _, sd in own], np.float32).reshape(len(names), n_mels),
            global_mean=global_mean,
            global_sd=global_sd,
        )


def measure(records_dir: str | Path, subsets: Iterable[Any], front_end: Any, fallback_subset: Any, batch_size: int = 64) -> SpeakerStatistics:
    """The statistics of every speaker in ``subsets`` (split names or kser.data.Subset) through
    ``front_end`` on clean clips; the fallback over ``fallback_subset``'s clips (the training split)."""
    from kser.data import Subset
    from kser.pydataset import read_clips

    moments, fallback = BandMoments(), BandMoments()
    fallback_subset = Subset.of(fallback_subset)
    for subset in dict.fromkeys(Subset.of(subset) for subset in subsets):
        clips = read_clips(Path(records_dir), subset)
        for start in range(0, len(clips), batch_size):
            rows = np.arange(start, min(start + batch_size, len(clips)))
            features, speakers = ops.convert_to_numpy(front_end(clips.waveforms(rows))), clips.speakers[rows]
            moments.add(features, speakers)
            if subset == fallback_subset:
                fallback.add(features, speakers)
    return moments.statistics(fallback)


def speaker_normalization_of(model: Any) -> SpeakerNormalization | None:
    """The SpeakerNormalization layer of a waveform classifier (inside its classifier), or None."""
    from kser.audio_frontend import classifier_of

    found = [layer for layer in getattr(classifier_of(model), "layers", []) if isinstance(layer, SpeakerNormalization)]
    return found[0] if found else None


def with_speaker_normalization(core: keras.Model, statistics: SpeakerStatistics) -> keras.Model:
    """``features -> SpeakerNormalization (the global statistics) -> core``, sharing core's weights,
    under core's name: the classifier a speaker-normalised model saves."""
    features = keras.Input(core.input_shape[1:], name="features")
    layer = SpeakerNormalization(core.input_shape[-2], name=LAYER_NAME)
    layer.build(features.shape)
    layer.set_statistics(statistics.global_mean, statistics.global_sd)
    return keras.Model(features, core(layer(features)), name=core.name)


def predict_by_speaker(
    model: Any, waveforms: np.ndarray, speakers: np.ndarray, batch_size: int, min_clips: int = MIN_CLIPS
) -> np.ndarray:
    """Probabilities of a speaker-normalised waveform classifier, each speaker's clips scored with
    that speaker's own statistics (from these clips; the model's fallback below ``min_clips``)."""
    from kser.audio_frontend import front_end_of

    layer = speaker_normalization_of(model)
    fallback = layer.statistics()
    front_end = front_end_of(model)
    moments = BandMoments()
    for start in range(0, len(waveforms), batch_size):
        moments.add(ops.convert_to_numpy(front_end(waveforms[start : start + batch_size])), speakers[start : start + batch_size])
    probabilities = np.zeros((len(waveforms), model.output_shape[-1]), np.float32)
    try:
        for speaker in sorted(set(speakers.tolist())):
            rows = np.flatnonzero(speakers == speaker)
            own = speaker and moments.clips[speaker] >= min_clips
            layer.set_statistics(*(moments.moments([speaker]) if own else fallback))
            for start in range(0, len(rows), batch_size):
                chosen = rows[start : start + batch_size]
                probabilities[chosen] = np.asarray(model.predict_on_batch(waveforms[chosen]))
    finally:
        layer.set_statistics(*fallback)
    return probabilities


def pack(waveforms: Any, mean: Any, sd: Any) -> Any:
    """``[batch, samples + 2 * mels]``: each clip's waveform followed by its speaker's statistics.

    Why: when the front end runs in the training model (a GPU, JAX), the model must be told each
    clip's statistics; one input tensor keeps every stage that handles inputs as one array (batching,
    mixup, distribution) unchanged. :func:`unpack` is the model's side; nothing packed is saved."""
    return ops.concatenate([waveforms, ops.cast(mean, waveforms.dtype), ops.cast(sd, waveforms.dtype)], axis=-1)


def unpack(packed: Any, samples: int, n_mels: int) -> tuple[Any, Any, Any]:
    """:func:`pack`'s inverse: ``(waveforms, mean, sd)``."""
    return packed[:, :samples], packed[:, samples : samples + n_mels], packed[:, samples + n_mels : samples + 2 * n_mels]


def batch_normalizer(statistics: SpeakerStatistics, packing: bool = False) -> Callable[[Any, Any], Any]:
    """For tf.data: ``(features, speaker names [batch]) -> normalised features``, each clip by its
    speaker's row (the fallback for speakers without statistics); ``packing``: ``(waveforms,
    names) ->`` :func:`pack`'s tensor, for a model that computes the features itself."""
    import tensorflow as tf

    mean, sd = (tf.constant(table) for table in statistics.tables())
    names = tf.constant(statistics.names or ("",), dtype=tf.string)
    count = len(statistics.names)

    def rows_of(speakers: Any) -> Any:
        known = tf.equal(tf.expand_dims(speakers, -1), tf.expand_dims(names, 0)) & (count > 0)
        return tf.where(tf.reduce_any(known, axis=-1), tf.argmax(tf.cast(known, tf.int32), axis=-1, output_type=tf.int32), count)

    def normalize(inputs: Any, speakers: Any) -> Any:
        rows = rows_of(speakers)
        if packing:
            return pack(inputs, tf.gather(mean, rows), tf.gather(sd, rows))
        return normalize_features(inputs, tf.gather(mean, rows), tf.gather(sd, rows))

    return normalize
