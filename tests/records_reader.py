"""Read a records directory back with TensorFlow, for checking what a build wrote."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from kser.quiet import tensorflow
from kser.records import parse_example


def read_split(records_dir: Path, split: str) -> list[dict]:
    """Every record of ``split`` as numpy values, in shard order."""
    tf = tensorflow()
    manifest = json.loads((records_dir / "manifest.json").read_text())
    encoding = manifest["waveform"]["encoding"]
    rows = []
    for shard in manifest["splits"][split]["shards"]:
        for serialized in tf.data.TFRecordDataset(str(records_dir / shard["name"])):
            parsed = parse_example(serialized, encoding)
            rows.append(
                {
                    "waveform": parsed["waveform"].numpy(),
                    "label": int(parsed["label"]),
                    "speaker": parsed["speaker"].numpy().decode(),
                    "clip_id": parsed["clip_id"].numpy().decode(),
                    "sample_rate": int(parsed["sample_rate"]),
                    "source_samples": int(parsed["source_samples"]),
                    "shard": shard["name"],
                }
            )
    return rows


def shard_records(path: Path) -> int:
    """How many records a shard file holds (raises if it is truncated or corrupt)."""
    tf = tensorflow()
    return sum(1 for _ in tf.data.TFRecordDataset(str(path)))


def manifest_without_paths(records_dir: Path) -> dict:
    manifest = json.loads((records_dir / "manifest.json").read_text())
    manifest.pop("data_dir")
    return manifest


def as_array(rows: list[dict], key: str) -> np.ndarray:
    return np.asarray([row[key] for row in rows])
