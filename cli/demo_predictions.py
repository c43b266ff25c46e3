"""``make demo``'s last step: one held-out clip per emotion, its true label beside the prediction.

Why: the demo used to end on a single prediction, wrong, with no comment. A handful of clips of the
test split's speakers (never trained on), one per emotion, each with the truth read from its
CREMA-D file name and the count right, say honestly what the small demo model does on new voices.

    python -m kser_cli.demo_predictions RECORDS_DIR AUDIO_DIR EXPORT_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Sequence

from kser.layouts import parse_crema_d_name
from kser.records import MANIFEST_FILE


def held_out_clips(records_dir: str | Path, audio_dir: str | Path) -> list[tuple[Path, str]]:
    """(file, true label): the first clip of each label, in the records' label order, spoken by
    a speaker of the records' test split."""
    manifest = json.loads((Path(records_dir) / MANIFEST_FILE).read_text())
    speakers = set(manifest["splits"]["test"]["speakers"])
    first: dict[str, Path] = {}
    for path in sorted(Path(audio_dir).glob("*.wav")):
        parsed = parse_crema_d_name(path.stem)
        if isinstance(parsed, tuple) and parsed[0] in speakers:
            first.setdefault(parsed[1], path)
    return [(first[label], label) for label in manifest["label_names"] if label in first]


def report(rows: Sequence[tuple[str, str, str | None]], classes: int) -> list[str]:
    """One line per (file name, true label, predicted label or None for an error), then the count."""
    lines = [f"  {name}  true {true}, predicted {predicted or 'nothing (error)'}" for name, true, predicted in rows]
    right = sum(true == predicted for _, true, predicted in rows)
    lines.append(f"{right} of {len(rows)} right (chance: 1 in {classes})")
    return lines


def main(argv: list[str]) -> None:
    if len(argv) != 4:
        sys.exit("usage: python -m kser_cli.demo_predictions RECORDS_DIR AUDIO_DIR EXPORT_DIR")
    from kser.quiet import quiet_native_imports

    quiet_native_imports()
    from kser.predict import load_exported, predict_files

    records_dir, audio_dir, export_dir = argv[1:]
    clips = held_out_clips(records_dir, audio_dir)
    exported = load_exported(export_dir)
    predictions = predict_files(exported, [path for path, _ in clips])
    rows = [(path.name, true, prediction.label) for (path, true), prediction in zip(clips, predictions)]
    print("\n".join(report(rows, len(exported.label_names))))


if __name__ == "__main__":
    main(sys.argv)
