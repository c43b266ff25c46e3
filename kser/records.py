"""The TFRecord schema shared by the record builder (writer) and the input pipeline (reader).

Each tf.train.Example holds one prepared clip:
  waveform        bytes   little-endian int16 PCM (or float32), ``waveform * waveform_scale``
  waveform_scale  float   1.0 for float32 storage
  label           int64   index into the manifest's label_names
  speaker         bytes   "" when unknown
  clip_id         bytes   the source file's stem (unique in the set)
  sample_rate     int64
  source_samples  int64   clip length before pad/trim, at sample_rate
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from kser.quiet import tensorflow

ENCODINGS = {"int16": "<i2", "float32": "<f4"}
SHARD_SUFFIX = ".tfrecord"
MANIFEST_FILE = "manifest.json"


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file, read in 1 MiB blocks (shards are ~150 MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def shard_name(split: str, index: int, count: int) -> str:
    return f"{split}-{index:05d}-of-{count:05d}{SHARD_SUFFIX}"


def encode_waveform(samples: np.ndarray, encoding: str) -> tuple[bytes, float]:
    """(bytes, scale) for storage; see kser.waveform.encode_int16 for the int16 error bound."""
    if encoding == "int16":
        from kser.waveform import encode_int16

        return encode_int16(samples)
    if encoding == "float32":
        return samples.astype("<f4").tobytes(), 1.0
    raise ValueError(f"unknown waveform encoding {encoding!r}; choose one of {', '.join(ENCODINGS)}")


def make_example(
    *, waveform: bytes, scale: float, label: int, speaker: str, clip_id: str, sample_rate: int, source_samples: int
) -> bytes:
    """A serialized tf.train.Example for one clip."""
    tf = tensorflow()

    def _bytes(value: bytes) -> tf.train.Feature:
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    def _int(value: int) -> tf.train.Feature:
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))

    features = {
        "waveform": _bytes(waveform),
        "waveform_scale": tf.train.Feature(float_list=tf.train.FloatList(value=[scale])),
        "label": _int(label),
        "speaker": _bytes(speaker.encode("utf-8")),
        "clip_id": _bytes(clip_id.encode("utf-8")),
        "sample_rate": _int(sample_rate),
        "source_samples": _int(source_samples),
    }
    example = tf.train.Example(features=tf.train.Features(feature=features))
    return example.SerializeToString(deterministic=True)  # map order would vary between processes


def feature_spec() -> dict[str, Any]:
    tf = tensorflow()

    return {
        "waveform": tf.io.FixedLenFeature([], tf.string),
        "waveform_scale": tf.io.FixedLenFeature([], tf.float32),
        "label": tf.io.FixedLenFeature([], tf.int64),
        "speaker": tf.io.FixedLenFeature([], tf.string),
        "clip_id": tf.io.FixedLenFeature([], tf.string),
        "sample_rate": tf.io.FixedLenFeature([], tf.int64),
        "source_samples": tf.io.FixedLenFeature([], tf.int64),
    }


def parse_example(serialized: Any, encoding: str = "int16") -> dict[str, Any]:
    """Graph-side parse of one serialized Example; ``waveform`` comes back as float32."""
    tf = tensorflow()

    parsed = tf.io.parse_single_example(serialized, feature_spec())
    dtype = tf.int16 if encoding == "int16" else tf.float32
    raw = tf.io.decode_raw(parsed["waveform"], dtype, little_endian=True)
    parsed["waveform"] = tf.cast(raw, tf.float32) * parsed["waveform_scale"]
    return parsed
