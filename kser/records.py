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
from kser.tfrecord_format import BYTES, FLOAT, INT64, decode_example, encode_example

ENCODINGS = {"int16": "<i2", "float32": "<f4"}
SHARD_SUFFIX = ".tfrecord"
MANIFEST_FILE = "manifest.json"
SCHEMA = {  # feature name -> kind, in the order of the module docstring
    "waveform": BYTES,
    "waveform_scale": FLOAT,
    "label": INT64,
    "speaker": BYTES,
    "clip_id": BYTES,
    "sample_rate": INT64,
    "source_samples": INT64,
}


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
    return samples.astype(waveform_dtype(encoding)).tobytes(), 1.0


def make_example(
    *, waveform: bytes, scale: float, label: int, speaker: str, clip_id: str, sample_rate: int, source_samples: int
) -> bytes:
    """A serialized tf.train.Example for one clip (the same bytes TensorFlow writes; no TensorFlow needed)."""
    values = {
        "waveform": waveform,
        "waveform_scale": scale,
        "label": label,
        "speaker": speaker.encode("utf-8"),
        "clip_id": clip_id.encode("utf-8"),
        "sample_rate": sample_rate,
        "source_samples": source_samples,
    }
    return encode_example({name: (kind, [values[name]]) for name, kind in SCHEMA.items()})


def feature_spec() -> dict[str, Any]:
    tf = tensorflow()
    dtypes = {BYTES: tf.string, FLOAT: tf.float32, INT64: tf.int64}
    return {name: tf.io.FixedLenFeature([], dtypes[kind]) for name, kind in SCHEMA.items()}


def waveform_dtype(encoding: str) -> np.dtype:
    """The stored sample type of ``encoding`` (little-endian), for both parsers."""
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown waveform encoding {encoding!r}; choose one of {', '.join(ENCODINGS)}")
    return np.dtype(ENCODINGS[encoding])


def parse_example(serialized: Any, encoding: str = "int16") -> dict[str, Any]:
    """Graph-side parse of one serialized Example; ``waveform`` comes back as float32."""
    tf = tensorflow()

    parsed = tf.io.parse_single_example(serialized, feature_spec())
    raw = tf.io.decode_raw(parsed["waveform"], tf.as_dtype(waveform_dtype(encoding).newbyteorder("=")), little_endian=True)
    parsed["waveform"] = tf.cast(raw, tf.float32) * parsed["waveform_scale"]
    return parsed


def example_values(serialized: bytes) -> dict[str, Any]:
    """The schema's values of one serialized Example without TensorFlow: numpy scalars and bytes
    (``waveform`` still the stored bytes); ValueError names a missing or malformed feature."""
    features = decode_example(serialized)
    parsed: dict[str, Any] = {}
    for name, kind in SCHEMA.items():
        if name not in features:
            raise ValueError(f"feature {name!r} is missing")
        found_kind, values = features[name]
        if found_kind != kind or len(values) != 1:
            raise ValueError(f"feature {name!r}: expected one {kind} value, found {len(values)} {found_kind} value(s)")
        parsed[name] = {BYTES: bytes, FLOAT: np.float32, INT64: np.int64}[kind](values[0])
    return parsed


def parse_example_numpy(serialized: bytes, encoding: str = "int16") -> dict[str, Any]:
    """:func:`parse_example`'s values without TensorFlow: numpy scalars, bytes, a float32 waveform."""
    parsed = example_values(serialized)
    raw = np.frombuffer(parsed["waveform"], dtype=waveform_dtype(encoding))
    parsed["waveform"] = raw.astype(np.float32) * parsed["waveform_scale"]
    return parsed
