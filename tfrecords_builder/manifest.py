"""manifest.json: everything a reader needs to trust and reproduce a records directory."""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

import kser
from kser.config import BuildConfig
from kser.layouts import Scan
from kser.splits import SPLITS
from kser_tfrecords_builder.plan import ShardPlan
from kser_tfrecords_builder.state import Receipt

WAVEFORM_ERROR = {
    "int16": "peak-scaled 16-bit PCM: |stored - prepared| <= scale/2 = peak/65534 per sample (about -96 dB re the clip's peak)",
    "float32": "exact float32",
}


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
    }
