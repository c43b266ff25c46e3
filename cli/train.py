"""``kser train``: train a model on a records directory, streaming metrics to TensorBoard.

Defaults are the study's: Adam with ExponentialDecay (1e-4, 1000 steps, 0.95, staircase) for
gru/lstm/attn_pool and (5e-4, 0.9) for lstm_ft, categorical cross-entropy, batch 32, up to 50
epochs, early stopping on validation loss (patience 15, best weights restored), random
oversampling of the training split only. Rerunning a killed run's command resumes it.
"""

from __future__ import annotations

import json
import sys

from absl import flags

from cli.common import reports_errors
from kser.config import AugmentConfig, TrainConfig
from kser.data import BALANCE_MODES
from kser.errors import KserError
from kser.models import available_architectures
from kser.training import FEATURES_ON

_DEFAULTS = TrainConfig()

flags.DEFINE_enum("arch", _DEFAULTS.arch, available_architectures(), "Model architecture (see kser.models).")
flags.DEFINE_string("records_dir", None, "Output of kser build-records.", required=True)
flags.DEFINE_string("model_dir", None, "Where the model, logs, checkpoints and history go.", required=True)
flags.DEFINE_integer("epochs", _DEFAULTS.epochs, "Maximum number of epochs.")
flags.DEFINE_integer("batch_size", _DEFAULTS.batch_size, "Batch size.")
flags.DEFINE_enum("balance", _DEFAULTS.balance, list(BALANCE_MODES), "Class rebalancing of the training split.")
flags.DEFINE_float("learning_rate", None, "Initial learning rate (default: the architecture's).")
flags.DEFINE_float("decay_rate", None, "ExponentialDecay rate per decay_steps (default: the architecture's).")
flags.DEFINE_integer("decay_steps", _DEFAULTS.decay_steps, "ExponentialDecay steps.")
flags.DEFINE_integer("patience", _DEFAULTS.patience, "Early-stopping patience in epochs (validation loss).")
flags.DEFINE_boolean("augment", None, "On-the-fly augmentation (default: on for lstm_ft only).")
flags.DEFINE_enum("pitch_method", AugmentConfig().pitch_method, ["vocoder", "resample"], "Pitch-shift augmentation method.")
flags.DEFINE_enum("features_on", _DEFAULTS.features_on, list(FEATURES_ON), "Where features are computed; auto = model on a GPU.")
flags.DEFINE_boolean("mixed_precision", False, "mixed_float16 compute (for GPUs).")
flags.DEFINE_integer("seed", None, "Seed for weights, shuffling, oversampling and augmentation.")
flags.DEFINE_boolean("deterministic", False, "Deterministic TensorFlow ops (slower; use with --seed).")
flags.DEFINE_string("profile_batches", "", "Profile these steps in TensorBoard, e.g. 10,20.")
flags.DEFINE_string("model_options", "", 'Builder overrides as JSON, e.g. \'{"rnn_units": 64}\'.')
flags.DEFINE_boolean("overwrite", False, "Start again in a model_dir that holds another run.")

FLAGS = flags.FLAGS


def _model_options() -> dict:
    if not FLAGS.model_options:
        return {}
    try:
        options = json.loads(FLAGS.model_options)
    except ValueError as error:
        raise KserError(f"--model_options is not valid JSON: {error}") from None
    if not isinstance(options, dict):
        raise KserError("--model_options must be a JSON object")
    return options


@reports_errors
def main(argv: list[str]) -> None:
    from kser.training import train

    config = TrainConfig(
        arch=FLAGS.arch,
        epochs=FLAGS.epochs,
        batch_size=FLAGS.batch_size,
        learning_rate=FLAGS.learning_rate,
        decay_steps=FLAGS.decay_steps,
        decay_rate=FLAGS.decay_rate,
        patience=FLAGS.patience,
        balance=FLAGS.balance,
        augment=FLAGS.augment,
        features_on=FLAGS.features_on,
        mixed_precision=FLAGS.mixed_precision,
        seed=FLAGS.seed,
        deterministic=FLAGS.deterministic,
        profile_batches=FLAGS.profile_batches,
    )
    try:
        options = _model_options()
        result = train(
            config,
            FLAGS.records_dir,
            FLAGS.model_dir,
            overwrite=FLAGS.overwrite,
            augment=AugmentConfig(pitch_method=FLAGS.pitch_method),
            model_options=options,
            verbose=1 if sys.stdout.isatty() else 2,  # one line per epoch in logs
        )
    except ValueError as error:  # builder option errors name the bad option
        raise KserError(str(error)) from None
    best = result.best
    print(
        f"{config.arch} ({result.parameters:,} parameters, features in the {result.features_on}): "
        f"{result.epochs_run} epochs, best epoch {result.best_epoch}: "
        f"val_loss {best.get('val_loss', float('nan')):.4f}  val_accuracy {best.get('val_accuracy', float('nan')):.4f}  "
        f"val_uar {best.get('val_uar', float('nan')):.4f}"
    )
    print(f"model: {result.model_dir}/model.keras   TensorBoard: tensorboard --logdir {result.model_dir}/logs")
