"""The tf.data input pipeline: TFRecord shards -> (features or waveforms, one-hot labels[, weights]).

    shards (interleaved) -> [shuffle] -> parse -> [oversample] -> [shuffle] -> batch
          -> [WaveformAugment] -> [AudioFrontEnd] -> [SpecAugment] -> prefetch

Feature and augmentation work happens on whole batches, in the graph. Augmentation and class
rebalancing only ever touch a training dataset; validation and test data are read once each,
in a fixed order. With ``output="waveforms"`` the features (and augmentation) are left to layers
at the front of the model instead, which is where they belong on a GPU.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

import numpy as np

from kser.config import AugmentConfig
from kser.distribution import worker_files
from kser.errors import KserError
from kser.frontend import MIXUP_SEED_OFFSET, SHUFFLE_SEED_OFFSET, derived_seed
from kser.quiet import tensorflow
from kser.records import MANIFEST_FILE as MANIFEST
from kser.records import feature_spec, parse_example
from kser.records_info import RecordsInfo, read_records_info
from kser.splits import SPLITS

BALANCE_MODES = ("none", "oversample", "weights")
OUTPUTS = ("features", "waveforms")


@dataclasses.dataclass(frozen=True)
class Subset:
    """Which clips of a records directory a dataset reads: some splits, optionally only some speakers.

    A plain split name means ``Subset((split,))``. Speaker subsets are how cross-validation reads
    its folds out of one build: the records are written once and each fold filters them by speaker.
    """

    splits: tuple[str, ...]
    speakers: frozenset[str] | None = None  # None: every speaker of those splits
    name: str = ""  # for messages and reports, e.g. "fold 2 test"

    @classmethod
    def of(cls, split: "str | Subset") -> "Subset":
        return split if isinstance(split, Subset) else cls((split,), name=split)

    @property
    def label(self) -> str:
        return self.name or "+".join(self.splits)


def subset_to_json(subset: Subset) -> dict[str, Any]:
    """A JSON form of a subset, for run configurations and reports."""
    return {
        "name": subset.label,
        "splits": list(subset.splits),
        "speakers": None if subset.speakers is None else sorted(subset.speakers),
    }


def speaker_class_counts(records: RecordsInfo, splits: tuple[str, ...] = SPLITS) -> dict[str, dict[str, int]]:
    """speaker -> label -> clips over ``splits`` (records from kser build-records 0.2 and later)."""
    result: dict[str, dict[str, int]] = {}
    for split in splits:
        info = records.splits.get(split)
        if info is None:
            continue
        if info.clips and info.speaker_class_counts is None:
            raise KserError("these records have no per-speaker counts (built by an older kser); rebuild them with kser build-records")
        for speaker, counts in (info.speaker_class_counts or {}).items():
            merged = result.setdefault(speaker, {})
            for label, count in counts.items():
                merged[label] = merged.get(label, 0) + int(count)
    return result


def class_counts(records: RecordsInfo, split: "str | Subset" = "train") -> np.ndarray:
    """Clips per label (in label order) of a split or subset."""
    subset = Subset.of(split)
    names = records.label_names
    if subset.speakers is None:
        totals: dict[str, int] = {}
        for name in subset.splits:
            info = records.splits.get(name)
            for label, count in (info.class_counts if info else {}).items():
                totals[label] = totals.get(label, 0) + int(count)
    else:
        per_speaker = speaker_class_counts(records, subset.splits)
        totals = {}
        for speaker in subset.speakers & set(per_speaker):
            for label, count in per_speaker[speaker].items():
                totals[label] = totals.get(label, 0) + count
    return np.asarray([totals.get(label, 0) for label in names], dtype=np.int64)


def class_weights(records: RecordsInfo, split: "str | Subset" = "train") -> np.ndarray:
    """``n / (classes * n_c)``: every class carries the same total weight in the loss."""
    counts = class_counts(records, split).astype(np.float64)
    weights = np.where(counts > 0, counts.sum() / (np.count_nonzero(counts) * np.maximum(counts, 1)), 0.0)
    return weights.astype(np.float32)


def factors_for_counts(counts: np.ndarray) -> np.ndarray:
    """Per-class oversampling factors ``max_count / n_c`` of class counts (0 for an absent class)."""
    counts = np.asarray(counts, dtype=np.float64)
    return np.where(counts > 0, counts.max() / np.maximum(counts, 1), 0.0)


def oversampled_size(counts: np.ndarray) -> int:
    """Clips per oversampled epoch: every present class raised to the largest one."""
    return int(np.max(counts) * np.count_nonzero(counts))


def oversampling_factors(records: RecordsInfo, split: "str | Subset" = "train") -> np.ndarray:
    """How many copies of each clip of class c an epoch holds on average: ``max_count / n_c``."""
    return factors_for_counts(class_counts(records, split)).astype(np.float32)


def split_size(records: RecordsInfo, split: "str | Subset", balance: str = "none") -> int:
    """Clips per epoch of ``split`` (oversampling raises every class to the largest one)."""
    counts = class_counts(records, split)
    if balance == "oversample":
        return oversampled_size(counts)
    return int(counts.sum())


def shard_paths(records_dir: Path, records: RecordsInfo, subset: Subset) -> list[str]:
    """The subset's shard files in the manifest's order; KserError when absent, empty or incomplete."""
    shards = []
    for split in subset.splits:
        if split not in records.splits:
            raise KserError(f"split {split!r} not in {records_dir}/{MANIFEST}; it has {', '.join(records.splits)}")
        shards += [str(records_dir / name) for name in records.splits[split].shards]
    if not shards or split_size(records, subset) == 0:
        raise KserError(f"{subset.label} of {records_dir} has no clips")
    missing = [path for path in shards if not Path(path).is_file()]
    if missing:
        raise KserError(f"{records_dir} is incomplete: {missing[0]} is listed in the manifest but missing")
    return shards


def _oversample(dataset: Any, factors: np.ndarray, seed: int | None) -> Any:
    """Repeat each clip floor(f) or ceil(f) times (f = its class's factor, random rounding).

    One pass over the data, no per-class readers: class c contributes ``n_c * f_c = max_count``
    clips per epoch in expectation, drawn afresh every epoch.
    """
    tf = tensorflow()
    table = tf.constant(factors)
    uniforms = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).map(
        lambda value: tf.cast(value % 1_000_003, tf.float32) / 1_000_003.0
    )

    def repeats(element: tuple[Any, Any], uniform: Any) -> Any:
        factor = tf.gather(table, element[1])
        count = tf.cast(tf.floor(factor), tf.int64) + tf.cast(uniform < factor - tf.floor(factor), tf.int64)
        return tf.data.Dataset.from_tensors(element).repeat(count)

    return tf.data.Dataset.zip((dataset, uniforms)).flat_map(repeats)


def _mixup(dataset: Any, alpha: float, seed: int | None) -> Any:
    """Mixup (Zhang et al. 2018) of whole batches: ``x = l x + (1-l) x[perm]``, same for labels and weights.

    Stateless draws keyed by a seeded stream of integers, so it is repeatable with a seed and safe
    in any map (a parallel map cannot repeat a draw as stateful random ops can).
    """
    tf = tensorflow()
    keys = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(3)

    def mix(element: tuple[Any, ...], key: Any) -> tuple[Any, ...]:
        key = tf.cast(key % 2_147_483_647, tf.int32)
        size = tf.shape(element[0])[:1]
        first = tf.random.stateless_gamma(size, seed=key[:2], alpha=alpha)
        second = tf.random.stateless_gamma(size, seed=key[1:], alpha=alpha)
        lam = first / tf.maximum(first + second, 1e-12)
        order = tf.argsort(tf.random.stateless_uniform(size, seed=tf.stack([key[2], key[0]])))

        def blend(value: Any) -> Any:
            weight = tf.reshape(lam, tf.concat([size, tf.ones([tf.rank(value) - 1], tf.int32)], axis=0))
            weight = tf.cast(weight, value.dtype)
            return weight * value + (1 - weight) * tf.gather(value, order)

        return tuple(blend(value) for value in element)

    return tf.data.Dataset.zip((dataset, keys)).map(lambda element, key: mix(element, key))


def check_options(balance: str, output: str) -> None:
    """The choices every input pipeline takes; KserError naming the bad one."""
    if balance not in BALANCE_MODES:
        raise KserError(f"unknown balance mode {balance!r}; choose one of {', '.join(BALANCE_MODES)}")
    if output not in OUTPUTS:
        raise KserError(f"unknown output {output!r}; choose one of {', '.join(OUTPUTS)}")


def make_dataset(
    records_dir: str | Path,
    split: str | Subset,
    *,
    batch_size: int = 32,
    training: bool | None = None,
    balance: str = "none",
    augment: AugmentConfig | None = None,
    front_end: Any | None = None,
    output: str = "features",
    seed: int | None = None,
    deterministic: bool | None = None,
    shuffle_buffer: int = 2048,
    one_hot: bool = True,
    mixup_alpha: float = 0.0,
    worker: tuple[int, int] = (0, 1),
    warn: Callable[[str], None] | None = None,
) -> Any:
    """A batched ``tf.data.Dataset`` of ``(inputs, labels)``, or ``(inputs, labels, weights)`` when
    ``balance="weights"``.

    ``split`` is a split name or a :class:`Subset` (splits and speakers, as cross-validation uses).
    ``training`` (default: ``split == "train"``) turns on shuffling, rebalancing and
    augmentation; any other split is read as it is. ``output="features"`` yields
    ``[batch, frames, mels, 3]``: the waveforms through ``front_end`` (the model's
    kser.audio_frontend.AudioFrontEnd; default: the records' audio settings with the study's
    features), ``"waveforms"`` ``[batch, samples]``.
    ``seed`` makes shuffling, oversampling and augmentation repeatable; ``deterministic``
    (default: True when a seed is given) also fixes the element order of parallel stages.
    ``mixup_alpha > 0`` mixes each training batch with a shuffled copy of itself (inputs, one-hot
    labels and weights alike), with a fresh ``lambda ~ Beta(alpha, alpha)`` per clip.
    ``worker=(index, count)``: a training dataset reads only worker ``index``'s share of the shard
    files (every count-th); with fewer files than workers every worker reads them all and keeps
    every count-th clip instead, and ``warn`` is told once. Such a dataset repeats forever, in full
    batches. Evaluation data is never sharded.
    """
    tf = tensorflow()
    records_dir = Path(records_dir)
    records = read_records_info(records_dir)
    check_options(balance, output)
    subset = Subset.of(split)
    training = subset.splits == ("train",) if training is None else training
    deterministic = seed is not None if deterministic is None else deterministic
    num_classes = len(records.label_names)
    encoding = records.waveform_encoding
    shards = shard_paths(records_dir, records, subset)
    autotune = tf.data.AUTOTUNE
    index, count = worker
    per_example = False
    if training and count > 1:
        mine = worker_files(shards, count, index)
        per_example = mine is None
        if per_example and warn is not None:
            warn(
                f"{subset.label} has {len(shards)} shard file(s) for {count} workers: every worker reads them all and "
                f"keeps one clip in {count} (rebuild with kser build-records --min_shards={count} to read less)"
            )
        shards = shards if per_example else mine

    files = tf.data.Dataset.from_tensor_slices(shards)
    if training and not per_example:  # per-example sharding needs the same order on every worker
        files = files.shuffle(len(shards), seed=seed, reshuffle_each_iteration=True)
    if training and len(shards) > 1:
        dataset = files.interleave(
            tf.data.TFRecordDataset,
            cycle_length=min(len(shards), 4),
            num_parallel_calls=autotune,
            deterministic=deterministic or per_example,
        )
    else:  # evaluation data: the records' order, shard after shard (kser.pydataset reads the same)
        dataset = tf.data.TFRecordDataset(shards)
    if per_example:
        dataset = dataset.shard(count, index)
    if training:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)

    samples = records.clip_samples

    def parse(serialized: Any) -> tuple[Any, Any]:
        parsed = parse_example(serialized, encoding)
        return tf.ensure_shape(parsed["waveform"], [samples]), parsed["label"]

    if subset.speakers is not None:
        # Select speakers before the waveforms are decoded: parse only the speaker field first.
        wanted = tf.constant(sorted(subset.speakers) or [""], dtype=tf.string)
        speaker_spec = {"speaker": feature_spec()["speaker"]}

        def selected(serialized: Any) -> Any:
            speaker = tf.io.parse_single_example(serialized, speaker_spec)["speaker"]
            return tf.reduce_any(tf.equal(speaker, wanted))

        dataset = dataset.filter(selected)
    dataset = dataset.map(parse, num_parallel_calls=autotune, deterministic=deterministic or not training)
    if training and balance == "oversample":
        dataset = _oversample(dataset, oversampling_factors(records, subset), seed)
        dataset = dataset.shuffle(shuffle_buffer, seed=derived_seed(seed, SHUFFLE_SEED_OFFSET), reshuffle_each_iteration=True)
    if training and count > 1:
        # Every step, every worker must feed a full batch (a collective over unequal shapes
        # fails), however few clips its share holds: repeat first, so batches span passes.
        dataset = dataset.repeat()
    dataset = dataset.batch(batch_size, drop_remainder=training and count > 1)

    if output == "features":
        if front_end is None:
            from kser.audio_frontend import front_end_for

            front_end = front_end_for(records.audio)
        dataset = _add_features(dataset, training, augment, front_end, seed, deterministic)

    weights = tf.constant(class_weights(records, subset)) if balance == "weights" and training else None

    def finish(inputs: Any, labels: Any) -> Any:
        targets = tf.one_hot(labels, num_classes) if one_hot else labels
        if weights is None:
            return inputs, targets
        return inputs, targets, tf.gather(weights, labels)

    dataset = dataset.map(finish, num_parallel_calls=autotune, deterministic=True)
    if training and mixup_alpha > 0:
        if not one_hot:
            raise KserError("mixup needs one-hot labels")
        dataset = _mixup(dataset, mixup_alpha, derived_seed(seed, MIXUP_SEED_OFFSET))
    if not training:
        # Evaluation splits hold a known number of batches: tell Keras (progress bars, no
        # "ran out of data" warnings).
        batches = -(-split_size(records, subset) // batch_size)
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(batches))
    options = tf.data.Options()
    options.deterministic = deterministic or not training
    return dataset.with_options(options).prefetch(autotune)


def _add_features(
    dataset: Any, training: bool, augment: AugmentConfig | None, front_end: Any, seed: int | None, deterministic: bool
) -> Any:
    """Batched in-graph augmentation and features (kser.frontend); the random layers are mapped
    sequentially (parallel calls could repeat a draw, see kser.augment)."""
    tf = tensorflow()
    from kser.frontend import training_front_end

    for layer, random in training_front_end(front_end, augment if training else None, seed).stages():
        if random:
            dataset = dataset.map(lambda x, y, layer=layer: (layer(x, training=True), y))
        else:
            dataset = dataset.map(lambda x, y, layer=layer: (layer(x), y), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset
