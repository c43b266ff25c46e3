"""Speaker k-fold cross-validation from one records build: ``kser cross-validate``.

Why: with a corpus of a few dozen speakers, one speaker-disjoint split puts 2-3 speakers in the
test set, and its accuracy swings by several points with the luck of who they are. Speech emotion
papers report speaker k-fold cross-validation instead; so does kser, as mean +- sd over folds.

How: the records are built once (any split, ``--split=none`` included) and every clip of every
split is pooled. Speakers are dealt into K folds stratified by emotion (:func:`kser.splits.speaker_folds`,
from the per-speaker counts in the manifest, so no pass over the audio). Fold k is the test set,
fold k+1 (mod K) validation, the rest train; each fold's datasets filter the same shards by speaker.

    model_dir/
      cv_config.json        what defines the run; a rerun with the same settings resumes
      fold-0/ ... fold-K-1/ a kser train model directory each (logs/, history.csv, eval/) plus cv_fold.json
      cv_report.json        per-fold and mean +- sd accuracy, UAR, macro F1; pooled confusion matrix
      confusion_matrix.png  the pooled confusion matrix

A fold is finished when its ``cv_fold.json`` exists; an interrupted run resumes with the next fold
(and, inside a fold, from its training backup).
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

import kser
from kser import model_dir as model_files
from kser.atomic import write_json
from kser.config import CrossValidationConfig, DistributionConfig, FeatureConfig, TrainConfig, omit_added_later, to_dict
from kser.distribution import Distribution
from kser.distribution import setup as setup_distribution
from kser.data import Subset, speaker_class_counts
from kser.records_info import RecordsInfo, read_records_info
from kser.errors import KserError
from kser.locks import folder_lock
from kser.output_dirs import check_writable, clear_own_entries, holds_entries, make_dir, refuse_foreign_entries
from kser.run_config import read_run_config
from kser.settings_diff import describe_differences
from kser.metrics import metrics_from_confusion
from kser.records import MANIFEST_FILE, file_sha256
from kser.splits import SPLITS, speaker_folds

CV_CONFIG_FILE = "cv_config.json"
CV_REPORT_FILE = "cv_report.json"
FOLD_FILE = "cv_fold.json"
# Settings added after cross-validations existed, stored only when not at their default so that those still resume.
_ADDED_LATER = {"validate": True}
CONFUSION_MATRIX_FILE = "confusion_matrix.png"
HEADLINE_METRICS = ("accuracy", "uar", "macro_f1")


@dataclasses.dataclass(frozen=True)
class Fold:
    """Who is in which role for one fold."""

    index: int
    train: tuple[str, ...]
    validation: tuple[str, ...]
    test: tuple[str, ...]

    def subset(self, role: str) -> Subset:
        return Subset(SPLITS, frozenset(getattr(self, role)), name=f"fold {self.index} {role}")


def make_folds(fold_speakers: list[list[str]], validate: bool = True) -> list[Fold]:
    """Fold k tests on group k, validates on group k+1 (mod K) and trains on the rest.

    Without ``validate`` there is no validation group: everything but group k trains.
    """
    count = len(fold_speakers)
    folds = []
    for k in range(count):
        validation = (k + 1) % count if validate else None
        train = sorted(s for j, group in enumerate(fold_speakers) if j not in (k, validation) for s in group)
        validators = () if validation is None else tuple(fold_speakers[validation])
        folds.append(Fold(k, tuple(train), validators, tuple(fold_speakers[k])))
    return folds


def fold_dir(model_dir: Path, index: int) -> Path:
    return model_dir / f"fold-{index}"


def mean_sd(values: list[float]) -> dict[str, float | None]:
    """Mean and sample standard deviation (ddof=1). The sample sd of one value is undefined, so
    it is None (null in JSON): a 0 would claim that one fold measured its spread exactly."""
    array = np.asarray(values, dtype=np.float64)
    return {"mean": float(array.mean()), "sd": float(array.std(ddof=1)) if array.size > 1 else None}


def format_mean_sd(value: dict[str, float | None], digits: int = 4, scale: float = 1.0) -> str:
    """``mean ± sd`` of a :func:`mean_sd` result (times ``scale``); the mean alone when sd is None."""
    mean = f"{scale * value['mean']:.{digits}f}"
    return mean if value["sd"] is None else f"{mean} ± {scale * value['sd']:.{digits}f}"


def _prepare(model_dir: Path, definition: dict[str, Any], overwrite: bool, distribution: Distribution) -> None:
    """Fresh, resumable (same definition) or refused; --overwrite clears kser's cross-validation files.
    Every worker of a multi-worker run decides; only the chief writes."""

    def must_start() -> bool:
        config_file = model_dir / CV_CONFIG_FILE
        previous = json.loads(config_file.read_text()) if config_file.is_file() else None
        if previous is not None and _same_folds(previous, definition) and not overwrite:
            return False  # the same command again (or more folds of it): resume with the next unfinished fold
        if holds_entries(model_dir) and not overwrite:
            reason = (
                f"a cross-validation with other settings ({describe_differences(previous, definition)})"
                if previous is not None else "other files"
            )
            raise KserError(f"model directory {model_dir} already holds {reason}; pass --overwrite to start again there")
        return True

    distribution.prepare_shared("cross-validation directory", must_start, lambda: _start(model_dir, definition))
    if distribution.is_chief and json.loads((model_dir / CV_CONFIG_FILE).read_text()) != definition:
        write_json(model_dir / CV_CONFIG_FILE, definition)  # --max_folds changed: the file says what runs now


def _same_folds(previous: dict[str, Any], definition: dict[str, Any]) -> bool:
    """Whether two definitions differ at most in how many of the same folds they run (``--max_folds``):
    a screen on 3 folds extended to all 6 keeps its finished folds, since fold k is the same either way."""

    def without_fold_count(run: dict[str, Any]) -> dict[str, Any]:
        run = dict(run, cross_validation=dict(run.get("cross_validation", {})))
        run["cross_validation"].pop("max_folds", None)
        run.pop("folds", None)
        return run

    before, now = previous.get("folds", []), definition.get("folds", [])
    shared = min(len(before), len(now))
    return without_fold_count(previous) == without_fold_count(definition) and before[:shared] == now[:shared]


def _start(model_dir: Path, definition: dict[str, Any]) -> None:
    """A fresh cross-validation directory: kser's old files cleared (fold folders only if all theirs)."""
    from kser.training import is_training_entry

    make_dir(model_dir, "model directory")
    for path in model_dir.iterdir():  # fold folders first: clearing the top removes them whole
        if _FOLD_NAME.fullmatch(path.name) and path.is_dir() and not path.is_symlink():
            refuse_foreign_entries(path, lambda entry: is_training_entry(entry) or entry.name == FOLD_FILE)
    clear_own_entries(model_dir, _is_cv_entry)
    write_json(model_dir / CV_CONFIG_FILE, definition)


_FOLD_NAME = re.compile(r"fold-\d+")


def _check_fold_run(directory: Path, config: TrainConfig, model_options: dict[str, Any]) -> None:
    """A fold trained (or being trained) with other settings than this cross-validation's is an
    error, not a result: its RunConfig is read back and compared."""
    run = read_run_config(directory)
    if run is None:
        return
    if run.train != config or dict(run.model_options) != model_options:
        differences = describe_differences(
            {"train": to_dict(run.train), "model_options": dict(run.model_options)},
            {"train": to_dict(config), "model_options": model_options},
        )
        raise KserError(
            f"{directory} was trained with other settings than this cross-validation asks for ({differences}); "
            "pass --overwrite to start the cross-validation again"
        )


def _is_cv_entry(path: Path) -> bool:
    """Whether ``path``, in a cross-validation directory, is something ``kser cross-validate`` writes."""
    if _FOLD_NAME.fullmatch(path.name):
        return path.is_dir() and not path.is_symlink()
    if path.suffix == ".log" and _FOLD_NAME.fullmatch(path.stem):  # a parallel fold's output
        return path.is_file()
    return path.name in (CV_CONFIG_FILE, CV_REPORT_FILE, CONFUSION_MATRIX_FILE)


def cross_validate(
    config: TrainConfig,
    records_dir: str | Path,
    model_dir: str | Path,
    cv: CrossValidationConfig = CrossValidationConfig(),
    *,
    features: FeatureConfig = FeatureConfig(),
    model_options: dict[str, Any] | None = None,
    command: str = "",
    overwrite: bool = False,
    verbose: int | str = "auto",
    log: Callable[[str], None] = print,
    distribution: DistributionConfig = DistributionConfig(),
    parallel_folds: int = 1,
    cross_corpus: Sequence[str | Path] = (),
) -> dict[str, Any]:
    """Train and test one model per fold; returns (and writes) ``cv_report.json``'s content.

    ``cross_corpus``: records directories of other corpora on which every fold model is also scored
    (kser.cross_corpus), under ``cross_corpus`` in the report; not part of the run's definition, so
    adding one to a finished run scores it without training anything.

    Under a multi-worker ``distribution`` every worker trains each fold together; the chief alone
    tests it and writes the reports. ``parallel_folds > 1`` trains that many folds at once, each in
    its own process (:func:`_run_folds_in_parallel`: several small models on one GPU); the folds,
    seeds and results are those of a sequential run.
    """
    from kser.training import check_config

    check_config(config)  # before the records, folds and (slow) Keras import: plain mistakes first
    records_dir, model_dir = Path(records_dir), check_writable(model_dir, "model directory")
    records = read_records_info(records_dir)
    dist = setup_distribution(distribution)  # before Keras is imported: multi_worker selects JAX
    if parallel_folds < 1:
        raise KserError(f"--parallel_folds must be at least 1, got {parallel_folds}")
    if parallel_folds > 1 and dist.mode != "none":
        raise KserError(f"--parallel_folds trains folds in separate processes on one machine; it does not combine with --distribution={dist.mode}")
    from kser.cross_corpus import check_corpus

    for corpus in cross_corpus:
        check_corpus(corpus, records)
    names = [Path(corpus).name for corpus in cross_corpus]
    if len(set(names)) < len(names):
        raise KserError(f"--cross_corpus names two records directories alike ({', '.join(names)}); the report keys them by folder name")
    folds = make_folds(speaker_folds(speaker_class_counts(records), cv.folds, cv.seed), cv.validate)
    if cv.max_folds is not None:
        if not 1 <= cv.max_folds <= cv.folds:
            raise KserError(f"--max_folds must be between 1 and --folds ({cv.folds}), got {cv.max_folds}")
        folds = folds[: cv.max_folds]
    # Held until the run ends, taken before the slow imports and before anything is written or
    # cleared: the folds are written only under model_dir (each fold's training locks its own too).
    with dist.chief_holds(lambda: folder_lock(model_dir, "model directory")):
        return _cross_validate_locked(
            config, records_dir, model_dir, records, cv, folds, dist,
            features=features, model_options=model_options, command=command, overwrite=overwrite, verbose=verbose, log=log,
            parallel_folds=parallel_folds, cross_corpus=cross_corpus,
        )


def _cross_validate_locked(
    config: TrainConfig,
    records_dir: Path,
    model_dir: Path,
    records: RecordsInfo,
    cv: CrossValidationConfig,
    folds: list[Fold],
    dist: Distribution,
    *,
    features: FeatureConfig,
    model_options: dict[str, Any] | None,
    command: str,
    overwrite: bool,
    verbose: int | str,
    log: Callable[[str], None],
    parallel_folds: int,
    cross_corpus: Sequence[str | Path],
) -> dict[str, Any]:
    """:func:`cross_validate` past its cheap checks, with the model directory locked."""
    from kser.training import resolve_config

    config = resolve_config(config)  # the definition records what is actually run
    base_seed = config.seed if config.seed is not None else cv.seed
    manifest_sha = file_sha256(records_dir / MANIFEST_FILE)
    definition = json.loads(
        json.dumps(
            {
                "cross_validation": omit_added_later(to_dict(cv), _ADDED_LATER),
                "train": to_dict(config),
                "features": to_dict(features),
                "model_options": model_options or {},
                "records_dir": str(records_dir.resolve()),
                "records_manifest_sha256": manifest_sha,
                "folds": [dataclasses.asdict(fold) for fold in folds],
            }
        )
    )
    # Built once before anything is written: a bad --model_options value fails here, so the
    # corrected command is not refused as "other settings" by a cv_config.json left behind.
    from kser.audio_frontend import model_front_end

    with dist.local():  # counted, not trained: no need for the workers to agree on its weights
        front_end = model_front_end(config.arch, config.preset, records.audio, features)
        model_cost = _model_cost(config.arch, len(records.label_names), front_end, model_options)
    _prepare(model_dir, definition, overwrite, dist)
    _cache_features(config, records_dir, front_end, dist, log)
    del front_end
    _clear_keras_state()

    runs = [_FoldRun(fold, dataclasses.replace(config, seed=base_seed + fold.index), fold_dir(model_dir, fold.index)) for fold in folds]
    for run in runs:
        _check_fold_run(run.directory, run.config, model_options or {})
    common = dict(records_dir=records_dir, features=features, model_options=model_options)
    results: dict[int, dict[str, Any]] = {}
    for run in runs:
        if (run.directory / FOLD_FILE).is_file():
            log(f"fold {run.fold.index}: already finished, kept")
            results[run.fold.index] = json.loads((run.directory / FOLD_FILE).read_text())
    pending = [run for run in runs if run.fold.index not in results]
    if parallel_folds > 1 and len(pending) > 1:
        results.update(_run_folds_in_parallel(pending, parallel_folds, cv.folds, log, **common))
    else:
        for run in pending:
            log(_start_line(run, cv.folds))
            results[run.fold.index] = result = _run_fold(run, dist, verbose=verbose, **common)
            if dist.is_chief:
                log(_fold_line(result))
    results = [results[run.fold.index] for run in runs]

    report = _report(results, records, definition, command)
    report["model"] = model_cost
    if not dist.is_chief:
        return report
    if cross_corpus:
        from kser.cross_corpus import score_fold_models

        report["cross_corpus"] = {
            Path(corpus).name: score_fold_models([run.directory for run in runs], corpus, log=log) for corpus in cross_corpus
        }
    write_json(model_dir / CV_REPORT_FILE, report)
    from kser.plots import confusion_matrix_png

    confusion_matrix_png(
        np.asarray(report["pooled"]["confusion_matrix"]),
        records.label_names,
        model_dir / CONFUSION_MATRIX_FILE,
        title=f"{config.arch}, {cv.folds}-fold speaker CV (pooled over {len(folds)} folds)",
    )
    return report


@dataclasses.dataclass(frozen=True)
class _FoldRun:
    """One fold to run: its speakers, its training settings (the fold's seed) and its folder."""

    fold: Fold
    config: TrainConfig
    directory: Path


def _run_fold(
    run: _FoldRun, dist: Distribution, *, records_dir: Path, features: FeatureConfig, model_options: dict[str, Any] | None,
    verbose: int | str,
) -> dict[str, Any]:
    """Train (or resume) one fold, test it on its speakers and write its ``cv_fold.json``."""
    from kser.evaluation import evaluate
    from kser.training import train

    fold, directory = run.fold, run.directory
    started = time.monotonic()
    if not (directory / model_files.INFO_FILE).is_file():  # not trained yet, or interrupted: train (resumes)
        train(
            run.config,
            records_dir,
            directory,
            features=features,
            model_options=model_options,
            train_on=fold.subset("train"),
            validate_on=fold.subset("validation") if fold.validation else None,
            verbose=verbose,
            distribution=dist,
        )
    if not dist.is_chief:  # the chief tests the fold and writes its result; wait for it
        dist.barrier(f"kser: fold {fold.index} tested")
        _clear_keras_state()
        return json.loads((directory / FOLD_FILE).read_text())
    with dist.local():
        report = evaluate(directory, records_dir, fold.subset("test"))
    result = {
        "fold": fold.index,
        "seed": run.config.seed,
        "speakers": {"train": list(fold.train), "validation": list(fold.validation), "test": list(fold.test)},
        "clips": report["clips"],
        **{name: report[name] for name in HEADLINE_METRICS},
        "recall": {name: row["recall"] for name, row in report["per_class"].items()},
        "confusion_matrix": report["confusion_matrix"],
        "epochs": _epochs(directory),
        "seconds": round(time.monotonic() - started, 1),
    }
    write_json(directory / FOLD_FILE, result)
    dist.barrier(f"kser: fold {fold.index} tested")
    _clear_keras_state()
    return result


def _start_line(run: _FoldRun, folds: int) -> str:
    fold = run.fold
    return f"fold {fold.index}/{folds}: test speakers {' '.join(fold.test)}, validation {' '.join(fold.validation) or 'none'}"


def _fold_line(result: dict[str, Any]) -> str:
    return (
        f"fold {result['fold']}: accuracy {result['accuracy']:.4f}  UAR {result['uar']:.4f}  "
        f"macro F1 {result['macro_f1']:.4f}  ({result['seconds']:.0f} s)"
    )


# Share of an accelerator's memory that parallel folds preallocate together under JAX; the rest is
# for each process's CUDA context and libraries (0.9 with 12 processes failed to create cuBLAS
# handles on an 80 GB H100).
PARALLEL_GPU_MEMORY = 0.7


def _run_folds_in_parallel(
    runs: list[_FoldRun], processes: int, folds: int, log: Callable[[str], None], **common: Any
) -> dict[int, dict[str, Any]]:
    """Each fold in a process of its own, ``processes`` at a time, its output in ``fold-k.log`` beside ``fold-k/``.

    Why processes: Keras keeps one model state per process, and several small models keep one GPU
    busier than one does. Under JAX each process preallocates an equal share of
    :data:`PARALLEL_GPU_MEMORY` (unless ``XLA_PYTHON_CLIENT_MEM_FRACTION`` is set). A fold that
    fails stops the run with its error; the finished folds are kept, so the same command resumes.
    """
    import concurrent.futures
    import multiprocessing
    import os

    os.environ.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", f"{PARALLEL_GPU_MEMORY / processes:.3f}")
    context = multiprocessing.get_context("spawn")
    results: dict[int, dict[str, Any]] = {}
    with concurrent.futures.ProcessPoolExecutor(min(processes, len(runs)), mp_context=context) as pool:
        futures = {}
        for run in runs:
            log(f"{_start_line(run, folds)}; started in its own process (log: {fold_log(run.directory.parent, run.fold.index)})")
            futures[pool.submit(_fold_process, run, common)] = run
        for future in concurrent.futures.as_completed(futures):
            try:
                result = future.result()
            except Exception:
                for other in futures:
                    other.cancel()
                raise
            results[result["fold"]] = result
            log(_fold_line(result))
    return results


def fold_log(model_dir: Path, index: int) -> Path:
    """Where a fold run in its own process writes its output (beside its folder, which train owns)."""
    return model_dir / f"fold-{index}.log"


def _fold_process(run: _FoldRun, common: dict[str, Any]) -> dict[str, Any]:
    """One fold in a spawned process. Its output, native libraries' included (hence file
    descriptors, not sys.stdout), goes to the fold's log, one line per epoch."""
    import os
    import sys

    with open(fold_log(run.directory.parent, run.fold.index), "a") as out:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(out.fileno(), 1)
        os.dup2(out.fileno(), 2)
        return _run_fold(run, Distribution(), verbose=2, **common)


def _model_cost(arch: str, num_classes: int, front_end: Any, options: dict[str, Any] | None) -> dict[str, Any]:
    """Parameters and FLOPs per clip of the cross-validated model (built, not trained)."""
    from kser.models import estimate_flops
    from kser.training import build_core

    model = build_core(arch, num_classes, front_end.output_feature_shape, options or {})
    cost = {"parameters": int(model.count_params()), "gflops_per_clip": round(estimate_flops(model) / 1e9, 4)}
    if hasattr(front_end, "macs"):  # a pretrained encoder: most of the compute, none of the trained parameters
        cost["front_end_gflops_per_clip"] = round(2 * front_end.macs() / 1e9, 4)
        cost["front_end_parameters"] = int(front_end.count_params())
    return cost


def _cache_features(config: TrainConfig, records_dir: Path, front_end: Any, dist: Distribution, log: Callable[[str], None]) -> None:
    """A frozen encoder's outputs computed once here, before any fold (parallel ones included)
    would compute them for itself; each fold's training then finds the cache."""
    from kser.training import resolve_features_on

    if not dist.is_chief or resolve_features_on(config.features_on, front_end.cacheable) != "cache":
        return
    from kser.feature_cache import cache_folder, ensure_cache

    ensure_cache(cache_folder(records_dir), records_dir, front_end, log)


def _epochs(directory: Path) -> int:
    from kser.evaluation import read_history

    history = read_history(directory)
    return len(next(iter(history.values()), []))


def _clear_keras_state() -> None:
    import keras

    keras.backend.clear_session()


def _report(results: list[dict[str, Any]], records: RecordsInfo, definition: dict[str, Any], command: str) -> dict[str, Any]:
    label_names = list(records.label_names)
    pooled = metrics_from_confusion(np.sum([np.asarray(r["confusion_matrix"]) for r in results], axis=0), label_names)
    return {
        "kser_version": kser.__version__,
        "command": command,
        "arch": definition["train"]["arch"],
        "folds": definition["cross_validation"]["folds"],
        "folds_run": len(results),
        "fold_seed": definition["cross_validation"]["seed"],
        "validation_fold": definition["cross_validation"].get("validate", True),
        "train_seeds": [r["seed"] for r in results],
        "records_dir": definition["records_dir"],
        "records_manifest_sha256": definition["records_manifest_sha256"],
        "label_names": label_names,
        "speakers": sum(len(r["speakers"]["test"]) for r in results),
        **{name: mean_sd([r[name] for r in results]) for name in HEADLINE_METRICS},
        "seconds_per_fold": mean_sd([r["seconds"] for r in results]),
        "per_fold": [{k: v for k, v in r.items() if k != "confusion_matrix"} for r in results],
        "pooled": {
            "accuracy": pooled["accuracy"],
            "uar": pooled["uar"],
            "macro_f1": pooled["macro_f1"],
            "recall": {name: row["recall"] for name, row in pooled["per_class"].items()},
            "confusion_matrix": pooled["confusion_matrix"],
        },
        "definition": definition,
    }


def summary(report: dict[str, Any]) -> str:
    """Printable per-fold table and the mean +- sd line."""
    lines = [f"{'fold':>4}  {'test speakers':<24}{'accuracy':>9}{'UAR':>8}{'macro F1':>10}{'epochs':>8}{'seconds':>9}"]
    for r in report["per_fold"]:
        lines.append(
            f"{r['fold']:>4}  {' '.join(r['speakers']['test'])[:23]:<24}{r['accuracy']:>9.4f}{r['uar']:>8.4f}{r['macro_f1']:>10.4f}{r['epochs']:>8}{r['seconds']:>9.0f}"
        )
    lines.append(
        f"{report['arch']}, {report['folds']}-fold speaker CV"
        + (f", {report['folds_run']} of {report['folds']} folds run" if report["folds_run"] < report["folds"] else "")
        + f" ({report['speakers']} speakers tested): "
        + "  ".join(f"{name} {format_mean_sd(report[name])}" for name in HEADLINE_METRICS)
    )
    if report.get("cross_corpus"):
        from kser.cross_corpus import summary as corpus_summary

        lines.extend(corpus_summary(report["arch"], result) for result in report["cross_corpus"].values())
    return "\n".join(lines)
