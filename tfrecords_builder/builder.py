"""``kser build-records``: scan, split, then write prepared waveforms to sharded TFRecords.

Clips are decoded and prepared in parallel worker processes (:mod:`kser_tfrecords_builder.pool`:
one that dies stops the build with a line naming its clip); the parent writes each shard
under a temporary name, records a receipt, and renames it into place, so a killed build
leaves only complete shards and a rerun of the same command resumes where it stopped.
Shards are written by :mod:`kser.tfrecord_format` (the bytes tf.io writes), so a build never
imports TensorFlow.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import os
import sys
import time
from pathlib import Path
from typing import Any, Iterator, TextIO

from kser import layouts
from kser.atomic import commit, temp_path_for, write_json
from kser.audio import DECODERS, MIN_SOURCE_RATE
from kser.config import BuildConfig
from kser.errors import KserError
from kser.locks import folder_lock
from kser.output_dirs import check_writable
from kser.progress import Progress
from kser.records import ENCODINGS, file_sha256, make_example
from kser.splits import split_clips
from kser.tfrecord_format import RecordWriter
from kser_tfrecords_builder import state
from kser_tfrecords_builder.manifest import LONG_CUT_SECONDS, make_manifest
from kser_tfrecords_builder.plan import ShardPlan, plan_shards
from kser_tfrecords_builder.pool import prepared_in_workers
from kser_tfrecords_builder.worker import ClipResult, ClipTask, process_clip


@dataclasses.dataclass(frozen=True)
class BuildResult:
    output_dir: Path
    manifest: dict[str, Any]
    shards_written: int
    shards_reused: int
    clips_processed: int
    seconds: float

    @property
    def clips_per_second(self) -> float:
        return self.clips_processed / self.seconds if self.seconds > 0 else 0.0


# Beyond these a value is a typo, not a choice: a minute is longer than any utterance the model
# sees (and 1e9 s would ask for terabytes), 384 kHz is the highest rate audio hardware records,
# and more workers than this only adds processes.
MAX_CLIP_SECONDS = 60.0
MAX_SAMPLE_RATE = 384_000
MAX_WORKERS = 256
MAX_SHARDS = 100_000


def _validate(config: BuildConfig) -> None:
    if config.records.waveform_encoding not in ENCODINGS:
        raise KserError(f"unknown waveform encoding {config.records.waveform_encoding!r}; choose one of {', '.join(ENCODINGS)}")
    if config.decoder not in DECODERS:
        raise KserError(f"unknown decoder {config.decoder!r}; choose one of {', '.join(DECODERS)}")
    if config.audio.sample_rate <= 0 or config.audio.clip_seconds <= 0:
        raise KserError("sample rate and clip length must be positive")
    if not MIN_SOURCE_RATE <= config.audio.sample_rate <= MAX_SAMPLE_RATE:
        raise KserError(f"sample rate must be between {MIN_SOURCE_RATE} and {MAX_SAMPLE_RATE} Hz, got {config.audio.sample_rate}")
    if config.audio.clip_seconds > MAX_CLIP_SECONDS:
        raise KserError(f"clip length must be at most {MAX_CLIP_SECONDS:g} s (one utterance), got {config.audio.clip_seconds:g}")
    if config.audio.noise_level < 0:
        raise KserError(f"noise level must be >= 0, got {config.audio.noise_level}")
    if config.audio.trim_db < 0:
        raise KserError(f"trim_db must be >= 0 (0 turns trimming off), got {config.audio.trim_db:g}")
    if not 0 <= config.seed < 2**32:
        raise KserError(f"seed must be between 0 and 2**32 - 1, got {config.seed}")
    if not 0 <= config.workers <= MAX_WORKERS:
        raise KserError(f"workers must be between 0 (one per CPU) and {MAX_WORKERS}, got {config.workers}")
    if config.records.shard_size_mb <= 0:
        raise KserError(f"shard size must be positive, got {config.records.shard_size_mb} MB")
    for name in ("num_shards", "min_shards"):
        value = getattr(config.records, name)
        if value is not None and not 1 <= value <= MAX_SHARDS:
            raise KserError(f"{name} must be between 1 and {MAX_SHARDS}, got {value}")
    check_writable(config.output_dir, "output directory")


def build_records(config: BuildConfig, progress_stream: TextIO | None = None) -> BuildResult:
    """Run (or resume) a build; returns its manifest. Raises KserError for unusable input."""
    started = time.monotonic()
    _validate(config)
    scan = layouts.scan(
        config.data_dir, config.layout, layouts.LayoutOptions(config.speaker_pattern, config.csv_path, config.labels)
    )
    if config.also:
        scan = layouts.with_corpora(scan, config.also)
    if config.strict and scan.skipped:
        first = scan.skipped[0]
        raise KserError(f"--strict: {len(scan.skipped)} file(s) cannot be used; first: {first.path}: {first.reason}")
    splits = split_clips(scan.clips, config.split, config.seed)
    plans = plan_shards(splits, config)
    output = Path(config.output_dir)
    expected = state.fingerprint(config, scan.clips)
    with folder_lock(output, "output directory"):  # before anything is written or cleared (kser.locks)
        state.prepare_output_dir(output, expected, config.overwrite)

        receipts = {plan.name: receipt for plan in plans if (receipt := state.load_receipt(output, plan.name))}
        pending = [plan for plan in plans if plan.name not in receipts]
        label_index = {label: i for i, label in enumerate(scan.label_names)}
        clip_count = sum(len(plan.clips) for plan in pending)
        if pending:
            progress = Progress(clip_count, "build-records", stream=progress_stream or sys.stderr)
            try:
                with contextlib.closing(_prepared_clips(pending, config)) as results:
                    for plan in pending:
                        receipts[plan.name] = _write_shard(output, plan, results, label_index, config, progress)
            finally:
                progress.close()

        manifest = make_manifest(config, scan, plans, receipts, expected)
        write_json(output / state.MANIFEST, manifest)
    return BuildResult(output, manifest, len(pending), len(plans) - len(pending), clip_count, time.monotonic() - started)


def _worker_count(config: BuildConfig) -> int:
    return config.workers if config.workers > 0 else (os.cpu_count() or 1)


def _prepared_clips(plans: list[ShardPlan], config: BuildConfig) -> Iterator[ClipResult]:
    """Results in plan order, computed in parallel when more than one worker is asked for."""
    tasks = (
        ClipTask(clip, config.audio, config.records.waveform_encoding, config.decoder, config.seed)
        for plan in plans
        for clip in plan.clips
    )
    workers = _worker_count(config)
    if workers == 1:
        yield from map(process_clip, tasks)
        return
    yield from prepared_in_workers(tasks, workers)


def _write_shard(
    output: Path,
    plan: ShardPlan,
    results: Iterator[ClipResult],
    label_index: dict[str, int],
    config: BuildConfig,
    progress: Progress,
) -> state.Receipt:
    final = output / plan.name
    temp = temp_path_for(final)
    speaker_class_counts: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    skipped: list[dict[str, str]] = []
    silent: list[str] = []
    warned: list[dict[str, str]] = []
    long_clips: list[dict[str, Any]] = []
    rate = config.audio.sample_rate
    try:
        with RecordWriter(temp) as writer:
            for _ in plan.clips:
                result = next(results)
                progress.update()
                if result.skip_reason is not None:
                    if config.strict:
                        raise KserError(f"--strict: {result.clip.path}: {result.skip_reason}")
                    print(f"skipped {result.clip.path}: {result.skip_reason}", file=progress.stream)
                    skipped.append({"path": result.clip.path, "reason": result.skip_reason})
                    continue
                writer.write(
                    make_example(
                        waveform=result.waveform,
                        scale=result.scale,
                        label=label_index[result.clip.label],
                        speaker=result.clip.speaker,
                        clip_id=result.clip.clip_id,
                        sample_rate=config.audio.sample_rate,
                        source_samples=result.source_samples,
                    )
                )
                speaker_class_counts[result.clip.speaker][result.clip.label] += 1
                if result.silent:
                    silent.append(result.clip.path)
                warned += [{"path": result.clip.path, "reason": warning} for warning in result.warnings]
                if result.source_samples - config.audio.clip_samples > LONG_CUT_SECONDS * rate:
                    long_clips.append({"path": result.clip.path, "seconds": round(result.source_samples / rate, 3)})
        receipt = state.Receipt(
            name=plan.name,
            records=sum(sum(counts.values()) for counts in speaker_class_counts.values()),
            bytes=temp.stat().st_size,
            sha256=file_sha256(temp),
            speaker_class_counts={speaker: dict(sorted(counts.items())) for speaker, counts in sorted(speaker_class_counts.items())},
            skipped=skipped,
            silent=silent,
            warned=warned,
            long_clips=long_clips,
        )
        state.save_receipt(output, receipt)
        commit(temp, final)
        return receipt
    finally:
        temp.unlink(missing_ok=True)
