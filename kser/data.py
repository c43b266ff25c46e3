"""The tf.data input pipeline: TFRecord shards -> (features or waveforms, one-hot labels[, weights]).

The stages of kser.input_plan's plan, in tf.data:

    read (shards interleaved, shuffled) -> select speakers -> parse -> [oversample -> shuffle] -> batch
          -> [WaveformAugment] -> [AudioFrontEnd] -> [SpecAugment] -> targets -> [mixup] -> prefetch

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

from kser.errors import KserError
from kser.frontend import SHUFFLE_SEED_OFFSET, derived_seed
from kser.input_plan import BALANCE_MODES, InputOptions, InputPlan, plan_inputs  # noqa: F401  (BALANCE_MODES re-exported)
from kser.quiet import tensorflow
from kser.records import MANIFEST_FILE as MANIFEST
from kser.records import feature_spec, parse_example
from kser.records_info import RecordsInfo
from kser.splits import SPLITS


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


def speakers_of(records: RecordsInfo, split: "str | Subset") -> tuple[str, ...]:
    """The named speakers with clips in ``split`` (a split name or Subset), sorted; clips whose
    layout cannot tell the speaker (an empty name) are not a speaker."""
    subset = Subset.of(split)
    present = set(speaker_class_counts(records, subset.splits)) - {""}
    return tuple(sorted(present if subset.speakers is None else present & set(subset.speakers)))


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


def make_dataset(
    records_dir: str | Path,
    split: str | Subset,
    *,
    deterministic: bool | None = None,
    shuffle_buffer: int = 2048,
    warn: Callable[[str], None] | None = None,
    **options: Any,
) -> Any:
    """A batched ``tf.data.Dataset`` of ``(inputs, labels)``, or ``(inputs, labels, weights)`` when
    ``balance="weights"``; ``options`` are :class:`kser.input_plan.InputOptions`' fields.

    ``split`` is a split name or a :class:`Subset` (splits and speakers, as cross-validation uses).
    ``deterministic`` (default: True when a seed is given) also fixes the element order of
    parallel stages. A multi-worker training dataset (``worker=(i, n)``, n > 1) reads worker i's
    share of the shard files (every n-th), or, with fewer files than workers, every file keeping
    every n-th clip (``warn`` is told); it repeats forever, in full batches. Evaluation data is
    never sharded, and is read in the records' order.
    """
    plan = plan_inputs(records_dir, split, InputOptions(**options), warn)
    deterministic = plan.seed is not None if deterministic is None else deterministic
    dataset = _read(plan, deterministic, shuffle_buffer)
    dataset = _select_speakers(dataset, plan)
    dataset = _parse(dataset, plan, deterministic)
    if plan.balance == "oversample":
        dataset = _oversample(dataset, plan.factors, plan.seed)
        dataset = dataset.shuffle(shuffle_buffer, seed=derived_seed(plan.seed, SHUFFLE_SEED_OFFSET), reshuffle_each_iteration=True)
    if plan.endless:
        # Every step, every worker must feed a full batch (a collective over unequal shapes
        # fails), however few clips its share holds: repeat first, so batches span passes.
        dataset = dataset.repeat()
    dataset = dataset.batch(plan.batch_size, drop_remainder=plan.endless)
    dataset = _featurise(dataset, plan)
    dataset = _targets(dataset, plan)
    if plan.mixup_alpha > 0:
        dataset = _mixup(dataset, plan.mixup_alpha, plan.mixup_seed)
    tf = tensorflow()
    if not plan.training:
        # Evaluation splits hold a known number of batches: tell Keras (progress bars, no
        # "ran out of data" warnings).
        batches = -(-split_size(plan.records, plan.subset) // plan.batch_size)
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(batches))
    pipeline_options = tf.data.Options()
    pipeline_options.deterministic = deterministic or not plan.training
    return dataset.with_options(pipeline_options).prefetch(tf.data.AUTOTUNE)


def _read(plan: InputPlan, deterministic: bool, shuffle_buffer: int) -> Any:
    """Serialized examples: a training dataset interleaves its (shuffled) files and shuffles; an
    evaluation dataset reads the records' order, shard after shard (kser.pydataset reads the same)."""
    tf = tensorflow()
    shards = list(plan.shards)
    if not plan.training:
        return tf.data.TFRecordDataset(shards)
    files = tf.data.Dataset.from_tensor_slices(shards)
    if not plan.per_example:  # per-example sharding needs the same order on every worker
        files = files.shuffle(len(shards), seed=plan.seed, reshuffle_each_iteration=True)
    if len(shards) > 1:
        dataset = files.interleave(
            tf.data.TFRecordDataset,
            cycle_length=min(len(shards), 4),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=deterministic or plan.per_example,
        )
    else:
        dataset = tf.data.TFRecordDataset(shards)
    if plan.per_example:
        dataset = dataset.shard(plan.worker_count, plan.worker_index)
    return dataset.shuffle(shuffle_buffer, seed=plan.seed, reshuffle_each_iteration=True)


def _select_speakers(dataset: Any, plan: InputPlan) -> Any:
    """Keep the subset's speakers, parsing only the speaker field (before any waveform is decoded)."""
    if plan.subset.speakers is None:
        return dataset
    tf = tensorflow()
    wanted = tf.constant(sorted(plan.subset.speakers) or [""], dtype=tf.string)
    speaker_spec = {"speaker": feature_spec()["speaker"]}

    def selected(serialized: Any) -> Any:
        speaker = tf.io.parse_single_example(serialized, speaker_spec)["speaker"]
        return tf.reduce_any(tf.equal(speaker, wanted))

    return dataset.filter(selected)


def _parse(dataset: Any, plan: InputPlan, deterministic: bool) -> Any:
    """(waveform float32 [samples], label[, speaker name when plan.reads_speakers]) per clip."""
    tf = tensorflow()
    encoding, samples = plan.records.waveform_encoding, plan.records.clip_samples

    def parse(serialized: Any) -> tuple[Any, ...]:
        parsed = parse_example(serialized, encoding)
        waveform = tf.ensure_shape(parsed["waveform"], [samples])
        if not plan.reads_speakers:
            return waveform, parsed["label"]
        return waveform, parsed["label"], parsed["speaker"]

    return dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic or not plan.training)


def _targets(dataset: Any, plan: InputPlan) -> Any:
    """Labels one-hot (or as they are), with the class weights when the plan has them."""
    tf = tensorflow()
    weights = None if plan.weights is None else tf.constant(plan.weights)
    names = tf.constant(plan.speakers or ("",), dtype=tf.string)

    def finish(inputs: Any, labels: Any, *speaker: Any) -> Any:
        targets = tf.one_hot(labels, plan.num_classes) if plan.one_hot else labels
        if plan.speakers:  # all zeros for a speaker not in plan.speakers
            known = tf.equal(tf.expand_dims(speaker[0], -1), tf.expand_dims(names, 0))
            targets = tf.concat([targets, tf.cast(known, targets.dtype)], axis=-1)
        if weights is None:
            return inputs, targets
        return inputs, targets, tf.gather(weights, labels)

    return dataset.map(finish, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def _featurise(dataset: Any, plan: InputPlan) -> Any:
    """Batched in-graph augmentation and features (kser.frontend); the random layers are mapped
    sequentially (parallel calls could repeat a draw, see kser.augment). Speaker statistics
    normalise the front end's output (its one stage that is not random), before SpecAugment; with
    waveforms out, they are packed beside them (kser.speaker_norm.pack) for the model to apply."""
    tf = tensorflow()
    with_statistics = None
    if plan.speaker_statistics is not None:
        from kser.speaker_norm import batch_normalizer

        normalize = batch_normalizer(plan.speaker_statistics, packing=not plan.stages)

        def with_statistics(batches: Any) -> Any:
            return batches.map(lambda x, label, speaker: (normalize(x, speaker), label, speaker), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

        if not plan.stages:  # waveforms for a model with its own front end: statistics packed beside them
            return with_statistics(dataset)
    for layer, random in plan.stages:
        if random:
            dataset = dataset.map(lambda x, *rest, layer=layer: (layer(x, training=True), *rest))
        else:
            dataset = dataset.map(lambda x, *rest, layer=layer: (layer(x), *rest), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            if with_statistics is not None:
                dataset = with_statistics(dataset)
    return dataset
