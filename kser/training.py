"""``kser train``: records -> a trained classifier in ``model_dir``, monitored in TensorBoard.

The saved ``model.keras`` takes waveforms: its AudioFrontEnd (kser.audio_frontend: the records'
sample rate, clip length and normalisation, and the feature settings) feeds the classifier
(``kser.models.build``, features [batch, frames, mels, 3] in). Where the front end runs while
training is a speed choice, not a modelling one: in the tf.data pipeline on a CPU, or in the
training model (with the augmentation layers around it) on a GPU. Either way the saved model is
the same function of the same waveforms.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import sys
from pathlib import Path
from typing import Any

from kser import model_dir as model_files
from kser.config import RECIPES, AugmentConfig, DistributionConfig, FeatureConfig, TrainConfig
from kser.data import BALANCE_MODES, Subset, speakers_of, split_size
from kser.distribution import Distribution
from kser.distribution import setup as setup_distribution
from kser.records_info import RecordsInfo, read_records_info
from kser.run_config import RUN_CONFIG_FILE, RunConfig, read_run_json, write_run_config
from kser.settings_diff import describe_differences
from kser.errors import KserError
from kser.inputs import make_inputs, tensorflow_installed
from kser.locks import folder_lock
from kser.output_dirs import check_writable, clear_own_entries, holds_entries, make_dir
from kser.quiet import tensorflow
from kser.records import MANIFEST_FILE, file_sha256

FEATURES_ON = ("auto", "pipeline", "model")
_BACKUP_DIR = "backup"


@dataclasses.dataclass(frozen=True)
class TrainResult:
    model_dir: Path
    epochs_run: int
    best_epoch: int
    best: dict[str, float]  # validation metrics at the best epoch ({} without validation clips)
    features_on: str
    parameters: int


def resolve_features_on(value: str, cacheable: bool = False) -> str:
    """'auto' -> 'model' when TensorFlow sees a GPU (features on the device), else 'pipeline'.

    Under another Keras backend (JAX, for multi-worker training) the feature and augmentation
    layers cannot run inside tf.data, so they are always in the model. A ``cacheable`` front end
    (a frozen pretrained encoder) gives 'cache' for 'auto' and 'pipeline': its outputs are
    computed once per clip (kser.feature_cache); 'model' runs it every step.
    """
    import keras

    from kser.frontend import features_can_run_in_tf_data

    if value not in FEATURES_ON:
        raise KserError(f"unknown --features_on {value!r}; choose one of {', '.join(FEATURES_ON)}")
    if cacheable:
        return "model" if value == "model" else "cache"
    if not features_can_run_in_tf_data():
        if value == "pipeline":
            raise KserError(f"--features_on=pipeline needs Keras's TensorFlow backend; under {keras.backend.backend()!r} features are computed in the model")
        return "model"
    if value != "auto":
        return value
    return "model" if tensorflow().config.list_physical_devices("GPU") else "pipeline"


def build_training_model(core: Any, front_end: Any, augment: AugmentConfig | None, seed: int | None, speaker_norm: bool = False) -> Any:
    """Waveforms -> the training front end (kser.frontend: augmentation around the model's
    AudioFrontEnd) -> core, sharing core's weights. ``speaker_norm``: the input is a waveform with
    its speaker's statistics packed after it (kser.speaker_norm.pack), applied after the front end,
    as the input pipelines do when they compute the features."""
    import keras

    from kser.frontend import training_front_end
    from kser.speaker_norm import normalize_features, unpack

    samples = front_end.clip_samples
    n_mels = front_end.output_feature_shape[1]
    inputs = keras.Input((samples + 2 * n_mels if speaker_norm else samples,), name="waveform")
    x, mean, sd = unpack(inputs, samples, n_mels) if speaker_norm else (inputs, None, None)
    for layer, random in training_front_end(front_end, augment, seed).stages():
        x = layer(x)
        if not random and speaker_norm:
            x = normalize_features(x, mean, sd)
    return keras.Model(inputs, core(x), name=f"{core.name}_on_waveforms")


TRAINING_ENTRIES = frozenset(
    {
        model_files.MODEL_FILE, model_files.INFO_FILE, model_files.HISTORY_FILE, RUN_CONFIG_FILE,
        model_files.LOGS_DIR, _BACKUP_DIR, model_files.CHECKPOINTS_DIR, model_files.EVAL_DIR,
    }
)


def is_training_entry(path: Path) -> bool:
    """Whether ``path``, in a model directory, is something ``kser train`` writes."""
    temp_model = path.name.startswith(".") and path.suffix == ".keras"  # a killed run's save_atomically
    return path.name in TRAINING_ENTRIES or temp_model


def _prepare_model_dir(model_dir: Path, run: RunConfig, overwrite: bool, distribution: Distribution) -> None:
    """Fresh, resumable (same run, backup present) or refused; --overwrite clears kser's files.
    Every worker of a multi-worker run decides; only the chief writes."""

    def must_start() -> bool:
        previous = read_run_json(model_dir)
        finished = (model_dir / model_files.INFO_FILE).is_file()
        if previous == run.to_json() and not finished and not overwrite:
            return False  # same command again: BackupAndRestore resumes from model_dir/backup
        if holds_entries(model_dir) and not overwrite:
            reason = (
                "a finished training run" if finished
                else f"a training run with other settings ({describe_differences(previous, run.to_json())})" if previous
                else "other files"
            )
            raise KserError(f"model directory {model_dir} already holds {reason}; pass --overwrite to start again there")
        return True

    def start() -> None:
        make_dir(model_dir, "model directory")
        clear_own_entries(model_dir, is_training_entry)
        write_run_config(model_dir, run)

    distribution.prepare_shared("model directory", must_start, start)


def build_core(arch: str, num_classes: int, input_shape: tuple[int, int, int], options: dict[str, Any]) -> Any:
    """The architecture's model; a --model_options value of the wrong type is a one-line error
    (an unknown option is the registry's ValueError, which names the options there are)."""
    from kser.models import build

    try:
        return build(arch, num_classes=num_classes, input_shape=input_shape, **options)
    except TypeError as error:
        if not options:
            raise  # no user options involved: a genuine bug keeps its traceback
        raise KserError(f"--model_options {json.dumps(options)} do not suit {arch!r}: {error}") from None


def check_config(config: TrainConfig) -> None:
    """The checks of ``config`` that need neither the recipe nor TensorFlow; KserError on a bad value."""
    for name in ("batch_size", "decay_steps"):
        if getattr(config, name) < 1:
            raise KserError(f"{name} must be at least 1, got {getattr(config, name)}")
    if config.seed is not None and not 0 <= config.seed < 2**32:
        raise KserError(f"seed must be between 0 and 2**32 - 1, got {config.seed}")
    if profile_steps(config) and not tensorflow_installed():
        raise KserError("--profile_batches uses TensorFlow's profiler: pip install 'kser[tensorflow]'")
    if config.balance not in BALANCE_MODES:
        raise KserError(f"unknown balance mode {config.balance!r}; choose one of {', '.join(BALANCE_MODES)}")
    if not config.speaker_adversary >= 0:
        raise KserError(f"--speaker_adversary must be at least 0 (0: no speaker head), got {config.speaker_adversary}")
    from kser.architectures import PRESET_ARCHITECTURES

    if config.arch in PRESET_ARCHITECTURES and not config.preset:
        raise KserError(f"--arch={config.arch} needs --preset: a keras-hub preset name or a local preset folder")
    if config.preset and config.arch not in PRESET_ARCHITECTURES:
        raise KserError(f"--preset is for --arch={' or '.join(PRESET_ARCHITECTURES)}; --arch={config.arch} trains from scratch")


def profile_steps(config: TrainConfig) -> tuple[int, ...] | int:
    """``--profile_batches`` as TensorBoard wants it: (first, last) steps, or 0 for no profiling."""
    if not config.profile_batches:
        return 0
    try:
        steps = tuple(int(step) for step in config.profile_batches.split(","))
    except ValueError:
        steps = ()
    if len(steps) not in (1, 2) or min(steps) < 1 or steps != tuple(sorted(steps)):
        raise KserError(f"profile_batches must be a step or two ascending steps, e.g. 10,20; got {config.profile_batches!r}")
    return steps if len(steps) == 2 else steps[0]


def resolve_config(config: TrainConfig) -> TrainConfig:
    """``config`` with every recipe field set: from ``--recipe`` if named, else from the architecture's."""
    from kser.models import available_architectures, recipe

    if config.arch not in available_architectures():
        raise KserError(f"unknown architecture {config.arch!r}; choose one of {', '.join(available_architectures())}")
    if config.recipe is not None and config.recipe not in RECIPES:
        raise KserError(f"unknown recipe {config.recipe!r}; choose one of {', '.join(RECIPES)}")
    try:
        resolved = config.with_recipe(RECIPES[config.recipe] if config.recipe else recipe(config.arch))
    except ValueError as error:
        raise KserError(str(error)) from None
    message = warmup_warning(resolved)
    if message and not config.resolved:  # said where the recipe is resolved: a cross-validation once, not per fold
        _warn(message)
    return resolved


def warmup_warning(config: TrainConfig) -> str | None:
    """Why a resolved config would train only in its learning-rate warm-up, or None when it does not."""
    if config.schedule != "cosine" or not config.warmup_epochs or config.epochs > config.warmup_epochs:
        return None
    return (
        f"--epochs={config.epochs} is within the recipe's {config.warmup_epochs} warm-up epochs: the learning rate "
        "only ramps up and never decays; train more epochs (or lower --warmup_epochs)"
    )


def monitor_mode(monitor: str) -> str:
    """Loss is minimised; UAR maximised."""
    return "min" if monitor.endswith("loss") else "max"


def learning_rate_schedule(config: TrainConfig, steps_per_epoch: int) -> Any:
    """The resolved config's schedule: the study's staircase ExponentialDecay, or warm-up + cosine to 0."""
    import keras

    if config.schedule == "exponential":
        return keras.optimizers.schedules.ExponentialDecay(
            config.learning_rate, config.decay_steps, config.decay_rate, staircase=config.staircase
        )
    warmup = config.warmup_epochs * steps_per_epoch
    total = config.epochs * steps_per_epoch
    if warmup == 0:
        return keras.optimizers.schedules.CosineDecay(config.learning_rate, max(total, 1))
    # Linear warm-up from lr/warmup_steps to lr, then cosine decay to 0 over the remaining steps.
    return keras.optimizers.schedules.CosineDecay(
        config.learning_rate / warmup, max(total - warmup, 1), warmup_target=config.learning_rate, warmup_steps=warmup
    )


def compile_for_training(model: Any, config: TrainConfig, steps_per_epoch: int, num_classes: int | None = None) -> Any:
    """Optimizer (Adam, or AdamW when weight_decay > 0), loss and metrics of a resolved config.
    ``num_classes`` (default: the model's outputs): the emotions. With ``config.speaker_adversary``
    the model also outputs a speaker-adversarial head's probabilities after them (kser.adversary),
    and the loss and metrics are the adversary's.

    Returns the compiled :class:`kser.callbacks.UnweightedAverageRecall`, whose confusion matrix
    holds the latest validation pass at each epoch end (for ClassMetrics).
    """
    import keras

    from kser.callbacks import UnweightedAverageRecall

    schedule = learning_rate_schedule(config, steps_per_epoch)
    optimizer = (
        keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay)
        if config.weight_decay > 0
        else keras.optimizers.Adam(schedule)
    )
    num_classes = num_classes or model.output_shape[-1]
    adversarial = config.speaker_adversary > 0
    if adversarial != (model.output_shape[-1] > num_classes):
        raise ValueError(
            f"a model of {model.output_shape[-1]} outputs for {num_classes} emotions "
            f"{'lacks' if adversarial else 'has'} the speaker head that --speaker_adversary={config.speaker_adversary:g} implies"
        )
    uar = UnweightedAverageRecall(num_classes)
    if not adversarial:
        loss, accuracy = keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing), "accuracy"
    else:
        from kser.adversary import EmotionSpeakerLoss, emotion_accuracy

        loss, accuracy = EmotionSpeakerLoss(num_classes, config.label_smoothing), emotion_accuracy(num_classes)
    model.compile(optimizer=optimizer, loss=loss, metrics=[accuracy, uar])
    return uar


def _callbacks(
    model_dir: Path, uar: Any, label_names: list[str], config: TrainConfig, distribution: Distribution, validates: bool
) -> tuple[list[Any], Any]:
    """The run's callbacks, writing under ``model_dir`` (on workers other than the chief, a scratch copy).

    Without validation clips (``validates`` False) nothing can pick a best epoch: the run trains for
    ``config.epochs`` and keeps the last weights, so the schedule alone ends it.
    """
    import keras

    from kser.callbacks import AtomicBackupAndRestore, AtomicModelCheckpoint, ClassMetrics, StopOnNonFinite

    stop_on_non_finite = StopOnNonFinite(monitor=("loss", "val_loss"))
    profile = profile_steps(config)
    class_metrics, best_epoch = [], []
    if validates:
        # Every worker feeds the whole validation set, so each clip is counted once per worker.
        class_metrics = [
            # Scalars come once, from TensorBoard below (epoch_uar, epoch_recall_X); ClassMetrics adds the image.
            ClassMetrics(
                None, label_names, log_dir=model_dir / model_files.LOGS_DIR, write_scalars=False, confusion_metric=uar,
                passes=distribution.num_workers,
            )
        ]
        (model_dir / model_files.CHECKPOINTS_DIR).mkdir(parents=True, exist_ok=True)
        best_epoch = [
            keras.callbacks.EarlyStopping(
                monitor=config.monitor, mode=monitor_mode(config.monitor), patience=config.patience, restore_best_weights=True, verbose=1
            ),
            AtomicModelCheckpoint(
                str(model_dir / model_files.CHECKPOINTS_DIR / "best.weights.h5"),
                monitor=config.monitor,
                mode=monitor_mode(config.monitor),
                save_best_only=True,
                save_weights_only=True,
            ),
        ]
    backup = AtomicBackupAndRestore(model_dir / _BACKUP_DIR, warn=_warn if distribution.is_chief else None)
    model_files.trim_history(model_dir, backup.epochs_done())  # the epochs after the backup run again
    callbacks = [
        # ClassMetrics first, so that CSVLogger, TensorBoard and EarlyStopping see val_recall_* and val_macro_f1.
        *class_metrics,
        stop_on_non_finite,
        *best_epoch,
        keras.callbacks.CSVLogger(str(model_dir / model_files.HISTORY_FILE), append=True),
        tensorboard_callback(model_dir / model_files.LOGS_DIR, profile),
        # Last: an epoch counts as done for a resumed run only once everything above has logged it.
        backup,
    ]
    return callbacks, stop_on_non_finite


def tensorboard_callback(log_dir: Path, profile: tuple[int, ...] | int) -> Any:
    """Keras's TensorBoard callback (it can profile) where TensorFlow is installed; else
    kser's, which writes the same epoch charts without it."""
    import keras

    from kser.callbacks import EpochScalars

    if tensorflow_installed():
        return keras.callbacks.TensorBoard(str(log_dir), profile_batch=profile)
    return EpochScalars(log_dir)  # check_config refused --profile_batches here


def train(
    config: TrainConfig,
    records_dir: str | Path,
    model_dir: str | Path,
    *,
    overwrite: bool = False,
    features: FeatureConfig = FeatureConfig(),
    model_options: dict[str, Any] | None = None,
    train_on: str | Subset = "train",
    validate_on: str | Subset | None = "validation",
    verbose: int | str = "auto",
    distribution: DistributionConfig | Distribution = DistributionConfig(),
) -> TrainResult:
    """Train ``config.arch`` on the records' train split, early-stopping on validation loss.

    ``train_on``/``validate_on`` pick other clips of the same records (a :class:`kser.data.Subset`
    of splits and speakers); cross-validation trains each fold this way from one build.
    ``validate_on=None`` trains without validation clips: exactly ``config.epochs`` epochs, no
    early stopping, the last weights kept (for a recipe whose schedule, not a validation set, ends it).
    ``distribution`` spreads the run over devices or hosts (:mod:`kser.distribution`);
    ``config.batch_size`` is the global batch.
    """
    # Checks that need neither TensorFlow nor Keras come first: a plain mistake is reported in
    # well under a second instead of after their 7-9 s import.
    check_config(config)
    records_dir, model_dir = Path(records_dir), check_writable(model_dir, "model directory")
    records = read_records_info(records_dir)
    train_on = Subset.of(train_on)
    validate_on = None if validate_on is None else Subset.of(validate_on)
    for role, subset in (("train", train_on), ("validation", validate_on)):
        if subset is not None and split_size(records, subset) == 0:
            raise KserError(f"{records_dir} has no {role} clips ({subset.label}); rebuild the records with a {role} share")
    # Before Keras is imported: multi-worker training selects Keras's JAX backend.
    dist = distribution if isinstance(distribution, Distribution) else setup_distribution(distribution)
    dist.activate()
    local_batch = dist.local_batch_size(config.batch_size)
    # Held until the run ends, taken before the slow imports and before anything is written or
    # cleared there: a second run into the same folder is refused at once (kser.locks).
    with dist.chief_holds(lambda: folder_lock(model_dir, "model directory")):
        request = _Request(config, records_dir, model_dir, records, train_on, validate_on, dist, local_batch, overwrite, features, model_options or {})
        return _train_locked(request, verbose)


@dataclasses.dataclass
class _Session:
    """A training run set up and ready to fit: what :func:`_fit` and :func:`_save` need."""

    config: TrainConfig  # resolved
    features_on: str
    front_end: Any  # the saved model's AudioFrontEnd
    core: Any  # the classifier (features in)
    classifier: Any  # what the saved model holds after its front end: core, or SpeakerNormalization -> core
    model: Any  # what fit trains: core, or the training front end + core
    steps: int
    train_data: Any
    validation: Any
    callbacks: list[Any]
    stop_on_non_finite: Any


@dataclasses.dataclass(frozen=True)
class _Request:
    """A checked :func:`train` call: what :func:`_setup` builds a session from."""

    config: TrainConfig
    records_dir: Path
    model_dir: Path
    records: RecordsInfo
    train_on: Subset
    validate_on: Subset | None
    dist: Distribution
    local_batch: int
    overwrite: bool
    features: FeatureConfig
    model_options: dict[str, Any]


def _train_locked(request: _Request, verbose: int | str) -> TrainResult:
    """:func:`train` past its cheap checks, with the model directory locked: set up, fit, save."""
    import keras

    with request.dist.write_dir(request.model_dir) as write_dir:  # workers other than the chief: a scratch folder
        try:
            session = _setup(request, write_dir)
            history = _fit(session, write_dir, verbose)
        finally:
            keras.mixed_precision.set_global_policy("float32")
    return _save(session, history, request)


def _setup(request: _Request, write_dir: Path) -> _Session:
    """Resolve the recipe, seed, build and compile the model, prepare the model directory (only
    once all of that worked) and open the datasets and callbacks."""
    import keras

    from kser.audio_frontend import model_front_end

    records_dir, model_dir, records, dist = request.records_dir, request.model_dir, request.records, request.dist
    train_on, validate_on, features, model_options = request.train_on, request.validate_on, request.features, request.model_options
    label_names = list(records.label_names)
    config = resolve_config(request.config)
    front_end = model_front_end(config.arch, config.preset, records.audio, features)  # the records' rate, clip and normalisation
    features_on = resolve_features_on(config.features_on, front_end.cacheable)
    augment_config = config.augmentation if config.augment else None
    if features_on == "cache" and augment_config is not None and augment_config.active:
        raise KserError(
            f"--augment changes {config.arch}'s encoder input every epoch, which its feature cache cannot hold; "
            "pass --noaugment, or --features_on=model to run the encoder every step"
        )
    run = RunConfig(
        train=config,
        features=features,
        model_options=model_options,
        records_dir=str(records_dir.resolve()),
        label_names=tuple(label_names),
        train_on=train_on,
        validate_on=validate_on,
    )
    seed = dist.shared_seed(config.seed)  # the same initial weights on every worker
    if seed is not None:
        keras.utils.set_random_seed(seed)
    if config.deterministic and keras.backend.backend() == "tensorflow":
        tensorflow().config.experimental.enable_op_determinism()
    keras.mixed_precision.set_global_policy("mixed_float16" if config.mixed_precision else "float32")
    speakers = speakers_of(records, train_on) if config.speaker_adversary > 0 else ()
    with dist.scope():
        core = build_core(config.arch, len(label_names), front_end.output_feature_shape, model_options)
        trained = core  # what trains: core, or core beside a speaker-adversarial head (kser.adversary)
        if speakers:
            from kser.adversary import with_speaker_adversary

            try:
                trained = with_speaker_adversary(core, len(speakers), config.speaker_adversary)
            except ValueError as error:
                raise KserError(str(error)) from None
    speaker_statistics = _speaker_statistics(request, config, front_end)
    # Only now, with every setting checked and the model built, is anything written: a failed
    # command never leaves a train_config.json that would refuse its corrected retry.
    _prepare_model_dir(model_dir, run, request.overwrite, dist)
    if not dist.is_chief and (model_dir / _BACKUP_DIR).is_dir():  # resume from the chief's backup
        shutil.copytree(model_dir / _BACKUP_DIR, write_dir / _BACKUP_DIR)
    output = "waveforms" if features_on == "model" else "features"
    cache = None
    if features_on == "cache":
        from kser.feature_cache import cache_folder, ensure_cache

        cache = ensure_cache(cache_folder(records_dir), records_dir, front_end, _say if dist.is_chief else None)
    steps = math.ceil(split_size(records, train_on, config.balance) / config.batch_size)
    with dist.scope():
        model = (
            build_training_model(trained, front_end, augment_config, seed, speaker_norm=speaker_statistics is not None)
            if features_on == "model"
            else trained
        )
        uar = compile_for_training(model, config, steps, num_classes=len(label_names))
    common = dict(
        batch_size=request.local_batch, front_end=front_end, output=output, feature_cache=cache, speakers=speakers,
        speaker_statistics=speaker_statistics,
    )
    train_data = make_inputs(
        records_dir,
        train_on,
        steps=steps,
        training=True,
        balance=config.balance,
        augment=augment_config if output == "features" else None,
        mixup_alpha=config.mixup_alpha,
        seed=dist.data_seed(seed),
        worker=dist.share,
        warn=_warn if dist.is_chief else None,
        **common,
    )
    # Every worker reads the whole validation set: the metrics are then exactly one process's.
    validation = None if validate_on is None else make_inputs(records_dir, validate_on, training=False, seed=seed, **common)
    callbacks, stop_on_non_finite = _callbacks(write_dir, uar, label_names, config, dist, validate_on is not None)
    classifier = core
    if speaker_statistics is not None:
        from kser.speaker_norm import with_speaker_normalization

        classifier = with_speaker_normalization(core, speaker_statistics)
    return _Session(config, features_on, front_end, core, classifier, model, steps, train_data, validation, callbacks, stop_on_non_finite)


def _speaker_statistics(request: _Request, config: TrainConfig, front_end: Any) -> Any:
    """With ``--speaker_norm``: the log-mel statistics of every training and validation speaker
    (kser.speaker_norm) through the model's log-mel front end; else None."""
    if not config.speaker_norm:
        return None
    from kser.audio_frontend import AudioFrontEnd
    from kser.speaker_norm import measure

    if not isinstance(front_end, AudioFrontEnd):
        raise KserError(f"--speaker_norm normalises log-mel features; --arch={config.arch} uses its pretrained encoder's own")
    subsets = [request.train_on] + ([request.validate_on] if request.validate_on is not None else [])
    statistics = measure(request.records_dir, subsets, front_end, fallback_subset=request.train_on)
    _say(f"speaker normalisation: statistics of {len(statistics.names)} speaker(s), the rest fall back to the training clips'")
    return statistics


def _fit(session: _Session, write_dir: Path, verbose: int | str) -> Any:
    """Train, then save the waveform model (front end + classifier) atomically; Keras's History."""
    from kser.audio_frontend import waveform_classifier
    from kser.callbacks import save_atomically

    history = session.model.fit(
        session.train_data, validation_data=session.validation, epochs=session.config.epochs, steps_per_epoch=session.steps,
        callbacks=session.callbacks, shuffle=False, verbose=verbose,
    )
    if session.stop_on_non_finite.stopped:
        raise KserError(f"training stopped: {session.stop_on_non_finite.message}; try a lower --learning_rate")
    save_atomically(waveform_classifier(session.front_end, session.classifier), write_dir / model_files.MODEL_FILE)
    return history


def _save(session: _Session, history: Any, request: _Request) -> TrainResult:
    """The run's result; on the chief, kser_model.json beside model.keras and the backup removed."""
    config, model_dir, records_dir, records, dist = session.config, request.model_dir, request.records_dir, request.records, request.dist
    from kser.speaker_norm import MIN_CLIPS as SPEAKER_NORM_MIN_CLIPS

    monitor = config.monitor if request.validate_on is not None else None
    result = _result(model_dir, history.history, session.features_on, session.core.count_params(), monitor)
    if not dist.is_chief:
        return result
    model_files.save_info(
        model_dir,
        model_files.ModelInfo(
            arch=config.arch,
            label_names=tuple(records.label_names),
            audio=records.audio,
            features=session.front_end.feature_config,  # what model.keras's front end holds (the records' rate)
            records_manifest_sha256=file_sha256(records_dir / MANIFEST_FILE),
            records_dir=str(records_dir.resolve()),
            # The run itself is in RUN_CONFIG_FILE, once; how it was spread is not part of it.
            extra={
                "features_on": session.features_on,
                "distribution": {"mode": dist.mode, "workers": dist.num_workers, "replicas": dist.replicas},
                "front_end": session.front_end.describe(),
                **({"speaker_norm": {"min_clips": SPEAKER_NORM_MIN_CLIPS}} if session.classifier is not session.core else {}),
            },
        ),
    )
    shutil.rmtree(model_dir / _BACKUP_DIR, ignore_errors=True)
    return result


def _warn(message: str) -> None:
    print(f"kser: warning: {message}", file=sys.stderr)


def _say(message: str) -> None:
    print(f"kser: {message}", file=sys.stderr)


def _result(model_dir: Path, history: dict[str, list[float]], features_on: str, parameters: int, monitor: str | None) -> TrainResult:
    """The run's outcome from Keras's history; ``monitor`` None: trained without validation clips,
    so the last epoch is the model."""
    if monitor is None:
        epochs = len(history.get("loss", []))
        return TrainResult(model_dir, epochs, epochs, {}, features_on, parameters)
    scores = history.get(monitor) or [math.nan]  # empty when a resumed run had no epoch left
    sign = 1.0 if monitor_mode(monitor) == "min" else -1.0
    best_epoch = min(range(len(scores)), key=lambda epoch: sign * scores[epoch])
    best = {key: float(values[best_epoch]) for key, values in history.items() if key.startswith("val_") and len(values) > best_epoch}
    return TrainResult(model_dir, len(scores), best_epoch + 1, best, features_on, parameters)
