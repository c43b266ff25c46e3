"""What makes a build resumable: its fingerprint and one receipt per finished shard.

The fingerprint covers everything that changes the output (configuration and the list of
input clips); a rerun with the same fingerprint resumes, a different one is refused unless
--overwrite. A receipt is written just before its shard is renamed into place, and a shard
counts as done only if its receipt's size and SHA-256 match the file on disk.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import kser
from kser.output_dirs import clear_own_entries, holds_entries, make_dir
from kser import atomic
from kser.config import BuildConfig, omit_added_later, to_dict
from kser.errors import KserError
from kser.layouts import ClipSource, parse_corpus
from kser.feature_cache import CACHE_DIR
from kser.records import MANIFEST_FILE as MANIFEST
from kser.records import SHARD_SUFFIX, file_sha256
from kser.settings_diff import describe_differences

STATE_DIR = ".kser-build"
_FINGERPRINT = "fingerprint.json"
# Fields that do not change what is written.
_NOT_FINGERPRINTED = ("data_dir", "output_dir", "workers", "strict", "overwrite")
# Settings added after builds existed, left out at their default so that those builds still resume.
_ADDED_LATER = {"records": {"num_shards": None, "min_shards": 1}}


def fingerprint(config: BuildConfig, clips: list[ClipSource]) -> dict[str, Any]:
    settings = {k: v for k, v in to_dict(config).items() if k not in _NOT_FINGERPRINTED}
    for section, defaults in _ADDED_LATER.items():
        settings[section] = omit_added_later(settings[section], defaults)
    if settings.get("also"):  # the corpora's layouts; their folders are data_dir's kind: the listing covers the clips
        settings["also"] = [parse_corpus(entry)[0] for entry in settings["also"]]
    listing = hashlib.sha256()
    for clip in sorted(clips, key=lambda c: c.clip_id):
        size = Path(clip.path).stat().st_size if Path(clip.path).exists() else -1
        listing.update(json.dumps([clip.clip_id, clip.label, clip.speaker, size]).encode())
    payload = {"config": settings, "inputs_sha256": listing.hexdigest(), "kser_version": kser.__version__}
    return json.loads(json.dumps(payload))  # JSON-normal form (tuples -> lists), as stored on disk


def _is_own(path: Path) -> bool:
    """Whether ``path``, in an output directory, is something build-records writes."""
    return path.name in (MANIFEST, STATE_DIR, CACHE_DIR) or path.suffix == SHARD_SUFFIX  # a feature cache is of the old records


def prepare_output_dir(output: Path, expected: dict[str, Any], overwrite: bool) -> bool:
    """Make ``output`` ready; True when an earlier build with the same fingerprint is resumed."""
    make_dir(output, "output directory")
    atomic.remove_stale_temps(output)
    state = output / STATE_DIR / _FINGERPRINT
    previous = json.loads(state.read_text()) if state.is_file() else None
    if previous == expected:
        return True
    if holds_entries(output):
        if not overwrite:
            if previous is not None:
                what = f"a build with a different configuration (differs in: {describe_differences(previous, expected)})"
            else:
                what = "files that are not from a kser build"
            raise KserError(
                f"output directory {output} is not empty: it holds {what}; pass --overwrite to replace it "
                "or choose another --output_dir"
            )
        clear_own_entries(output, _is_own)
    (output / STATE_DIR / "receipts").mkdir(parents=True, exist_ok=True)
    atomic.write_json(state, expected)
    return False


@dataclasses.dataclass(frozen=True)
class Receipt:
    """What a finished shard holds."""

    name: str
    records: int
    bytes: int
    sha256: str
    speaker_class_counts: dict[str, dict[str, int]]  # speaker -> label -> clips
    skipped: list[dict[str, str]]
    silent: list[str]
    # Used clips worth a warning: {"path", "reason"} (e.g. truncated files), and the source length
    # of every clip, {"path", "seconds"}, that was cut by more than manifest.LONG_CUT_SECONDS.
    # Defaults keep receipts written before these fields readable.
    warned: list[dict[str, str]] = dataclasses.field(default_factory=list)
    long_clips: list[dict[str, Any]] = dataclasses.field(default_factory=list)


def _receipt_path(output: Path, shard: str) -> Path:
    return output / STATE_DIR / "receipts" / f"{shard}.json"


def save_receipt(output: Path, receipt: Receipt) -> None:
    atomic.write_json(_receipt_path(output, receipt.name), dataclasses.asdict(receipt))


def load_receipt(output: Path, shard: str) -> Receipt | None:
    """The shard's receipt if the shard on disk is exactly what it describes, else None."""
    receipt_file, shard_file = _receipt_path(output, shard), output / shard
    if not (receipt_file.is_file() and shard_file.is_file()):
        return None
    try:
        receipt = Receipt(**json.loads(receipt_file.read_text()))
    except (ValueError, TypeError):
        return None
    if shard_file.stat().st_size != receipt.bytes or file_sha256(shard_file) != receipt.sha256:
        return None
    return receipt
