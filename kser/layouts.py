"""Dataset layouts: how a folder of audio files maps to (file, label, speaker).

Each layout is one parser function in a small registry, so supporting another corpus
(RAVDESS, TESS, SAVEE, EmoDB, ...) is one function. Parsers never open audio: they only
read names (and, for ``csv``, the listing), so a scan of thousands of files is instant.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import re
from pathlib import Path
from typing import Callable, Iterable

from kser.config import CREMA_D_EMOTIONS
from kser.errors import KserError

AUDIO_EXTENSIONS = frozenset(
    {".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff", ".au", ".caf", ".w64", ".opus"}
)
UNKNOWN_SPEAKER = ""


@dataclasses.dataclass(frozen=True)
class ClipSource:
    """One input clip: where it is and what it is labelled."""

    path: str
    label: str
    speaker: str  # UNKNOWN_SPEAKER when the layout cannot tell
    clip_id: str  # unique within the data set; the file stem for name-based layouts


@dataclasses.dataclass(frozen=True)
class Skipped:
    """One input file left out, with a one-line reason."""

    path: str
    reason: str


@dataclasses.dataclass(frozen=True)
class Scan:
    """What a layout found: usable clips, skipped files and the label vocabulary in order."""

    clips: list[ClipSource]
    skipped: list[Skipped]
    label_names: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class LayoutOptions:
    """Layout-specific settings from the command line."""

    speaker_pattern: str | None = None  # regex with one group, applied to the file stem
    csv_path: str | None = None  # for the csv layout; default DATA_DIR/labels.csv


LayoutParser = Callable[[Path, LayoutOptions], Scan]
_LAYOUTS: dict[str, LayoutParser] = {}


def register_layout(name: str) -> Callable[[LayoutParser], LayoutParser]:
    """Add a parser to the registry under ``name``."""

    def add(parser: LayoutParser) -> LayoutParser:
        _LAYOUTS[name] = parser
        return parser

    return add


def available_layouts() -> list[str]:
    return sorted(_LAYOUTS)


def scan(data_dir: str | os.PathLike, layout: str, options: LayoutOptions = LayoutOptions()) -> Scan:
    """Find the clips of ``data_dir`` under ``layout``; raises KserError for unusable input."""
    root = Path(data_dir)
    if layout not in _LAYOUTS:
        raise KserError(f"unknown layout {layout!r}; known layouts: {', '.join(available_layouts())}")
    if not root.exists():
        raise KserError(f"data directory {root} does not exist")
    if not root.is_dir():
        raise KserError(f"data directory {root} is not a directory")
    result = _LAYOUTS[layout](root, options)
    if not result.clips:
        detail = f" ({len(result.skipped)} files skipped, e.g. {result.skipped[0].path}: {result.skipped[0].reason})" if result.skipped else ""
        raise KserError(f"no usable audio files found in {root} for layout {layout!r}{detail}")
    _check_unique_ids(result.clips)
    return result


def _check_unique_ids(clips: Iterable[ClipSource]) -> None:
    seen: dict[str, str] = {}
    for clip in clips:
        if clip.clip_id in seen:
            raise KserError(f"two files share the clip id {clip.clip_id!r}: {seen[clip.clip_id]} and {clip.path}")
        seen[clip.clip_id] = clip.path


def _walk_files(root: Path) -> list[Path]:
    """Every regular, non-hidden file below ``root``, in a stable order."""
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        files.extend(Path(dirpath) / name for name in sorted(filenames) if not name.startswith("."))
    return files


def _split_audio(files: Iterable[Path]) -> tuple[list[Path], list[Skipped]]:
    audio, skipped = [], []
    for path in files:
        if path.suffix.lower() in AUDIO_EXTENSIONS:
            audio.append(path)
        else:
            skipped.append(Skipped(str(path), f"not an audio file extension ({path.suffix or 'none'})"))
    return audio, skipped


def _speaker_from_pattern(pattern: re.Pattern[str] | None, stem: str) -> str | None:
    if pattern is None:
        return UNKNOWN_SPEAKER
    match = pattern.search(stem)
    if match is None:
        return None
    return match.group(1) if match.groups() else match.group(0)


def _compile_speaker_pattern(options: LayoutOptions) -> re.Pattern[str] | None:
    if not options.speaker_pattern:
        return None
    try:
        return re.compile(options.speaker_pattern)
    except re.error as error:
        raise KserError(f"--speaker_pattern {options.speaker_pattern!r} is not a valid regex: {error}") from None


CREMA_D_NAME = re.compile(r"^(?P<actor>\d{4})_(?P<sentence>[A-Z]{3})_(?P<emotion>[A-Z]{3})_(?P<level>[A-Z]{2})$")


def parse_crema_d_name(stem: str) -> tuple[str, str] | str:
    """(actor, emotion) for a CREMA-D file stem, or the reason it does not parse."""
    match = CREMA_D_NAME.match(stem)
    if match is None:
        return "file name is not AAAA_SSS_EEE_LL (actor_sentence_emotion_level)"
    if match["emotion"] not in CREMA_D_EMOTIONS:
        return f"unknown emotion code {match['emotion']!r} (expected one of {' '.join(CREMA_D_EMOTIONS)})"
    return match["actor"], match["emotion"]


@register_layout("crema_d")
def _crema_d(root: Path, options: LayoutOptions) -> Scan:
    """CREMA-D: ``1001_DFA_ANG_XX.wav``; actor is the speaker, labels in the study's order."""
    audio, skipped = _split_audio(_walk_files(root))
    clips = []
    for path in audio:
        parsed = parse_crema_d_name(path.stem)
        if isinstance(parsed, str):
            skipped.append(Skipped(str(path), parsed))
            continue
        actor, emotion = parsed
        clips.append(ClipSource(str(path), emotion, actor, path.stem))
    return Scan(clips, skipped, CREMA_D_EMOTIONS)


@register_layout("folders")
def _folders(root: Path, options: LayoutOptions) -> Scan:
    """``DATA_DIR/<label>/.../clip.wav``; speaker from --speaker_pattern on the stem, else unknown."""
    pattern = _compile_speaker_pattern(options)
    audio, skipped = _split_audio(_walk_files(root))
    clips = []
    for path in audio:
        relative = path.relative_to(root)
        if len(relative.parts) < 2:
            skipped.append(Skipped(str(path), "file is not inside a label folder"))
            continue
        speaker = _speaker_from_pattern(pattern, path.stem)
        if speaker is None:
            skipped.append(Skipped(str(path), f"--speaker_pattern {options.speaker_pattern!r} does not match the name"))
            continue
        clip_id = relative.with_suffix("").as_posix()
        clips.append(ClipSource(str(path), relative.parts[0], speaker, clip_id))
    return Scan(clips, skipped, tuple(sorted({clip.label for clip in clips})))


@register_layout("csv")
def _csv(root: Path, options: LayoutOptions) -> Scan:
    """A listing with a header ``path,label[,speaker]``; paths relative to the listing's folder."""
    listing = Path(options.csv_path) if options.csv_path else root / "labels.csv"
    if not listing.is_file():
        raise KserError(f"csv layout needs a listing file: {listing} not found (set --csv)")
    clips, skipped = [], []
    with open(listing, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = set(reader.fieldnames or [])
        if not {"path", "label"} <= columns:
            raise KserError(f"{listing}: header must name the columns path,label[,speaker]; found {sorted(columns)}")
        for line_number, row in enumerate(reader, start=2):
            where = f"{listing}:{line_number}"
            if not (row.get("path") or "").strip() or not (row.get("label") or "").strip():
                skipped.append(Skipped(where, "empty path or label"))
                continue
            path = Path(row["path"].strip())
            path = path if path.is_absolute() else listing.parent / path
            clip_id = Path(row["path"].strip()).with_suffix("").as_posix()
            speaker = (row.get("speaker") or "").strip() or UNKNOWN_SPEAKER
            clips.append(ClipSource(str(path), row["label"].strip(), speaker, clip_id))
    return Scan(clips, skipped, tuple(sorted({clip.label for clip in clips})))
