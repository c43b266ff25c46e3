"""A frozen front end's outputs, computed once per clip and kept beside the records.

Why: a pretrained encoder (kser.whisper) is frozen and deterministic, so its output for a clip
never changes between epochs, folds or runs; computing it every step would spend nearly all of
training there. A cache file holds the outputs for every clip of a records folder, under a key
made of the records' manifest (its SHA-256) and the front end itself (its configuration and a
digest of its weights): new records or another preset get another file, never a stale one.

    RECORDS_DIR/feature_cache/<key>.npz   clip_ids [clips] str, features [clips, ...] float16

float16 halves the size (a 3 s clip through whisper_base's encoder: 150 x 512 values, 150 kB) and
is below what a head trained on it can tell apart. The file is written under a temporary name and
renamed, so a killed run leaves no half cache; where the records folder is read-only the cache
goes in the user's cache folder instead (:func:`cache_folder`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from kser.atomic import replacing
from kser.errors import KserError
from kser.records import MANIFEST_FILE, file_sha256

CACHE_DIR = "feature_cache"
STORED_DTYPE = np.float16
_BATCH = 16


def cache_key(records_dir: str | Path, front_end: Any) -> str:
    """Hex key of (the records' manifest, the front end's configuration and weights)."""
    digest = hashlib.sha256(file_sha256(Path(records_dir) / MANIFEST_FILE).encode())
    config = {name: value for name, value in front_end.get_config().items() if name not in ("name", "trainable", "dtype", "dft")}
    digest.update(json.dumps(config, sort_keys=True, default=str).encode())
    for weight in front_end.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()[:24]


def cache_folder(records_dir: str | Path) -> Path:
    """``RECORDS_DIR/feature_cache`` where the records folder is writable, else the user's cache
    (``$XDG_CACHE_HOME/kser/feature_cache``, by default ``~/.cache/kser/feature_cache``): keys name
    the records, so one folder serves every records folder."""
    records_dir = Path(records_dir)
    if os.access(records_dir, os.W_OK):
        return records_dir / CACHE_DIR
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kser" / CACHE_DIR


def cache_file(folder: str | Path, records_dir: str | Path, front_end: Any) -> Path:
    return Path(folder) / f"{cache_key(records_dir, front_end)}.npz"


def _compute(records_dir: Path, front_end: Any, progress: Callable[[str], None] | None) -> tuple[np.ndarray, np.ndarray]:
    """(clip_ids, features) of every clip of the records, in the records' order."""
    import keras

    from kser.data import Subset
    from kser.pydataset import read_clips
    from kser.records_info import read_records_info

    records = read_records_info(records_dir)
    clips = read_clips(records_dir, Subset(tuple(records.splits)), records)
    features = np.zeros((len(clips), *front_end.output_feature_shape), STORED_DTYPE)
    for start in range(0, len(clips), _BATCH):
        rows = np.arange(start, min(start + _BATCH, len(clips)))
        features[rows] = keras.ops.convert_to_numpy(front_end(clips.waveforms(rows))).astype(STORED_DTYPE)
        if progress is not None and (start // _BATCH) % 20 == 0:
            progress(f"caching front-end outputs: {rows[-1] + 1}/{len(clips)} clips")
    return clips.clip_ids, features


def ensure_cache(
    folder: str | Path, records_dir: str | Path, front_end: Any, progress: Callable[[str], None] | None = None
) -> Path:
    """The cache file of ``front_end`` on these records, computed now if it is not there yet."""
    records_dir = Path(records_dir)
    path = cache_file(folder, records_dir, front_end)
    if path.is_file():
        if _readable(path):
            return path
        if progress is not None:
            progress(f"warning: {path} cannot be read (damaged on disk?); computing it again")
    clip_ids, features = _compute(records_dir, front_end, progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path, ".npz") as temp:
        with open(temp, "wb") as handle:
            np.savez(handle, clip_ids=clip_ids, features=features)
    if progress is not None:
        progress(f"cached {len(clip_ids)} clips' front-end outputs in {path} ({path.stat().st_size / 2**20:.0f} MiB)")
    return path


def _readable(path: Path) -> bool:
    """Whether a cache file opens and holds its two arrays (a file cut short or damaged does not)."""
    try:
        with np.load(path) as cache:
            return cache["clip_ids"].shape[0] == cache["features"].shape[0]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        return False


@functools.lru_cache(maxsize=1)
def _load(path: str, modified_ns: int) -> tuple[dict[str, int], np.ndarray]:
    """(clip id -> row, float16 features) of a cache file, read once per file version: a run's
    training and validation datasets, and the folds of a cross-validation, share one read."""
    with np.load(path) as cache:
        stored_ids, features = cache["clip_ids"], cache["features"]
    return {clip_id: row for row, clip_id in enumerate(stored_ids.tolist())}, features


def cached_features(path: str | Path, clip_ids: np.ndarray) -> np.ndarray:
    """float32 features of ``clip_ids`` (in that order) from a cache file."""
    rows, features = _load(str(path), Path(path).stat().st_mtime_ns)
    missing = [clip_id for clip_id in clip_ids.tolist() if clip_id not in rows]
    if missing:
        raise KserError(f"{path} holds no features for {len(missing)} clip(s), e.g. {missing[0]!r}; delete it to recompute")
    return features[np.asarray([rows[clip_id] for clip_id in clip_ids.tolist()], np.int64)].astype(np.float32)
