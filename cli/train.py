"""``kser train``: train a model on a records directory, streaming metrics to TensorBoard.

Each architecture trains with its registered recipe unless a flag says otherwise. The study's
architectures use the study's: Adam with ExponentialDecay (1e-4, 1000 steps, 0.95, staircase) for
gru/lstm/attn_pool and (5e-4, 0.9) plus augmentation for lstm_ft, categorical cross-entropy,
batch 32, up to 50 epochs, early stopping on validation loss (patience 15, best weights
restored), random oversampling of the training split only. Rerunning a killed run's command
resumes it (from epoch 1, after a one-line warning, when its backup is damaged); --overwrite
always starts again.
"""

from __future__ import annotations

from kser_cli import training_flags
from kser_cli.common import fit_verbosity, reports_errors
from kser.errors import KserError

FLAG_MODULES = (training_flags,)
FLAGS = training_flags.FLAGS


@reports_errors(writes_to="model_dir")
def main(argv: list[str]) -> None:
    from kser.training import train

    config = training_flags.train_config()
    try:
        result = train(
            config,
            FLAGS.records_dir,
            FLAGS.model_dir,
            overwrite=FLAGS.overwrite,
            validate_on="validation" if FLAGS.validate else None,
            model_options=training_flags.model_options(),
            features=training_flags.feature_config(),
            distribution=training_flags.distribution_config(),
            verbose=fit_verbosity(),
        )
    except ValueError as error:  # builder option errors name the bad option
        raise KserError(str(error)) from None
    best = result.best
    trained = f"{config.arch} ({result.parameters:,} parameters, features in the {result.features_on}): {result.epochs_run} epochs"
    if not FLAGS.validate:
        print(f"{trained}, no validation clips: the last epoch's weights kept")
    else:
        print(
            f"{trained}, best epoch {result.best_epoch}: "
            f"val_loss {best.get('val_loss', float('nan')):.4f}  val_accuracy {best.get('val_accuracy', float('nan')):.4f}  "
            f"val_uar {best.get('val_uar', float('nan')):.4f}"
        )
    print(f"model: {result.model_dir}/model.keras   TensorBoard: tensorboard --logdir {result.model_dir}/logs")
