"""Dataset layouts: how a folder of audio files maps to (file, label, speaker).

Each layout is one parser function in a small registry, so supporting another corpus is one
function. Parsers never open audio: they only read names (and, for ``csv``, the listing), so a
scan of thousands of files is instant.

The emotion corpora (``crema_d``, ``ravdess``, ``emodb``, ``tess``, ``savee``) map their own
emotion codes to one vocabulary, :data:`EMOTION_NAMES`, so that a model trained on one corpus can
be scored on another by label name. Their default label set is CREMA-D's six; a clip whose
emotion is outside the chosen label set (calm, surprised, boredom, ...) is *excluded*, counted
per emotion, and is not an error. ``LayoutOptions.labels`` (``--labels``) chooses and orders the
label set for every layout, folder and csv layouts included.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import io
import os
import re
from pathlib import Path
from typing import Callable, Iterable, Iterator

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
    """What a layout found: usable clips, skipped files, the label set in order, and how many
    clips per emotion were left out because their emotion is not in the label set."""

    clips: list[ClipSource]
    skipped: list[Skipped]
    label_names: tuple[str, ...]
    excluded: dict[str, int] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class LayoutOptions:
    """Layout-specific settings from the command line."""

    speaker_pattern: str | None = None  # regex with one group, applied to the file stem
    csv_path: str | None = None  # for the csv layout; default DATA_DIR/labels.csv
    labels: tuple[str, ...] | None = None  # the label set, in order; None: the layout's default


# Every emotion code a corpus layout can emit. The first six are CREMA-D's (the study's classes).
EMOTION_NAMES: dict[str, str] = {
    "ANG": "anger",
    "DIS": "disgust",
    "FEA": "fear",
    "HAP": "happiness",
    "NEU": "neutral",
    "SAD": "sadness",
    "CAL": "calm",
    "SUR": "surprise",
    "BOR": "boredom",
}

# A parser returns every clip it can name (with any label) and the files it cannot use.
LayoutParser = Callable[[Path, LayoutOptions], tuple[list[ClipSource], list[Skipped]]]


@dataclasses.dataclass(frozen=True)
class Layout:
    """A registered layout: its parser, the labels it can produce and its default label set."""

    parser: LayoutParser
    example: str  # one correctly named file, for help texts and the README
    vocabulary: tuple[str, ...] | None = None  # None: any label (folder names, csv column)
    default_labels: tuple[str, ...] | None = None  # None: every label found, sorted


_LAYOUTS: dict[str, Layout] = {}


def register_layout(
    name: str, example: str, vocabulary: tuple[str, ...] | None = None, default_labels: tuple[str, ...] | None = None
) -> Callable[[LayoutParser], LayoutParser]:
    """Add a parser to the registry under ``name``."""

    def add(parser: LayoutParser) -> LayoutParser:
        _LAYOUTS[name] = Layout(parser, example, vocabulary, default_labels)
        return parser

    return add


def layout_example(name: str) -> str:
    """One correctly named file of layout ``name``."""
    return _LAYOUTS[name].example


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
    found, skipped = _LAYOUTS[layout].parser(root, options)
    if not found:
        detail = f" ({len(skipped)} files skipped, e.g. {skipped[0].path}: {skipped[0].reason})" if skipped else ""
        raise KserError(f"no usable audio files found in {root} for layout {layout!r}{detail}")
    _check_unique_ids(found)
    label_names = _label_set(layout, found, options.labels)
    chosen = set(label_names)
    clips = [clip for clip in found if clip.label in chosen]
    excluded = collections.Counter(clip.label for clip in found if clip.label not in chosen)
    if not clips:
        raise KserError(f"no clip in {root} has one of the labels {', '.join(label_names)}")
    return Scan(clips, skipped, label_names, dict(sorted(excluded.items())))


def parse_corpus(entry: str) -> tuple[str, str]:
    """One ``--also`` entry, ``LAYOUT=DIR``, as (layout, folder); KserError naming a malformed one."""
    layout, separator, folder = entry.partition("=")
    layout, folder = layout.strip(), folder.strip()
    if not separator or not layout or not folder:
        raise KserError(f"--also {entry!r}: write LAYOUT=DIR, e.g. emodb=/data/emodb")
    if layout not in _LAYOUTS:
        raise KserError(f"--also {entry!r}: unknown layout {layout!r}; known layouts: {', '.join(available_layouts())}")
    return layout, folder


def with_corpora(primary: Scan, entries: Iterable[str]) -> Scan:
    """``primary`` plus the clips of more corpora (``--also``: ``LAYOUT=DIR`` each, scanned with
    their layout's defaults) whose label is in ``primary``'s label set.

    Why one records build for several corpora: training on more speakers, languages and recording
    chains is what generalises (issue 22), and everything downstream (speaker splits, speaker
    cross-validation, balance) then works on the union unchanged. An added corpus's speakers and
    clip ids are prefixed ``LAYOUT:``, so that two corpora never share a speaker or an id; the
    primary corpus keeps its names. Each layout may be added once.
    """
    clips, skipped = list(primary.clips), list(primary.skipped)
    excluded = collections.Counter(primary.excluded)
    chosen = set(primary.label_names)
    seen: set[str] = set()
    for entry in entries:
        layout, folder = parse_corpus(entry)
        if layout in seen:
            raise KserError(f"--also names layout {layout!r} twice; add each corpus once")
        seen.add(layout)
        found = scan(folder, layout)
        kept = [clip for clip in found.clips if clip.label in chosen]
        if not kept:
            raise KserError(f"--also {entry}: no clip has one of the labels {', '.join(primary.label_names)}")
        excluded.update(found.excluded)
        excluded.update(clip.label for clip in found.clips if clip.label not in chosen)
        clips.extend(
            dataclasses.replace(
                clip,
                speaker=f"{layout}:{clip.speaker}" if clip.speaker != UNKNOWN_SPEAKER else UNKNOWN_SPEAKER,
                clip_id=f"{layout}:{clip.clip_id}",
            )
            for clip in kept
        )
        skipped.extend(found.skipped)
    _check_unique_ids(clips)
    return Scan(clips, skipped, primary.label_names, dict(sorted(excluded.items())))


def _label_set(layout: str, clips: list[ClipSource], requested: tuple[str, ...] | None) -> tuple[str, ...]:
    """The requested labels, checked against what the layout can produce and what was found."""
    spec = _LAYOUTS[layout]
    found = {clip.label for clip in clips}
    if not requested:
        return spec.default_labels or tuple(sorted(found))
    requested = tuple(label.strip() for label in requested)
    if len(set(requested)) != len(requested) or not all(requested):
        raise KserError(f"--labels must name distinct, non-empty labels, got {','.join(requested)}")
    if len(requested) < 2:
        raise KserError(f"--labels needs at least two labels to classify, got {','.join(requested)}")
    known = spec.vocabulary or tuple(sorted(found))
    unknown = [label for label in requested if label not in known]
    if unknown:
        raise KserError(f"layout {layout!r} has no label {', '.join(unknown)}; its labels are {', '.join(known)}")
    missing = [label for label in requested if label not in found]
    if missing:
        raise KserError(f"no clip is labelled {', '.join(missing)} (labels found: {', '.join(sorted(found))})")
    return requested


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


def audio_files_under(root: str | os.PathLike) -> list[Path]:
    """Every non-hidden file below ``root`` with an audio extension, sorted by path."""
    return sorted(_split_audio(_walk_files(Path(root)))[0])


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


# Name parsers of the emotion corpora: file stem -> (speaker, emotion code) or the reason it does not parse.
NameParser = Callable[[Path], "tuple[str, str] | str"]


def _named_clips(root: Path, parse: NameParser, clip_id: Callable[[Path, str], str] = lambda path, _: path.stem):
    """Clips of a corpus whose file names carry speaker and emotion; unparseable names are skipped."""
    audio, skipped = _split_audio(_walk_files(root))
    clips = []
    for path in audio:
        parsed = parse(path)
        if isinstance(parsed, str):
            skipped.append(Skipped(str(path), parsed))
            continue
        speaker, emotion = parsed
        clips.append(ClipSource(str(path), emotion, speaker, clip_id(path, speaker)))
    return clips, skipped


def _unknown_emotion(code: str, codes: dict[str, str]) -> str:
    return f"unknown emotion code {code!r} (expected one of {' '.join(codes)})"


@register_layout("crema_d", "1001_DFA_ANG_XX.wav", CREMA_D_EMOTIONS, CREMA_D_EMOTIONS)
def _crema_d(root: Path, options: LayoutOptions):
    """CREMA-D: ``1001_DFA_ANG_XX.wav``; actor is the speaker, labels in the study's order."""
    return _named_clips(root, lambda path: parse_crema_d_name(path.stem))


RAVDESS_NAME = re.compile(r"^(?P<modality>\d{2})-(?P<channel>\d{2})-(?P<emotion>\d{2})-(?P<intensity>\d{2})-(?P<statement>\d{2})-(?P<repetition>\d{2})-(?P<actor>\d{2})$")
RAVDESS_EMOTIONS = {"01": "NEU", "02": "CAL", "03": "HAP", "04": "SAD", "05": "ANG", "06": "FEA", "07": "DIS", "08": "SUR"}


def parse_ravdess_name(path: Path) -> tuple[str, str] | str:
    match = RAVDESS_NAME.match(path.stem)
    if match is None:
        return "file name is not MM-CC-EE-II-SS-RR-AA (modality-channel-emotion-intensity-statement-repetition-actor)"
    if match["emotion"] not in RAVDESS_EMOTIONS:
        return _unknown_emotion(match["emotion"], RAVDESS_EMOTIONS)
    return match["actor"], RAVDESS_EMOTIONS[match["emotion"]]


@register_layout("ravdess", "Actor_01/03-01-05-01-02-01-01.wav", tuple(RAVDESS_EMOTIONS.values()), CREMA_D_EMOTIONS)
def _ravdess(root: Path, options: LayoutOptions):
    """RAVDESS: ``03-01-05-01-02-01-12.wav``: the 3rd field is the emotion, the 7th the actor (speaker)."""
    return _named_clips(root, parse_ravdess_name)


EMODB_NAME = re.compile(r"^(?P<speaker>\d{2})(?P<text>[ab]\d{2})(?P<emotion>[A-Z])(?P<version>[a-z])$")
# German initials: Wut/Aerger (anger), Langeweile (boredom), Ekel (disgust), Angst (fear), Freude (joy), Trauer (sadness).
EMODB_EMOTIONS = {"W": "ANG", "L": "BOR", "E": "DIS", "A": "FEA", "F": "HAP", "N": "NEU", "T": "SAD"}


def parse_emodb_name(path: Path) -> tuple[str, str] | str:
    match = EMODB_NAME.match(path.stem)
    if match is None:
        return "file name is not SSTTTEV (speaker, text code, emotion letter, version), e.g. 03a01Wa"
    if match["emotion"] not in EMODB_EMOTIONS:
        return _unknown_emotion(match["emotion"], EMODB_EMOTIONS)
    return match["speaker"], EMODB_EMOTIONS[match["emotion"]]


@register_layout("emodb", "03a01Wa.wav", tuple(EMODB_EMOTIONS.values()), CREMA_D_EMOTIONS)
def _emodb(root: Path, options: LayoutOptions):
    """Berlin EmoDB: ``03a01Wa.wav``: speaker 03, text a01, emotion W (anger), version a."""
    return _named_clips(root, parse_emodb_name)


TESS_NAME = re.compile(r"^(?P<speaker>[OY]AF)_(?P<word>.+?)_(?P<emotion>[A-Za-z]+(?:_surprised?)?)$", re.IGNORECASE)
TESS_EMOTIONS = {
    "angry": "ANG", "disgust": "DIS", "fear": "FEA", "happy": "HAP", "neutral": "NEU", "sad": "SAD",
    "ps": "SUR", "pleasant_surprise": "SUR", "pleasant_surprised": "SUR",
}


def parse_tess_name(path: Path) -> tuple[str, str] | str:
    match = TESS_NAME.match(path.stem)
    if match is None:
        return "file name is not SPEAKER_word_emotion with speaker OAF or YAF, e.g. OAF_back_angry"
    emotion = match["emotion"].lower()
    if emotion not in TESS_EMOTIONS:
        return _unknown_emotion(emotion, TESS_EMOTIONS)
    return match["speaker"].upper(), TESS_EMOTIONS[emotion]


@register_layout("tess", "OAF_angry/OAF_back_angry.wav", tuple(dict.fromkeys(TESS_EMOTIONS.values())), CREMA_D_EMOTIONS)
def _tess(root: Path, options: LayoutOptions):
    """Toronto emotional speech set: ``OAF_back_angry.wav``: speaker OAF/YAF, word, emotion (``ps``: surprise)."""
    return _named_clips(root, parse_tess_name)


SAVEE_NAME = re.compile(r"^(?:(?P<speaker>[A-Za-z]{2})_)?(?P<emotion>sa|su|a|d|f|h|n)(?P<number>\d{2})$")
SAVEE_EMOTIONS = {"a": "ANG", "d": "DIS", "f": "FEA", "h": "HAP", "n": "NEU", "sa": "SAD", "su": "SUR"}


def parse_savee_name(path: Path) -> tuple[str, str] | str:
    match = SAVEE_NAME.match(path.stem)
    if match is None:
        return "file name is not [SPEAKER_]EENN (emotion code a/d/f/h/n/sa/su and a number), e.g. DC_a01 or DC/a01"
    speaker = (match["speaker"] or path.parent.name).upper()
    return speaker, SAVEE_EMOTIONS[match["emotion"]]


@register_layout("savee", "DC/a01.wav", tuple(SAVEE_EMOTIONS.values()), CREMA_D_EMOTIONS)
def _savee(root: Path, options: LayoutOptions):
    """SAVEE: ``AudioData/DC/a01.wav`` (speaker folder) or ``DC_a01.wav``: emotion a, d, f, h, n, sa or su."""
    # In the original layout the stem (a01) repeats in every speaker's folder: prefix the speaker.
    return _named_clips(root, parse_savee_name, clip_id=lambda path, speaker: f"{speaker}_{path.stem.split('_')[-1]}")


@register_layout("folders", "angry/s01_clip.wav")
def _folders(root: Path, options: LayoutOptions):
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
    return clips, skipped


@register_layout("csv", "labels.csv: path,label[,speaker]")
def _csv(root: Path, options: LayoutOptions):
    """A listing with a header ``path,label[,speaker]``; paths relative to the listing's folder."""
    listing = Path(options.csv_path) if options.csv_path else root / "labels.csv"
    if not listing.is_file():
        raise KserError(f"csv layout needs a listing file: {listing} not found (set --csv)")
    clips, skipped = [], []
    first_line: dict[str, tuple[int, str]] = {}  # resolved path -> (line, label) of its first row
    reader = csv.DictReader(io.StringIO(_listing_text(listing), newline=""))
    columns = set(reader.fieldnames or [])
    if not {"path", "label"} <= columns:
        raise KserError(f"{listing}: header must name the columns path,label[,speaker]; found {sorted(columns)}")
    for row in _csv_rows(reader, listing):
        line_number = reader.line_num
        where = f"{listing}:{line_number}"
        if not (row.get("path") or "").strip() or not (row.get("label") or "").strip():
            skipped.append(Skipped(where, "empty path or label"))
            continue
        if any("\0" in (row.get(column) or "") for column in ("path", "label", "speaker")):
            skipped.append(Skipped(where, "a NUL byte in the path, label or speaker: the line is damaged"))
            continue
        path = Path(row["path"].strip())
        path = path if path.is_absolute() else listing.parent / path
        clip_id = Path(row["path"].strip()).with_suffix("").as_posix()
        speaker = (row.get("speaker") or "").strip() or UNKNOWN_SPEAKER
        label = row["label"].strip()
        key = os.path.normpath(path)
        if key in first_line:
            line, first_label = first_line[key]
            same = "again" if first_label == label else f"as {label!r} but line {line} says {first_label!r}"
            raise KserError(f"{where} lists {path} {same} (first at line {line}); list each file once")
        first_line[key] = (line_number, label)
        clips.append(ClipSource(str(path), label, speaker, clip_id))
    return clips, skipped


def _listing_text(listing: Path) -> str:
    """The listing as text: UTF-8, with or without the byte-order mark of Excel's "CSV UTF-8".
    Any other encoding is refused at its first bad line, since a guessed one would misspell paths."""
    data = listing.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise KserError(
            f"{listing}:{line}: not UTF-8 text (byte 0x{data[error.start]:02x}); save the listing as UTF-8"
        ) from None


def _csv_rows(reader: csv.DictReader, listing: Path) -> Iterator[dict[str, str]]:
    """The reader's rows; a line the csv module cannot parse is one error naming it."""
    try:
        yield from reader
    except csv.Error as error:
        raise KserError(f"{listing}:{reader.line_num}: {error}") from None
