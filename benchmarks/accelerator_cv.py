"""Speaker cross-validation on a GPU machine without TensorFlow (Keras's JAX backend), from the audio folder.

Why: kser's pipeline reads TFRecords through tf.data, and the GPU machines lent to this project
have JAX but no TensorFlow (its wheels are too large to carry there). The study's architectures
take 3-10 hours per fold on the 2-core CPU machine, minutes on a GPU. So this runs kser's
cross-validation from the audio itself, reusing kser's parts, not copies of them:

- clips: ``kser.layouts.scan`` and the record builder's per-clip job
  (``tfrecords_builder.worker.process_clip``: decode, normalise, pad/trim, seeded peak-relative
  noise, int16) with the build seed, so every waveform is the one ``kser build-records`` stores
  (``--check_records=DIR`` proves it bit for bit where TensorFlow is installed);
- folds: ``kser.splits.speaker_folds`` and ``kser.cross_validation.make_folds``, the same speakers
  as ``kser cross-validate --fold_seed``; fold k trains with seed ``fold_seed + k``;
- training: ``kser.training`` resolves the recipe, builds the core and puts the training front end
  in the model (``features_on=model``, what ``kser train`` does on a GPU), compiles with its
  optimiser, schedule, loss and UAR metric; early stopping restores the best weights;
- scoring: the fold's unseen test speakers, ``kser.metrics.classification_metrics``.

What differs from ``kser cross-validate`` on a CPU: the random streams (JAX's initialisation and
augmentation draws; numpy for oversampling, shuffling and mixup, with the same distributions as
``kser.data``); mixup blends waveforms, not features (as ``kser train`` does whenever the features
are in the model); training batches run full across epoch ends; and nothing is written but the
results (no TensorBoard, checkpoints or model files). Independent (run, fold) jobs run in
parallel processes sharing the one GPU, so a job's seconds are not a standalone timing.

    benchmarks/accelerator_cv.sh --data_dir=../shared/data/ravdess16k --runs=small,lstm_ft-study \\
        --out=OUT [--workers=8] [--deadline_s=480]     # on the GPU machine (the script says what it needs)
    python benchmarks/accelerator_cv.py --report_only --out=OUT   # anywhere: re-tabulate OUT/results.jsonl
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.accuracy import RUNS, Run  # noqa: E402
from benchmarks.common import machine  # noqa: E402

# Issue 8's experiments, each one change from `small`'s defaults (benchmarks/EXPERIMENTS.md).
EXPERIMENTS: dict[str, Run] = {
    "small-novalidate": Run("small", "kser", ("--novalidate",), note="E08: the validation fold's speakers train too"),
    "small-epochs100": Run("small", "kser", ("--epochs=100",), note="E07: a schedule twice as long"),
    "small-valuar": Run("small", "kser", ("--monitor=val_uar",), note="best epoch by validation UAR"),
}
ALL_RUNS: dict[str, Run] = {**RUNS, **EXPERIMENTS}
RESULTS_FILE = "results.jsonl"


@dataclasses.dataclass(frozen=True)
class Job:
    run: str
    fold: int
    seed_offset: int = 0  # > 0: the same fold again with seed fold_seed + fold + seed_offset


def parse_flags(flags: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, Any], bool]:
    """``kser cross-validate`` flags of a Run -> (TrainConfig overrides, model options, validate)."""
    from kser.config import TrainConfig

    fields = {field.name for field in dataclasses.fields(TrainConfig)}
    overrides: dict[str, Any] = {}
    options: dict[str, Any] = {}
    validate = True
    for flag in flags:
        name, _, value = flag.removeprefix("--").partition("=")
        if name == "novalidate" and not value:
            validate = False
        elif name == "model_options":
            options = json.loads(value)
        elif name in fields and value:
            try:
                overrides[name] = json.loads(value)
            except json.JSONDecodeError:
                overrides[name] = value
        else:
            raise SystemExit(f"flag {flag!r} is not supported here (TrainConfig fields, --model_options, --novalidate)")
    return overrides, options, validate


# ----------------------------------------------------------------------------------- the clips


def prepare_clips(data_dir: str, layout: str, audio: Any, build_seed: int, workers: int) -> dict[str, np.ndarray]:
    """Every clip of ``data_dir`` prepared as ``kser build-records`` prepares it (int16-exact), with
    ``audio`` (a kser.config.AudioConfig)."""
    from kser.layouts import scan
    from kser.waveform import decode_int16
    from tfrecords_builder.worker import ClipTask, process_clip

    found = scan(data_dir, layout)
    tasks = [ClipTask(clip, audio, "int16", "auto", build_seed) for clip in found.clips]
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        results = pool.map(process_clip, tasks, chunksize=16)
    kept = [result for result in results if result.skip_reason is None]
    for result in results:
        if result.skip_reason is not None:
            print(f"skipped {result.clip.path}: {result.skip_reason}", flush=True)
    label_index = {name: index for index, name in enumerate(found.label_names)}
    return {
        "waveforms": np.stack([decode_int16(result.waveform, result.scale) for result in kept]),
        "labels": np.array([label_index[result.clip.label] for result in kept], dtype=np.int32),
        "speakers": np.array([result.clip.speaker for result in kept]),
        "clip_ids": np.array([result.clip.clip_id for result in kept]),
        "label_names": np.array(found.label_names),
    }


def check_against_records(clips: dict[str, np.ndarray], records_dir: str) -> str:
    """Compares the prepared waveforms with a records directory's (needs TensorFlow)."""
    import tensorflow as tf

    from kser.records import parse_example
    from kser.records_info import read_records_info

    info = read_records_info(records_dir)
    index = {clip_id: i for i, clip_id in enumerate(clips["clip_ids"])}
    shards = [str(Path(records_dir) / name) for split in info.splits.values() for name in split.shards]
    compared, worst = 0, 0.0
    for serialized in tf.data.TFRecordDataset(shards):
        parsed = parse_example(serialized, info.waveform_encoding)
        clip_id = parsed["clip_id"].numpy().decode()
        if clip_id not in index:
            raise SystemExit(f"{clip_id} is in {records_dir} but was not prepared here")
        difference = np.abs(parsed["waveform"].numpy() - clips["waveforms"][index[clip_id]]).max()
        worst, compared = max(worst, float(difference)), compared + 1
    if compared != len(index) or worst != 0.0:
        raise SystemExit(f"records differ: {compared} of {len(index)} clips compared, largest difference {worst}")
    return f"all {compared} clips identical to {records_dir}"


def fold_plan(clips: dict[str, np.ndarray], folds: int, fold_seed: int, validate: bool) -> list[Any]:
    """kser cross-validate's folds for these clips (the same speakers in the same roles)."""
    from kser.cross_validation import make_folds
    from kser.splits import speaker_folds

    names = list(clips["label_names"])
    counts: dict[str, dict[str, int]] = {}
    for speaker, label in zip(clips["speakers"], clips["labels"]):
        per_speaker = counts.setdefault(str(speaker), {})
        per_speaker[names[label]] = per_speaker.get(names[label], 0) + 1
    return make_folds(speaker_folds(counts, folds, fold_seed), validate)


# ----------------------------------------------------------------------------------- training


def epoch_order(labels: np.ndarray, classes: int, rng: np.random.Generator) -> np.ndarray:
    """One oversampled, shuffled pass (kser.data._oversample): each clip of class c repeated
    floor(f_c) or ceil(f_c) times, f_c = max_count / n_c, the rounding drawn per clip."""
    from kser.data import factors_for_counts

    factors = factors_for_counts(np.bincount(labels, minlength=classes))[labels]
    repeats = np.floor(factors).astype(np.int64) + (rng.random(len(labels)) < factors - np.floor(factors))
    return rng.permutation(np.repeat(np.arange(len(labels)), repeats))


def training_batches(waveforms: np.ndarray, labels: np.ndarray, classes: int, batch: int, mixup_alpha: float, seed: int):
    """Endless full batches ``(waveforms, one-hot)`` over oversampled passes, with mixup when
    ``mixup_alpha > 0`` (kser.data._mixup: lambda ~ Beta(alpha, alpha) per clip, a shuffled partner)."""
    rng = np.random.default_rng(seed)
    one_hot = np.eye(classes, dtype=np.float32)
    pending = np.empty(0, dtype=np.int64)
    while True:
        while len(pending) < batch:
            pending = np.concatenate([pending, epoch_order(labels, classes, rng)])
        chosen, pending = pending[:batch], pending[batch:]
        x, y = np.asarray(waveforms[chosen], dtype=np.float32), one_hot[labels[chosen]]
        if mixup_alpha > 0:
            lam = rng.beta(mixup_alpha, mixup_alpha, size=batch).astype(np.float32)
            partner = rng.permutation(batch)
            x = lam[:, None] * x + (1 - lam[:, None]) * x[partner]
            y = lam[:, None] * y + (1 - lam[:, None]) * y[partner]
        yield x, y


_DATA: dict[str, np.ndarray] = {}


def _init_worker(data_path: str, memory_fraction: float, cache_dir: str) -> None:
    os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] = "true"
    os.environ["XLA_PYTHON_CLIENT_MEM_FRACTION"] = f"{memory_fraction:.3f}"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import jax

    jax.config.update("jax_compilation_cache_dir", cache_dir)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    with np.load(data_path) as data:
        _DATA.update({key: data[key] for key in data.files})


def train_fold(job: Job, folds: int, fold_seed: int, epochs: int | None) -> dict[str, Any]:
    """One fold of one run: train on the fold's training speakers, score its test speakers."""
    import jax
    import keras

    from kser.audio_frontend import front_end_for
    from kser.callbacks import StopOnNonFinite
    from kser.config import PREPROCESSING, TrainConfig
    from kser.data import oversampled_size
    from kser.metrics import classification_metrics
    from kser.training import build_core, build_training_model, compile_for_training, monitor_mode, resolve_config

    started = time.time()
    run = ALL_RUNS[job.run]
    overrides, options, validate = parse_flags(run.flags)
    if epochs is not None:
        overrides["epochs"] = epochs
    fold = fold_plan(_DATA, folds, fold_seed, validate)[job.fold]
    seed = fold_seed + job.fold + job.seed_offset
    config = resolve_config(dataclasses.replace(TrainConfig(arch=run.arch), seed=seed, **overrides))
    names = [str(name) for name in _DATA["label_names"]]
    classes = len(names)
    speakers, waveforms, labels = _DATA["speakers"], _DATA["waveforms"], _DATA["labels"]

    def role(name: str) -> np.ndarray:
        return np.flatnonzero(np.isin(speakers, list(getattr(fold, name))))

    train, validation, test = role("train"), role("validation"), role("test")
    keras.utils.set_random_seed(seed)
    front_end = front_end_for(PREPROCESSING[run.records])  # the model's own, as kser train builds it
    core = build_core(config.arch, classes, front_end.output_feature_shape, options)
    model = build_training_model(core, front_end, config.augmentation if config.augment else None, seed)
    steps = math.ceil(oversampled_size(np.bincount(labels[train], minlength=classes)) / config.batch_size)
    compile_for_training(model, config, steps)
    one_hot = np.eye(classes, dtype=np.float32)
    stop = StopOnNonFinite(monitor=("loss", "val_loss"))
    callbacks: list[Any] = [stop]
    validation_data = None
    if validate:
        validation_data = (waveforms[validation], one_hot[labels[validation]])
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=config.monitor, mode=monitor_mode(config.monitor), patience=config.patience, restore_best_weights=True
            )
        )
    batches = training_batches(waveforms[train], labels[train], classes, config.batch_size, config.mixup_alpha, seed)
    history = model.fit(
        batches, steps_per_epoch=steps, epochs=config.epochs, validation_data=validation_data,
        validation_batch_size=64, callbacks=callbacks, shuffle=False, verbose=0,
    ).history
    if stop.stopped:
        return {"run": job.run, "fold": job.fold, "seed": seed, "error": stop.message}
    predicted = model.predict(waveforms[test], batch_size=64, verbose=0).argmax(axis=-1)
    metrics = classification_metrics(labels[test], predicted, names)
    monitored = history.get(config.monitor)
    best = None if monitored is None else int(np.argmin(monitored) if monitor_mode(config.monitor) == "min" else np.argmax(monitored))
    return {
        "run": job.run, "fold": job.fold, "seed": seed, "arch": config.arch, "flags": list(run.flags),
        "test_speakers": list(fold.test), "train_speakers": len(fold.train), "validation_speakers": list(fold.validation),
        "test_clips": int(len(test)), "parameters": int(core.count_params()),
        "uar": metrics["uar"], "accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"],
        "epochs_run": len(history["loss"]), "best_epoch": None if best is None else best + 1,
        "history": {key: [round(float(v), 5) for v in values] for key, values in history.items()},
        "seconds": round(time.time() - started, 1), "device": jax.devices()[0].device_kind,
    }


# ----------------------------------------------------------------------------------- driver


def read_results(path: Path) -> list[dict[str, Any]]:
    """A results file's jobs, the last one of each (run, fold, seed) winning (a rerun replaces a failure)."""
    latest: dict[tuple[str, int, int], dict[str, Any]] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            result = json.loads(line)
            latest[(result["run"], result["fold"], result["seed"])] = result
    return list(latest.values())


def run_key(result: dict[str, Any], fold_seed: int) -> str:
    """``run`` for the default seeds (fold_seed + fold), ``run@seed+N`` for a repeat with offset N."""
    offset = result["seed"] - fold_seed - result["fold"]
    return result["run"] if offset == 0 else f"{result['run']}@seed+{offset}"


def summarise(results: list[dict[str, Any]], folds: int, fold_seed: int) -> dict[str, Any]:
    """Per run and seed offset: mean ± sample sd over the folds that finished, and each fold's figures."""
    from kser.cross_validation import mean_sd

    summary: dict[str, Any] = {}
    done = sorted((r for r in results if "uar" in r), key=lambda r: (r["run"], r["seed"] - r["fold"], r["fold"]))
    for key in dict.fromkeys(run_key(r, fold_seed) for r in done):
        runs = [r for r in done if run_key(r, fold_seed) == key]
        summary[key] = {
            "arch": runs[0]["arch"],
            "devices": sorted({r.get("device", "unknown") for r in runs}),
            "flags": runs[0]["flags"],
            "parameters": runs[0]["parameters"],
            "folds_done": f"{len(runs)} of {folds}",
            "uar": mean_sd([r["uar"] for r in runs]),
            "accuracy": mean_sd([r["accuracy"] for r in runs]),
            "macro_f1": mean_sd([r["macro_f1"] for r in runs]),
            "per_fold_uar": {str(r["fold"]): round(100 * r["uar"], 1) for r in runs},
            "epochs_run": [r["epochs_run"] for r in runs],
            "mean_seconds": round(float(np.mean([r["seconds"] for r in runs])), 1),
            "note": ALL_RUNS[runs[0]["run"]].note,
        }
    return summary


def markdown(summary: dict[str, Any]) -> str:
    """The summary as a table (UAR and accuracy in %, mean ± sd over folds)."""
    from kser.cross_validation import format_mean_sd

    fmt = lambda value: format_mean_sd(value, digits=1, scale=100)  # noqa: E731
    lines = [
        "| run | arch | flags | params | folds | accuracy % | UAR % | UAR per fold | epochs | s/job |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, row in summary.items():
        per_fold = ", ".join(f"{value}" for value in row["per_fold_uar"].values())
        lines.append(
            f"| {key} | `{row['arch']}` | {' '.join(row['flags']) or 'defaults'} | {row['parameters']:,} | {row['folds_done']} | "
            f"{fmt(row['accuracy'])} | **{fmt(row['uar'])}** | {per_fold} | {row['epochs_run']} | {row['mean_seconds']} |"
        )
    return "\n".join(lines) + "\n"


def write_summary(out: Path, args: argparse.Namespace, seconds: float) -> dict[str, Any]:
    """summary.json and summary.md over every job in OUT/results.jsonl, this call's and earlier ones'."""
    summary: dict[str, Any] = {"benchmark": "accelerator_cv", "when": time.strftime("%Y-%m-%dT%H:%M:%S"), "command": " ".join(sys.argv)}
    if not args.report_only:  # the host that drove this call's jobs
        summary.update(machine=machine(), workers=args.workers, seconds=round(seconds, 1))
    summary["runs"] = summarise(read_results(out / RESULTS_FILE), args.folds, args.fold_seed)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "summary.md").write_text(markdown(summary["runs"]))
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "ravdess16k"))
    parser.add_argument("--layout", default="ravdess")
    parser.add_argument("--build_seed", type=int, default=0, help="the kser build-records --seed whose clips to reproduce")
    parser.add_argument("--folds", type=int, default=6)
    parser.add_argument("--fold_seed", type=int, default=0)
    parser.add_argument("--runs", default="small", help=f"comma-separated, of: {', '.join(ALL_RUNS)}")
    parser.add_argument("--fold_list", default="", help="comma-separated fold indices (default: all)")
    parser.add_argument("--seed_offsets", default="0", help="comma-separated: fold k trains with seed fold_seed + k + offset, once per offset")
    parser.add_argument("--epochs", type=int, default=None, help="override every run's epochs (smoke tests)")
    parser.add_argument("--workers", type=int, default=8, help="parallel training processes on the one GPU")
    parser.add_argument(
        "--gpu_memory", type=float, default=0.7,
        help="share of GPU memory the workers preallocate together; the rest is for each process's CUDA context and "
        "libraries (0.9 with 12 workers failed to create cuBLAS handles on an 80 GB H100)",
    )
    parser.add_argument("--deadline_s", type=float, default=None, help="stop starting jobs and collect results after this")
    parser.add_argument("--check_records", default="", help="records dir to compare the prepared waveforms with (needs TF)")
    parser.add_argument("--report_only", action="store_true", help="only summarise OUT/results.jsonl")
    parser.add_argument("--out", required=True, help="results.jsonl (appended, so calls accumulate), summary.json, summary.md")
    args = parser.parse_args()
    # Keras's JAX backend (the GPU machines have no TensorFlow). This process only prepares clips and
    # collects results, so it takes no GPU memory; the training workers preallocate theirs.
    os.environ["KERAS_BACKEND"] = "jax"
    os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
    started = time.time()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        run_jobs(args, out, started)
    summary = write_summary(out, args, time.time() - started)
    print(markdown(summary["runs"]), flush=True)


def run_jobs(args: argparse.Namespace, out: Path, started: float) -> None:
    """Prepares the clips, then runs every (run, seed offset, fold) job, appending each result as it ends."""
    from kser.config import PREPROCESSING

    names = [name for name in args.runs.split(",") if name]
    unknown = [name for name in names if name not in ALL_RUNS]
    if unknown:
        raise SystemExit(f"unknown run(s) {', '.join(unknown)}; known: {', '.join(ALL_RUNS)}")
    audio = {PREPROCESSING[ALL_RUNS[name].records] for name in names}
    if len(audio) != 1:
        raise SystemExit(f"the runs need differently prepared clips ({sorted({ALL_RUNS[n].records for n in names})}); one preparation per call")
    clips = prepare_clips(args.data_dir, args.layout, audio.pop(), args.build_seed, min(16, os.cpu_count() or 1))
    print(f"{len(clips['labels'])} clips prepared in {time.time() - started:.0f} s", flush=True)
    if args.check_records:
        print(check_against_records(clips, args.check_records), flush=True)
    data_path = Path(tempfile.mkdtemp(prefix="kser-accelerator-cv-")) / "clips.npz"
    np.savez(data_path, **clips)
    fold_indices = [int(k) for k in args.fold_list.split(",") if k] or list(range(args.folds))
    jobs = [Job(name, k, int(o)) for name in names for o in args.seed_offsets.split(",") for k in fold_indices]
    fraction = args.gpu_memory / max(args.workers, 1)
    context = multiprocessing.get_context("spawn")
    try:
        with context.Pool(args.workers, _init_worker, (str(data_path), fraction, "/tmp/kser-jax-cache"), maxtasksperchild=1) as pool:
            pending = {job: pool.apply_async(train_fold, (job, args.folds, args.fold_seed, args.epochs)) for job in jobs}
            while pending:
                if args.deadline_s is not None and time.time() - started > args.deadline_s:
                    print(f"deadline: {len(pending)} job(s) unfinished: {', '.join(f'{j.run}/{j.fold}' for j in pending)}", flush=True)
                    pool.terminate()
                    break
                for job in [job for job, handle in pending.items() if handle.ready()]:
                    try:
                        result = pending.pop(job).get()
                    except Exception as error:  # one failed job must not lose the others
                        result = {"run": job.run, "fold": job.fold, "seed": args.fold_seed + job.fold + job.seed_offset, "error": repr(error)}
                    with open(out / RESULTS_FILE, "a") as results:
                        results.write(json.dumps(result) + "\n")
                    shown = f"UAR {100 * result['uar']:.1f} in {result['epochs_run']} epochs, {result['seconds']} s" if "uar" in result else result["error"]
                    print(f"[{time.time() - started:5.0f} s] {job.run} fold {job.fold} seed {result['seed']}: {shown}", flush=True)
                time.sleep(1.0)
    finally:
        shutil.rmtree(data_path.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
