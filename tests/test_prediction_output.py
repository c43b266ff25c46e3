"""kser.prediction_output: every format lists every file, failed ones included, and parses back."""

import csv
import io
import json

import pytest

from kser.predict import FilePrediction, WindowPrediction
from kser.prediction_output import FORMATS, PredictionWriter, summary

NAMES = ("ANG", "HAP", "SAD")


def _predictions() -> list[FilePrediction]:
    good = FilePrediction(
        path="a, b.wav",  # a comma and a space: csv must quote it
        label="HAP",
        probabilities={"ANG": 0.1, "HAP": 0.7, "SAD": 0.2},
        audio_seconds=4.0,
        processing_seconds=0.5,
        windows=(
            WindowPrediction(0.0, "HAP", 0.8, (0.1, 0.8, 0.1)),
            WindowPrediction(1.0, "SAD", 0.5, (0.1, 0.4, 0.5)),
        ),
    )
    quiet = FilePrediction(
        path="quiet.wav", label="SAD", probabilities={"ANG": 0.2, "HAP": 0.2, "SAD": 0.6},
        audio_seconds=1.0, processing_seconds=0.25, warnings=("silent (digital silence)",),
    )
    bad = FilePrediction(path="bad.wav", error="not a readable audio file")
    return [good, quiet, bad]


@pytest.mark.parametrize("delimiter, output_format", [("\t", "tsv"), (",", "csv")])
def test_tables_have_a_header_and_a_row_per_file(delimiter, output_format):
    text = PredictionWriter(output_format, NAMES, windows=False).document(_predictions())
    rows = list(csv.DictReader(io.StringIO(text), delimiter=delimiter))
    assert [r["path"] for r in rows] == ["a, b.wav", "quiet.wav", "bad.wav"]
    assert rows[0]["label"] == "HAP" and float(rows[0]["HAP"]) == 0.7 and float(rows[0]["audio_seconds"]) == 4.0
    assert rows[2]["label"] == "" and rows[2]["ANG"] == "" and rows[2]["error"] == "not a readable audio file"


def test_table_windows_follow_their_file():
    text = PredictionWriter("csv", NAMES, windows=True).document(_predictions()[:1])
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["window_start"], r["label"]) for r in rows] == [("", "HAP"), ("0.00", "HAP"), ("1.00", "SAD")]
    assert float(rows[2]["SAD"]) == 0.5


def test_jsonl_streams_one_object_per_file_and_json_is_one_document():
    predictions = _predictions()
    lines = PredictionWriter("jsonl", NAMES, windows=True).document(predictions).splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["label"] for r in records] == ["HAP", "SAD", None]
    assert records[0]["windows"][1] == {"start_seconds": 1.0, "label": "SAD", "probabilities": {"ANG": 0.1, "HAP": 0.4, "SAD": 0.5}}
    assert records[1]["warnings"] == ["silent (digital silence)"] and records[2]["error"]

    document = json.loads(PredictionWriter("json", NAMES, windows=False).document(predictions))
    assert document["label_names"] == list(NAMES)
    assert [f["path"] for f in document["files"]] == [p.path for p in predictions]
    assert "windows" not in document["files"][0]
    assert document["summary"] == summary(predictions)


def test_summary_counts_and_real_time_factor():
    totals = summary(_predictions())
    assert totals == {
        "files": 3, "predicted": 2, "failed": 1, "with_warnings": 1,
        "audio_seconds": 5.0, "processing_seconds": 0.75, "real_time_factor": 0.15,
    }


def test_json_cannot_stream_and_unknown_formats_are_refused():
    assert [PredictionWriter(f, NAMES, False).streams for f in FORMATS] == [True, True, False, True]
    with pytest.raises(ValueError, match="written whole"):
        PredictionWriter("json", NAMES, False).file_text(_predictions()[0])
    with pytest.raises(ValueError, match="unknown format 'xml'"):
        PredictionWriter("xml", NAMES, False)
