"""manifest.json: everything a reader needs to trust and reproduce a records directory."""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

import kser
from kser.config import BuildConfig
from kser.layouts import Scan, parse_corpus
from kser.splits import SPLITS
from kser_tfrecords_builder.plan import ShardPlan
from kser_tfrecords_builder.state import Receipt

# A clip cut by more than this is not one utterance trimmed to fit: most of the file is unused.
LONG_CUT_SECONDS = 5.0
# Below this many clips a split's accuracy has a standard error of about 9 points or more
# (0.5 / sqrt(30)): a number from it says little.
MIN_USEFUL_SPLIT_CLIPS = 30

WAVEFORM_ERROR = {
    "int16": "peak-scaled 16-bit PCM: |stored - prepared| <= scale/2 = peak/65534 per sample (about -96 dB re the clip's peak)",
    "float32": "exact float32",
}


def resolved_corpus(entry: str) -> str:
    """An ``--also`` entry as the manifest stores it: ``LAYOUT=`` its folder resolved, as data_dir is."""
    layout, folder = parse_corpus(entry)
    return f"{layout}={Path(folder).resolve()}"


def make_manifest(
    config: BuildConfig, scan: Scan, plans: list[ShardPlan], receipts: dict[str, Receipt], fingerprint: dict[str, Any]
) -> dict[str, Any]:
    splits: dict[str, Any] = {}
    skipped = [{"path": s.path, "reason": s.reason} for s in scan.skipped]
    silent: list[str] = []
    for split in SPLITS:
        shards = [receipts[plan.name] for plan in plans if plan.split == split]
        class_counts: collections.Counter[str] = collections.Counter()
        speaker_counts: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        for receipt in shards:
            for speaker, counts in receipt.speaker_class_counts.items():
                speaker_counts[speaker].update(counts)
                class_counts.update(counts)
            skipped.extend(receipt.skipped)
            silent.extend(receipt.silent)
        splits[split] = {
            "clips": sum(r.records for r in shards),
            "class_counts": {label: class_counts.get(label, 0) for label in scan.label_names},
            "speakers": sorted(speaker_counts),
            # Per speaker and label, so that speaker folds and their class balance need no pass over the data.
            "speaker_class_counts": {s: dict(sorted(c.items())) for s, c in sorted(speaker_counts.items())},
            "shards": [{"name": r.name, "records": r.records, "bytes": r.bytes, "sha256": r.sha256} for r in shards],
        }
    return {
        "kser_version": kser.__version__,
        "data_dir": str(Path(config.data_dir).resolve()),
        "layout": config.layout,
        **({"also": [resolved_corpus(entry) for entry in config.also]} if config.also else {}),  # more corpora (kser.layouts.with_corpora)
        "seed": config.seed,
        "config": fingerprint["config"],
        "inputs_sha256": fingerprint["inputs_sha256"],
        "label_names": list(scan.label_names),
        # Clips whose emotion is outside the label set, per emotion: left out on purpose, not errors.
        "excluded": dict(scan.excluded),
        "waveform": {
            "encoding": config.records.waveform_encoding,
            "error": WAVEFORM_ERROR[config.records.waveform_encoding],
            "sample_rate": config.audio.sample_rate,
            "samples": config.audio.clip_samples,
        },
        "splits": splits,
        "total_clips": sum(s["clips"] for s in splits.values()),
        "skipped": sorted(skipped, key=lambda s: s["path"]),
        "silent_clips": sorted(silent),
        "warnings": build_warnings(scan.label_names, splits, [receipts[plan.name] for plan in plans], config),
    }


def _label_key(label: str) -> str:
    return "".join(label.split()).replace("_", "").replace("-", "").casefold()


def build_warnings(
    label_names: tuple[str, ...], splits: dict[str, Any], receipts: list[Receipt], config: BuildConfig
) -> list[dict[str, Any]]:
    """What a user should know about a build that succeeded, one ``message`` line each."""
    warnings: list[dict[str, Any]] = []
    groups: dict[str, list[str]] = collections.defaultdict(list)
    for label in label_names:
        groups[_label_key(label)].append(label)
    for same in (g for g in groups.values() if len(g) > 1):
        warnings.append({"kind": "near_duplicate_labels", "labels": same,
                         "message": f"labels {', '.join(map(repr, same))} differ only in case or spacing: they are separate classes"})
    used = [name for name, split in splits.items() if split["clips"] > 0]
    for name in used:
        split = splits[name]
        missing = [label for label, count in split["class_counts"].items() if count == 0]
        if missing:
            warnings.append({"kind": "empty_class", "split": name, "labels": missing,
                             "message": f"the {name} split has no clips of {', '.join(missing)}"})
        if split["clips"] < MIN_USEFUL_SPLIT_CLIPS:
            warnings.append({"kind": "small_split", "split": name, "clips": split["clips"],
                             "message": f"the {name} split has only {split['clips']} clips (under {MIN_USEFUL_SPLIT_CLIPS}): its scores will be noisy"})
    for receipt in receipts:
        warnings += [{"kind": "clip", "path": w["path"], "message": f"{w['path']}: {w['reason']}"} for w in receipt.warned]
    long_clips = sorted((c for r in receipts for c in r.long_clips), key=lambda c: (-c["seconds"], c["path"]))
    if long_clips:
        longest = long_clips[0]
        warnings.append({
            "kind": "long_clips", "count": len(long_clips), "longest": longest,
            "message": f"{len(long_clips)} clip(s) were cut by more than {LONG_CUT_SECONDS:g} s to fit "
                       f"{config.audio.clip_seconds:g} s; the longest: {longest['path']} ({longest['seconds']:g} s)",
        })
    return warnings
