"""``kser cross-validate``: speaker k-fold cross-validation from one records build.

Takes every ``kser train`` flag. Speakers are dealt into --folds folds stratified by emotion; fold
k is the test set, fold k+1 validation, the rest train (--novalidate: fold k+1 trains too). Each fold's run lives in MODEL_DIR/fold-k
(TensorBoard logs, history, eval/); MODEL_DIR/cv_report.json holds per-fold and mean ± sd accuracy,
UAR and macro F1 and the pooled confusion matrix. Rerunning the same command resumes.
"""

from __future__ import annotations

import shlex
import sys

from absl import flags

from kser_cli import training_flags
from kser_cli.common import fit_verbosity, reports_errors
from kser.config import CrossValidationConfig
from kser.errors import KserError

_CV = CrossValidationConfig()

flags.DEFINE_integer("folds", _CV.folds, "Number of speaker folds (each speaker is tested exactly once).")
flags.DEFINE_integer("fold_seed", _CV.seed, "Seed that deals speakers into folds.")
flags.DEFINE_integer("max_folds", _CV.max_folds, "Run only the first N folds of --folds (for slow models); default: all.")
flags.DEFINE_list("cross_corpus", [], "Records directories of other corpora (kser build-records --split=none) on which every fold model is also scored: cross_corpus in cv_report.json, each model alone and their average. Adding it to a finished run scores without training.")
flags.DEFINE_integer("parallel_folds", 1, "Train this many folds at once, each in its own process with its output in MODEL_DIR/fold-K.log (several small models keep one GPU busy; under JAX each takes an equal share of 70% of its memory). Same folds, seeds and results as one at a time.")

FLAG_MODULES = (training_flags,)
FLAGS = training_flags.FLAGS


@reports_errors(writes_to="model_dir")
def main(argv: list[str]) -> None:
    from kser.cross_validation import CV_REPORT_FILE, cross_validate, summary

    command = "kser cross-validate " + " ".join(shlex.quote(arg) for arg in sys.argv[2:])
    try:
        report = cross_validate(
            training_flags.train_config(),
            FLAGS.records_dir,
            FLAGS.model_dir,
            CrossValidationConfig(folds=FLAGS.folds, seed=FLAGS.fold_seed, max_folds=FLAGS.max_folds, validate=FLAGS.validate),
            model_options=training_flags.model_options(),
            features=training_flags.feature_config(),
            distribution=training_flags.distribution_config(),
            command=command,
            overwrite=FLAGS.overwrite,
            verbose=fit_verbosity(),
            log=lambda line: print(line, flush=True),
            parallel_folds=FLAGS.parallel_folds,
            cross_corpus=FLAGS.cross_corpus,
        )
    except ValueError as error:  # builder option errors name the bad option
        raise KserError(str(error)) from None
    print(summary(report))
    print(f"report: {FLAGS.model_dir}/{CV_REPORT_FILE} (+ confusion_matrix.png, fold-*/eval/)")
