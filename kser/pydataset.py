"""The input pipeline without TensorFlow: a ``keras.utils.PyDataset`` over records read into memory.

Where TensorFlow is installed kser reads records with tf.data (:mod:`kser.data`, the fastest on a
CPU); where it is not (a JAX or PyTorch machine), this gives the same contract, so that ``kser
train``, ``cross-validate`` and ``evaluate`` run there unchanged:

    shards (kser.tfrecord_format, the records' order) -> [select speakers] -> per epoch:
    [oversample] -> [shuffle] -> batch -> [WaveformAugment] -> [AudioFrontEnd] -> [SpecAugment]
    -> one-hot [-> weights] [-> mixup]

The same clips, counts and batches per epoch as tf.data, the same evaluation order (the records'),
and the same front-end layers for features. Two differences, both deliberate: an epoch is a full
permutation rather than tf.data's shuffle buffer, and oversampling gives every class exactly the
largest class's count each epoch (``max // n_c`` copies of every clip plus ``max % n_c`` drawn
without replacement), where tf.data's per-clip random rounding gives it in expectation. Clips stay
in memory in their stored form (int16: 96 kB per 3 s clip at 16 kHz; RAVDESS's 1,440 clips are
138 MB).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, Iterator

import keras
import numpy as np

from kser.data import Subset, shard_paths, split_size
from kser.errors import KserError
from kser.input_plan import InputOptions, plan_inputs
from kser.records import example_values, waveform_dtype
from kser.records_info import RecordsInfo, read_records_info
from kser.speaker_norm import normalize_features, pack
from kser.tfrecord_format import read_records


@dataclasses.dataclass(frozen=True)
class Clips:
    """A subset's clips in the records' order: stored samples, their scales, labels and speakers."""

    stored: np.ndarray  # [clips, samples] int16 or float32, as in the records
    scales: np.ndarray  # [clips] float32: waveform = stored * scale
    labels: np.ndarray  # [clips] int64
    speakers: np.ndarray  # [clips] str
    clip_ids: np.ndarray  # [clips] str

    def __len__(self) -> int:
        return int(self.labels.size)

    def waveforms(self, indices: np.ndarray) -> np.ndarray:
        """float32 ``[len(indices), samples]``, exactly tf.data's ``cast(raw) * scale`` (or the
        cached features ``[len(indices), ...]`` that replaced them, see RecordsDataset)."""
        scales = self.scales[indices].reshape((-1,) + (1,) * (self.stored.ndim - 1))
        return self.stored[indices].astype(np.float32) * scales


def read_clips(
    records_dir: str | Path, split: "str | Subset", records: RecordsInfo | None = None, shards: "tuple[str, ...] | None" = None
) -> Clips:
    """Every clip of ``split`` (a split name or :class:`kser.data.Subset`), shard after shard
    (``shards``: only these files of it, a worker's share)."""
    records_dir = Path(records_dir)
    records = records or read_records_info(records_dir)
    subset = Subset.of(split)
    dtype = waveform_dtype(records.waveform_encoding)
    samples = records.clip_samples
    stored, scales, labels, speakers, clip_ids = [], [], [], [], []
    for shard in shards if shards is not None else shard_paths(records_dir, records, subset):
        for number, record in enumerate(read_records(shard)):
            try:
                values = example_values(record)
            except ValueError as error:
                raise KserError(f"{shard}: record {number} is not a kser clip: {error}") from None
            speaker = values["speaker"].decode("utf-8")
            if subset.speakers is not None and speaker not in subset.speakers:
                continue
            waveform = np.frombuffer(values["waveform"], dtype=dtype)
            if waveform.size != samples:
                raise KserError(f"{shard}: record {number} holds {waveform.size} samples, the manifest says {samples}")
            stored.append(waveform)
            scales.append(values["waveform_scale"])
            labels.append(values["label"])
            speakers.append(speaker)
            clip_ids.append(values["clip_id"].decode("utf-8"))
    return Clips(
        stored=np.stack(stored) if stored else np.zeros((0, samples), dtype),
        scales=np.asarray(scales, np.float32),
        labels=np.asarray(labels, np.int64),
        speakers=np.asarray(speakers, dtype=str),
        clip_ids=np.asarray(clip_ids, dtype=str),
    )


def balanced_indices(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Clip indices with every present class raised to the largest class's count, exactly."""
    counts = np.bincount(labels)
    target = counts.max()
    chosen = []
    for label in np.flatnonzero(counts):
        members = np.flatnonzero(labels == label)
        chosen.append(np.repeat(members, target // members.size))
        chosen.append(rng.choice(members, target % members.size, replace=False))
    return np.sort(np.concatenate(chosen))


def mixup_batch(arrays: tuple[np.ndarray, ...], alpha: float, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Mixup of one batch (kser.data._mixup's rule): ``l x + (1-l) x[perm]``, ``l ~ Beta(alpha, alpha)`` per clip,
    the same ``l`` and permutation for inputs, one-hot labels and weights."""
    size = arrays[0].shape[0]
    lam = rng.beta(alpha, alpha, size).astype(np.float32)
    order = rng.permutation(size)

    def blend(value: np.ndarray) -> np.ndarray:
        weight = lam.reshape((size,) + (1,) * (value.ndim - 1))
        return (weight * value + (1 - weight) * value[order]).astype(value.dtype)

    return tuple(blend(value) for value in arrays)


class RecordsDataset(keras.utils.PyDataset):
    """:func:`kser.data.make_dataset`'s batches as a PyDataset (see the module docstring);
    ``options`` are :class:`kser.input_plan.InputOptions`' fields.

    A training dataset draws a new epoch, from ``seed`` and the epoch number, at each epoch end;
    anything else yields the records' order every pass. A multi-worker training dataset
    (``worker=(i, n)``, n > 1) reads worker i's share as tf.data does (its shard files, or every
    n-th clip when there are fewer files than workers) and yields ``steps`` full batches an epoch
    from an endless stream of passes.
    """

    def __init__(
        self,
        records_dir: str | Path,
        split: "str | Subset",
        *,
        steps: int | None = None,
        warn: Callable[[str], None] | None = None,
        **options: Any,
    ) -> None:
        super().__init__()
        plan = plan_inputs(records_dir, split, InputOptions(**options), warn)
        self.plan = plan
        self.training = plan.training
        self.batch_size = plan.batch_size
        self.seed = plan.seed
        self.epoch = 0
        self.clips = read_clips(plan.records_dir, plan.subset, plan.records, shards=plan.shards)
        if plan.feature_cache is not None:  # the front end's outputs instead of the waveforms
            from kser.feature_cache import cached_features

            features = cached_features(plan.feature_cache, self.clips.clip_ids)
            self.clips = dataclasses.replace(self.clips, stored=features, scales=np.ones(len(features), np.float32))
        # kser.data._targets' rule, per clip once: a one-hot over plan.speakers, zeros for other speakers.
        self._speaker_targets = (self.clips.speakers[:, None] == np.asarray(plan.speakers)[None, :]).astype(np.float32)
        self._statistics = None  # kser.data._featurise's rule: each clip by its speaker's statistics, (mean, sd) per clip
        if plan.speaker_statistics is not None:
            rows = plan.speaker_statistics.rows_of(self.clips.speakers)
            self._statistics = tuple(table[rows] for table in plan.speaker_statistics.tables())
        self._members = np.arange(len(self.clips))
        if plan.per_example:
            self._members = self._members[plan.worker_index :: plan.worker_count]
        if plan.endless and steps is not None:  # as many batches as the other workers yield
            self._steps = steps
        else:  # one pass
            clips_per_pass = len(self._members) if plan.endless else split_size(plan.records, plan.subset, plan.balance)
            self._steps = -(-clips_per_pass // plan.batch_size)
        self._pending = np.zeros(0, np.int64)
        self._iterated = False
        self._order = self._draw_epoch()

    # Epochs --------------------------------------------------------------------------------------

    def _rng(self, *keys: int) -> np.random.Generator:
        return np.random.default_rng(None if self.seed is None else [self.seed, *keys])

    def _one_pass(self, rng: np.random.Generator) -> np.ndarray:
        members = self._members
        if self.plan.balance == "oversample":
            members = members[balanced_indices(self.clips.labels[members], rng)]
        return rng.permutation(members)

    def _draw_epoch(self) -> np.ndarray:
        if not self.training:
            return self._members
        rng = self._rng(self.epoch)
        if not self.plan.endless:
            return self._one_pass(rng)
        needed = self._steps * self.batch_size
        while self._pending.size < needed:
            self._pending = np.concatenate([self._pending, self._one_pass(rng)])
        order, self._pending = self._pending[:needed], self._pending[needed:]
        return order

    def on_epoch_end(self) -> None:
        if self.training:
            self.epoch += 1
            self._order = self._draw_epoch()

    # Batches -------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._steps if self.training else -(-len(self._members) // self.batch_size)

    @property
    def num_batches(self) -> int:
        return len(self)

    def __getitem__(self, index: int) -> tuple[np.ndarray, ...]:
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} of {len(self)}")
        plan = self.plan
        chosen = self._order[index * self.batch_size : (index + 1) * self.batch_size]
        inputs = self.clips.waveforms(chosen)
        statistics = None if self._statistics is None else tuple(table[chosen] for table in self._statistics)
        for layer, random in plan.stages:
            inputs = keras.ops.convert_to_numpy(layer(inputs, training=True) if random else layer(inputs))
            if not random and statistics is not None:
                inputs = keras.ops.convert_to_numpy(normalize_features(inputs, *statistics))
        if not plan.stages and statistics is not None:  # kser.data._featurise's packing
            inputs = keras.ops.convert_to_numpy(pack(inputs, *statistics))
        labels = self.clips.labels[chosen]
        targets = np.eye(plan.num_classes, dtype=np.float32)[labels] if plan.one_hot else labels
        if plan.speakers:
            targets = np.concatenate([targets, self._speaker_targets[chosen]], axis=-1)
        batch = (inputs, targets) if plan.weights is None else (inputs, targets, plan.weights[labels])
        if plan.mixup_alpha > 0:
            rng = np.random.default_rng(None if plan.mixup_seed is None else [plan.mixup_seed, self.epoch, index])
            batch = mixup_batch(batch, plan.mixup_alpha, rng)
        return batch

    def __iter__(self) -> Iterator[tuple[np.ndarray, ...]]:
        """One epoch, as iterating a tf.data dataset again gives one: a training dataset draws a
        fresh epoch for each iteration after the first (Keras itself indexes and calls on_epoch_end)."""
        if self._iterated:
            self.on_epoch_end()
        self._iterated = True
        for index in range(len(self)):
            yield self[index]
