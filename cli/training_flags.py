"""The training flags shared by ``kser train`` and ``kser cross-validate``, defined once."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from absl import flags

from kser.config import AUGMENT_PITCH_METHODS, MONITORS, RECIPES, SCHEDULES, AugmentConfig, DistributionConfig, FeatureConfig, TrainConfig
from kser.distribution import MODES as DISTRIBUTION_MODES
from kser.data import BALANCE_MODES
from kser.errors import KserError
from kser.architectures import builtin_architectures
from kser.training import FEATURES_ON

_DEFAULTS = TrainConfig()

flags.DEFINE_enum("arch", _DEFAULTS.arch, builtin_architectures(), "Model architecture (see kser.models).")
flags.DEFINE_string("records_dir", None, "Output of kser build-records.", required=True)
flags.DEFINE_string("model_dir", None, "Where the model, logs, checkpoints and history go.", required=True)
_RECIPE = " (default: the recipe's)"

flags.DEFINE_enum("recipe", None, list(RECIPES), "Named training recipe (kser.config.RECIPES); default: the architecture's own (study: the study's models 1/2, study_ft: model 3, kser: the recommended).")
flags.DEFINE_integer("epochs", None, "Maximum number of epochs" + _RECIPE + ".")
flags.DEFINE_integer("batch_size", _DEFAULTS.batch_size, "Batch size.")
flags.DEFINE_enum("balance", _DEFAULTS.balance, list(BALANCE_MODES), "Class rebalancing of the training split.")
flags.DEFINE_float("learning_rate", None, "Initial (peak) learning rate" + _RECIPE + ".")
flags.DEFINE_enum("schedule", None, list(SCHEDULES), "exponential: the study's staircase ExponentialDecay; cosine: warm-up then cosine decay to 0" + _RECIPE + ".")
flags.DEFINE_float("decay_rate", None, "ExponentialDecay rate per decay_steps" + _RECIPE + ".")
flags.DEFINE_integer("decay_steps", _DEFAULTS.decay_steps, "ExponentialDecay steps.")
flags.DEFINE_integer("warmup_epochs", None, "cosine schedule: linear warm-up epochs" + _RECIPE + ".")
flags.DEFINE_float("weight_decay", None, "> 0: AdamW with this decoupled weight decay; 0: Adam" + _RECIPE + ".")
flags.DEFINE_float("label_smoothing", None, "Label smoothing of the cross-entropy" + _RECIPE + ".")
flags.DEFINE_float("mixup_alpha", None, "> 0: mixup of training batches, lambda ~ Beta(alpha, alpha)" + _RECIPE + ".")
flags.DEFINE_integer("patience", None, "Early-stopping patience in epochs" + _RECIPE + ".")
flags.DEFINE_enum("monitor", None, list(MONITORS), "What early stopping and the best checkpoint watch" + _RECIPE + ".")
flags.DEFINE_boolean("augment", None, "On-the-fly augmentation of the training split" + _RECIPE + ".")
flags.DEFINE_enum("pitch_method", None, list(AUGMENT_PITCH_METHODS), "Pitch-shift augmentation: vocoder keeps the duration, resample changes the speed too" + _RECIPE + ".")
flags.DEFINE_float("reverb_prob", None, "Share of training clips put in a simulated room (reverberation)" + _RECIPE + ".")
flags.DEFINE_float("channel_prob", None, "Share of training clips passed through a random channel (band limit, tilt)" + _RECIPE + ".")
flags.DEFINE_float("codec_prob", None, "Share of training clips passed through a codec (mu-law, 4-8 bits)" + _RECIPE + ".")
flags.DEFINE_float("crop_prob", None, "Share of training clips shortened to a random 1-3 s stretch, padded as the record builder pads a shorter recording" + _RECIPE + ".")
flags.DEFINE_float("babble_prob", None, "Share of training clips mixed with other clips of the batch (babble, 5-20 dB SNR)" + _RECIPE + ".")
flags.DEFINE_boolean("validate", True, "--novalidate: no validation clips (cross-validate: the validation fold's speakers train too); exactly --epochs epochs, no early stopping, the last weights kept.")
flags.DEFINE_enum("features_on", _DEFAULTS.features_on, list(FEATURES_ON), "Where features are computed; auto = model on a GPU.")
flags.DEFINE_boolean("mixed_precision", False, "mixed_float16 compute (for GPUs).")
flags.DEFINE_integer("seed", None, "Seed for weights, shuffling, oversampling and augmentation.")
flags.DEFINE_boolean("deterministic", False, "Deterministic TensorFlow ops (slower; use with --seed).")
flags.DEFINE_string("profile_batches", "", "Profile these steps in TensorBoard, e.g. 10,20.")
flags.DEFINE_float("speaker_adversary", TrainConfig.speaker_adversary, "> 0: train with a speaker-identification head whose gradient is reversed with this scale, so the embedding forgets the speaker (kser.adversary); the saved model has no such head.")
flags.DEFINE_boolean("speaker_norm", TrainConfig.speaker_norm, "Normalise each speaker's log-mel to zero mean and unit sd per band, from the statistics of the speaker's clips (kser.speaker_norm); evaluate uses each test speaker's own, predict and the exports the training clips'.")
flags.DEFINE_string("preset", None, "--arch=whisper: a keras-hub Whisper preset, by name (downloaded; needs internet) or a local preset folder.")
flags.DEFINE_boolean("prosody", FeatureConfig.prosody, "Three more input channels computed in the model: energy, voicing and pitch relative to the clip's mean (kser.prosody).")
flags.DEFINE_string("model_options", "", 'Builder overrides as JSON, e.g. \'{"rnn_units": 64}\'.')
flags.DEFINE_boolean("overwrite", False, "Start again in model_dir, clearing what kser wrote there (also a resumable run with the same settings).")
flags.DEFINE_enum("distribution", DistributionConfig.mode, list(DISTRIBUTION_MODES), "Data-parallel training: mirrored = several devices of this host (tf.distribute), multi_worker = several hosts from TF_CONFIG (keras.distribution on JAX), auto = multi_worker with a cluster, mirrored with several GPUs. --batch_size is the global batch.")
flags.DEFINE_list("devices", [], "mirrored: the devices to use, e.g. GPU:0,GPU:1 (default: every GPU); CPU:0,CPU:1 splits the CPU for trying it out.")

FLAGS = flags.FLAGS


_AUGMENT_FLAGS = ("pitch_method", "reverb_prob", "channel_prob", "codec_prob", "babble_prob", "crop_prob")  # AugmentConfig fields with a flag


def _augmentation() -> AugmentConfig | None:
    """The recipe's augmentation unless a flag changes it."""
    changes = {name: FLAGS[name].value for name in _AUGMENT_FLAGS if FLAGS[name].value is not None}
    if not changes:
        return None
    from kser.models import recipe

    base = RECIPES[FLAGS.recipe] if FLAGS.recipe else recipe(FLAGS.arch)
    try:
        return dataclasses.replace(base.augmentation, **changes)
    except ValueError as error:  # a probability outside [0, 1]
        raise KserError(str(error)) from None


def train_config() -> TrainConfig:
    return TrainConfig(
        arch=FLAGS.arch,
        recipe=FLAGS.recipe,
        epochs=FLAGS.epochs,
        batch_size=FLAGS.batch_size,
        learning_rate=FLAGS.learning_rate,
        schedule=FLAGS.schedule,
        decay_steps=FLAGS.decay_steps,
        decay_rate=FLAGS.decay_rate,
        warmup_epochs=FLAGS.warmup_epochs,
        weight_decay=FLAGS.weight_decay,
        label_smoothing=FLAGS.label_smoothing,
        mixup_alpha=FLAGS.mixup_alpha,
        patience=FLAGS.patience,
        monitor=FLAGS.monitor,
        balance=FLAGS.balance,
        augment=FLAGS.augment,
        augmentation=_augmentation(),
        features_on=FLAGS.features_on,
        mixed_precision=FLAGS.mixed_precision,
        seed=FLAGS.seed,
        deterministic=FLAGS.deterministic,
        profile_batches=FLAGS.profile_batches,
        preset=_preset(FLAGS.preset),
        speaker_adversary=FLAGS.speaker_adversary,
        speaker_norm=FLAGS.speaker_norm,
    )


def _preset(value: str | None) -> str | None:
    """A local preset folder as an absolute path (a resumed or cross-validated run finds it from
    anywhere); a preset name as given."""
    if not value:
        return None
    local = Path(value).expanduser()
    return str(local.resolve()) if local.is_dir() else value


def feature_config() -> FeatureConfig:
    """The front end's features: the reference's, plus the prosody channels when asked."""
    return FeatureConfig(prosody=FLAGS.prosody)


def model_options() -> dict:
    if not FLAGS.model_options:
        return {}
    try:
        options = json.loads(FLAGS.model_options)
    except ValueError as error:
        raise KserError(f"--model_options is not valid JSON: {error}") from None
    if not isinstance(options, dict):
        raise KserError("--model_options must be a JSON object")
    return options


def distribution_config() -> DistributionConfig:
    return DistributionConfig(mode=FLAGS.distribution, devices=tuple(FLAGS.devices))
