"""``kser predict``'s output formats: tables for people and spreadsheets, JSON for programs.

Every input file gets an entry in every format, failed ones included (their ``error`` set and no
label), so a program reading the output can tell "not predicted" from "missing". Probabilities are
written with 6 decimals: enough to rank and to average, short enough to read.

* ``tsv`` / ``csv``: a header, then one row per file: path, label, one column per class, audio
  seconds, error. With windows, a ``window_start`` column follows the path; the file's own row
  leaves it empty and each window gets a row of its own below it.
* ``jsonl``: one object per file (``path``, ``label``, ``probabilities``, ``audio_seconds``,
  ``processing_seconds``, ``error``, ``warnings``, and ``windows`` when asked), written as each
  file finishes.
* ``json``: one document: ``label_names``, ``files`` (the jsonl objects) and ``summary``.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Sequence

from kser.predict import FilePrediction, overall_rtf

FORMATS = ("tsv", "csv", "json", "jsonl")
DECIMALS = 6


def _round(value: float) -> float:
    return round(float(value), DECIMALS)


def prediction_record(prediction: FilePrediction, windows: bool) -> dict[str, Any]:
    """The JSON object of one file."""
    record: dict[str, Any] = {
        "path": prediction.path,
        "label": prediction.label,
        "probabilities": {name: _round(p) for name, p in prediction.probabilities.items()},
        "audio_seconds": _round(prediction.audio_seconds),
        "processing_seconds": _round(prediction.processing_seconds),
        "error": prediction.error,
        "warnings": list(prediction.warnings),
    }
    if windows:
        record["windows"] = [
            {"start_seconds": _round(w.start_seconds), "label": w.label,
             "probabilities": dict(zip(prediction.probabilities, (_round(p) for p in w.probabilities)))}
            for w in prediction.windows
        ]
    return record


def summary(predictions: Sequence[FilePrediction]) -> dict[str, Any]:
    """Counts, audio and processing seconds, and the real-time factor over the files that worked."""
    done = [p for p in predictions if p.ok]
    rtf = overall_rtf(predictions)
    return {
        "files": len(predictions),
        "predicted": len(done),
        "failed": len(predictions) - len(done),
        "with_warnings": sum(1 for p in done if p.warnings),
        "audio_seconds": _round(sum(p.audio_seconds for p in done)),
        "processing_seconds": _round(sum(p.processing_seconds for p in done)),
        "real_time_factor": None if rtf is None else _round(rtf),
    }


class PredictionWriter:
    """Renders predictions in one of FORMATS, file by file where the format allows it."""

    def __init__(self, output_format: str, label_names: Sequence[str], windows: bool) -> None:
        if output_format not in FORMATS:
            raise ValueError(f"unknown format {output_format!r}; choose one of {', '.join(FORMATS)}")
        self.format = output_format
        self.label_names = tuple(label_names)
        self.windows = windows

    @property
    def streams(self) -> bool:
        """Whether each file's text can be written as soon as it is predicted (all but json)."""
        return self.format != "json"

    def _table_line(self, fields: Sequence[Any]) -> str:
        buffer = io.StringIO()
        csv.writer(buffer, delimiter="\t" if self.format == "tsv" else ",", lineterminator="\n").writerow(fields)
        return buffer.getvalue()

    def header(self) -> str:
        if self.format not in ("tsv", "csv"):
            return ""
        window = ["window_start"] if self.windows else []
        return self._table_line(["path", *window, "label", *self.label_names, "audio_seconds", "error"])

    def file_text(self, prediction: FilePrediction) -> str:
        """The text of one file in a streaming format."""
        if self.format == "jsonl":
            return json.dumps(prediction_record(prediction, self.windows)) + "\n"
        if self.format == "json":
            raise ValueError("json is written whole by document(), not per file")
        probabilities = [f"{prediction.probabilities[name]:.{DECIMALS}f}" if prediction.ok else "" for name in self.label_names]
        window = [""] if self.windows else []
        seconds = f"{prediction.audio_seconds:.3f}" if prediction.ok else ""
        lines = [self._table_line([prediction.path, *window, prediction.label or "", *probabilities, seconds, prediction.error or ""])]
        if self.windows:
            for w in prediction.windows:
                row = [f"{p:.{DECIMALS}f}" for p in w.probabilities]
                lines.append(self._table_line([prediction.path, f"{w.start_seconds:.2f}", w.label, *row, "", ""]))
        return "".join(lines)

    def document(self, predictions: Sequence[FilePrediction]) -> str:
        """The whole output for ``predictions`` (any format)."""
        if self.format == "json":
            payload = {
                "label_names": list(self.label_names),
                "files": [prediction_record(p, self.windows) for p in predictions],
                "summary": summary(predictions),
            }
            return json.dumps(payload, indent=2) + "\n"
        return self.header() + "".join(self.file_text(p) for p in predictions)
