"""What an input pipeline reads and does, decided once for both pipelines.

``InputOptions`` is what a caller asks for (the one signature of :func:`kser.data.make_dataset` and
:class:`kser.pydataset.RecordsDataset`); :func:`plan_inputs` turns it, with the records' manifest,
into an :class:`InputPlan`: which shard files, which speakers, whether it trains, how it balances,
which front-end stages make features, whether it mixes, and this worker's share. Each pipeline
then runs the same stages over the plan, in its own engine:

    read (plan.shards) -> select (plan.subset.speakers) -> [balance] -> batch
    -> [featurise: plan.stages, speaker normalisation after the front end] -> targets (one-hot[ | speaker one-hot][, weights]) -> [mix]

Why: the decisions (an evaluation split is never balanced, augmented or mixed; weights only for
training; a worker's share) were made twice, once per pipeline, and two copies drift.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

import numpy as np

from kser.config import AugmentConfig
from kser.distribution import worker_files
from kser.errors import KserError
from kser.frontend import MIXUP_SEED_OFFSET, derived_seed


@dataclasses.dataclass(frozen=True)
class InputOptions:
    """What to read, as a caller asks for it.

    ``training`` (default: the split is ``"train"``) turns on shuffling, rebalancing, augmentation
    and mixup; any other split is read as it is, in the records' order. ``output="features"`` yields
    ``[batch, frames, mels, 3]``: the waveforms through ``front_end`` (the model's
    kser.audio_frontend.AudioFrontEnd; default: the records' audio settings with the study's
    features), ``"waveforms"`` ``[batch, samples]``. ``balance``: ``oversample`` raises every class
    to the largest one each epoch, ``weights`` adds per-clip class weights. ``seed`` makes
    shuffling, oversampling, augmentation and mixup repeatable. ``mixup_alpha > 0`` mixes each
    training batch with a shuffled copy of itself (inputs, one-hot labels and weights alike),
    ``lambda ~ Beta(alpha, alpha)`` per clip. ``worker=(index, count)``: a training dataset reads
    only worker ``index``'s share and yields full batches from an endless stream.
    ``feature_cache``: a kser.feature_cache file holding ``front_end``'s outputs for these records;
    the features are read from it instead of computed (no augmentation can act on them then).
    ``speakers``: one-hot targets gain a speaker one-hot over these names, appended (zeros for a
    clip of another speaker), for a speaker-adversarial head (kser.adversary).
    ``speaker_statistics``: features are normalised per speaker with these
    (kser.speaker_norm.SpeakerStatistics), right after the front end; waveforms come with their
    speaker's statistics packed after them (kser.speaker_norm.pack), for the model to apply.
    """

    batch_size: int = 32
    training: bool | None = None
    balance: str = "none"
    augment: AugmentConfig | None = None
    front_end: Any | None = None
    output: str = "features"
    seed: int | None = None
    one_hot: bool = True
    mixup_alpha: float = 0.0
    worker: tuple[int, int] = (0, 1)
    feature_cache: Path | None = None
    speakers: tuple[str, ...] = ()
    speaker_statistics: Any | None = None


BALANCE_MODES = ("none", "oversample", "weights")
OUTPUTS = ("features", "waveforms")


@dataclasses.dataclass(frozen=True)
class InputPlan:
    """Every decision of one dataset, made from its options and the records' manifest."""

    records_dir: Path
    records: Any  # kser.records_info.RecordsInfo
    subset: Any  # kser.data.Subset
    shards: tuple[str, ...]  # this worker's shard files, in the order read for evaluation
    training: bool
    batch_size: int
    balance: str  # "none" unless training
    factors: np.ndarray | None  # per-class oversampling factors (balance "oversample")
    weights: np.ndarray | None  # per-class loss weights (balance "weights")
    stages: tuple[tuple[Any, bool], ...]  # (layer, random) from waveforms to features; () for waveforms
    num_classes: int
    one_hot: bool
    mixup_alpha: float  # 0 unless training
    mixup_seed: int | None
    seed: int | None
    worker_index: int
    worker_count: int  # > 1 only for a training dataset of a multi-worker run
    per_example: bool  # every worker reads every file and keeps one clip in worker_count
    feature_cache: Path | None  # features read from this file (kser.feature_cache), not computed
    speakers: tuple[str, ...]  # appended speaker one-hot over these names; () for none
    speaker_statistics: Any | None  # kser.speaker_norm.SpeakerStatistics: per-speaker feature normalisation

    @property
    def reads_speakers(self) -> bool:
        """Whether a clip's speaker travels with it past parsing (speaker targets or statistics)."""
        return bool(self.speakers) or self.speaker_statistics is not None

    @property
    def endless(self) -> bool:
        """A multi-worker training dataset: full batches from a stream spanning passes."""
        return self.worker_count > 1


def check_options(balance: str, output: str) -> None:
    """The choices every input pipeline takes; KserError naming the bad one."""
    if balance not in BALANCE_MODES:
        raise KserError(f"unknown balance mode {balance!r}; choose one of {', '.join(BALANCE_MODES)}")
    if output not in OUTPUTS:
        raise KserError(f"unknown output {output!r}; choose one of {', '.join(OUTPUTS)}")


def plan_inputs(
    records_dir: str | Path, split: Any, options: InputOptions, warn: Callable[[str], None] | None = None
) -> InputPlan:
    """The plan of ``split`` (a split name or :class:`kser.data.Subset`) under ``options``.
    ``warn`` is told once when a worker has to read every file (fewer files than workers)."""
    from kser.data import Subset, class_weights, oversampling_factors, shard_paths
    from kser.records_info import read_records_info

    check_options(options.balance, options.output)
    records_dir = Path(records_dir)
    records = read_records_info(records_dir)
    subset = Subset.of(split)
    training = subset.splits == ("train",) if options.training is None else options.training
    if training and options.mixup_alpha > 0 and not options.one_hot:
        raise KserError("mixup needs one-hot labels")
    if options.speakers and not options.one_hot:
        raise KserError("speaker targets are appended to one-hot labels")
    if options.speaker_statistics is not None and options.feature_cache is not None:
        raise KserError("speaker normalisation acts on the features a front end computes, not on a feature cache")
    shards = shard_paths(records_dir, records, subset)
    index, count = options.worker if training else (0, 1)
    per_example = False
    if count > 1:
        mine = worker_files(shards, count, index)
        per_example = mine is None
        if per_example and warn is not None:
            warn(
                f"{subset.label} has {len(shards)} shard file(s) for {count} workers: every worker reads them all and "
                f"keeps one clip in {count} (rebuild with kser build-records --min_shards={count} to read less)"
            )
        shards = shards if per_example else mine
    balance = options.balance if training else "none"
    stages: tuple[tuple[Any, bool], ...] = ()
    if options.feature_cache is not None:
        if options.output != "features":
            raise KserError("a feature cache gives features; it cannot give waveforms")
        if training and options.augment is not None and options.augment.active:
            raise KserError("augmentation changes a clip's features every epoch, which a feature cache cannot hold")
    elif options.output == "features":
        from kser.audio_frontend import front_end_for
        from kser.frontend import training_front_end

        front_end = options.front_end if options.front_end is not None else front_end_for(records.audio)
        stages = tuple(training_front_end(front_end, options.augment if training else None, options.seed).stages())
    return InputPlan(
        records_dir=records_dir,
        records=records,
        subset=subset,
        shards=tuple(shards),
        training=training,
        batch_size=options.batch_size,
        balance=balance,
        factors=oversampling_factors(records, subset) if balance == "oversample" else None,
        weights=class_weights(records, subset) if balance == "weights" else None,
        stages=stages,
        num_classes=len(records.label_names),
        one_hot=options.one_hot,
        mixup_alpha=options.mixup_alpha if training else 0.0,
        mixup_seed=derived_seed(options.seed, MIXUP_SEED_OFFSET),
        seed=options.seed,
        worker_index=index,
        worker_count=count,
        per_example=per_example,
        feature_cache=None if options.feature_cache is None else Path(options.feature_cache),
        speakers=tuple(options.speakers),
        speaker_statistics=options.speaker_statistics,
    )
