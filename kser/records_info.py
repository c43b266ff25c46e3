"""RecordsInfo: the typed, validated view of a records directory's ``manifest.json``.

``kser build-records`` writes the manifest (``tfrecords_builder/manifest.py``); everything that reads
records (datasets, training, evaluation, cross-validation) reads it through :func:`read_records_info`
only. Why: one reader checks the file's shape once and names what is wrong, instead of every
consumer indexing nested keys and failing with a bare ``KeyError`` or ``TypeError``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Callable

from kser.config import AudioConfig, from_dict
from kser.errors import KserError
from kser.records import MANIFEST_FILE


@dataclasses.dataclass(frozen=True)
class SplitInfo:
    """One split: its clip and class counts, speakers and shard files."""

    clips: int
    class_counts: dict[str, int]
    speakers: tuple[str, ...]
    # speaker -> label -> clips; None in records built before kser wrote them (no speaker folds).
    speaker_class_counts: dict[str, dict[str, int]] | None
    shards: tuple[str, ...]  # file names inside the records directory


@dataclasses.dataclass(frozen=True)
class RecordsInfo:
    """What a reader needs to know about a records directory."""

    records_dir: Path
    label_names: tuple[str, ...]
    splits: dict[str, SplitInfo]
    audio: AudioConfig
    seed: int
    split_strategy: str
    split_fractions: tuple[float, ...]
    waveform_encoding: str
    clip_samples: int
    excluded: dict[str, int]  # clips left out because their emotion is outside the label set

    @property
    def manifest_path(self) -> Path:
        return self.records_dir / MANIFEST_FILE


class _Damaged(Exception):
    """A manifest field that is missing or of the wrong shape (becomes one KserError)."""


_KIND_NAMES = {int: "an integer", str: "a string", list: "a list", dict: "an object"}


def _typed(value: Any, kind: type, where: str) -> Any:
    """``value`` if it is a ``kind`` (a bool is not an integer here), else _Damaged naming ``where``."""
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise _Damaged(f"{where} should be {_KIND_NAMES[kind]}, not {json.dumps(value)[:40]}")
    return value


def _get(mapping: Any, key: str, kind: type, where: str) -> Any:
    if not isinstance(mapping, dict):
        raise _Damaged(f"{where or 'the top level'} is not an object")
    path = f"{where}.{key}" if where else key
    if key not in mapping:
        raise _Damaged(f"{path} is missing")
    return _typed(mapping[key], kind, path)


def _counts(value: Any, where: str, parse: Callable[[Any, str], Any] | None = None) -> dict[str, Any]:
    """A JSON object of counts (or, with ``parse``, of nested count objects), keys as strings."""
    parse = parse or (lambda item, at: _typed(item, int, at))
    return {str(key): parse(item, f"{where}.{key}") for key, item in _typed(value, dict, where).items()}


def _split(raw: Any, name: str) -> SplitInfo:
    where = f"splits.{name}"
    speaker_counts = raw.get("speaker_class_counts") if isinstance(raw, dict) else None
    shards = _get(raw, "shards", list, where)
    return SplitInfo(
        clips=_get(raw, "clips", int, where),
        class_counts=_counts(_get(raw, "class_counts", dict, where), f"{where}.class_counts"),
        speakers=tuple(str(s) for s in _get(raw, "speakers", list, where)),
        speaker_class_counts=(
            None if speaker_counts is None else _counts(speaker_counts, f"{where}.speaker_class_counts", _counts)
        ),
        shards=tuple(_get(shard, "name", str, f"{where}.shards[{i}]") for i, shard in enumerate(shards)),
    )


def parse_manifest(manifest: Any, records_dir: str | Path) -> RecordsInfo:
    """A RecordsInfo from the manifest's JSON content; a damaged one raises _Damaged."""
    config = _get(manifest, "config", dict, "")
    split_config = _get(config, "split", dict, "config")
    waveform = _get(manifest, "waveform", dict, "")
    label_names = _get(manifest, "label_names", list, "")
    if not label_names or not all(isinstance(name, str) for name in label_names):
        raise _Damaged("label_names is not a non-empty list of names")
    try:
        audio = from_dict(AudioConfig, _get(config, "audio", dict, "config"))
    except (TypeError, ValueError) as error:
        raise _Damaged(f"config.audio is not a valid audio configuration ({error})") from None
    splits = _get(manifest, "splits", dict, "")
    return RecordsInfo(
        records_dir=Path(records_dir),
        label_names=tuple(label_names),
        splits={str(name): _split(raw, name) for name, raw in splits.items()},
        audio=audio,
        seed=_get(manifest, "seed", int, ""),
        split_strategy=_get(split_config, "strategy", str, "config.split"),
        split_fractions=tuple(float(f) for f in _get(split_config, "fractions", list, "config.split")),
        waveform_encoding=_get(waveform, "encoding", str, "waveform"),
        clip_samples=_get(waveform, "samples", int, "waveform"),
        excluded=_counts(manifest.get("excluded", {}), "excluded"),
    )


def read_records_info(records_dir: str | Path) -> RecordsInfo:
    """The records directory's manifest as a RecordsInfo, or one clear KserError naming the file."""
    path = Path(records_dir) / MANIFEST_FILE
    if not path.is_file():
        raise KserError(f"{records_dir} has no {MANIFEST_FILE}: not a finished kser build-records output")
    try:
        return parse_manifest(json.loads(path.read_text()), records_dir)
    except ValueError as error:  # not JSON (json.JSONDecodeError), or not UTF-8
        raise KserError(f"{path} is damaged: not valid JSON ({error})") from None
    except _Damaged as error:
        raise KserError(f"{path} is damaged: {error}") from None
