"""Layouts turn file names and folders into (label, speaker, clip id) without opening audio."""

from pathlib import Path

import pytest

from kser import layouts
from kser.config import CREMA_D_EMOTIONS
from kser.errors import KserError


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_crema_d_names_parse_to_actor_and_emotion(tmp_path):
    touch(tmp_path / "1001_DFA_ANG_XX.wav")
    touch(tmp_path / "1091_TIE_SAD_HI.flac")
    scan = layouts.scan(tmp_path, "crema_d")
    assert scan.label_names == CREMA_D_EMOTIONS
    found = {(c.clip_id, c.label, c.speaker) for c in scan.clips}
    assert found == {("1001_DFA_ANG_XX", "ANG", "1001"), ("1091_TIE_SAD_HI", "SAD", "1091")}
    assert scan.skipped == []


@pytest.mark.parametrize(
    "name, reason",
    [
        ("1001_DFA_XYZ_XX.wav", "unknown emotion code 'XYZ'"),
        ("1001-DFA-ANG-XX.wav", "file name is not AAAA_SSS_EEE_LL"),
        ("101_DFA_ANG_XX.wav", "file name is not AAAA_SSS_EEE_LL"),
        ("notes.txt", "not an audio file extension (.txt)"),
    ],
)
def test_crema_d_bad_names_are_skipped_with_reason(tmp_path, name, reason):
    touch(tmp_path / "1001_DFA_ANG_XX.wav")
    touch(tmp_path / name)
    scan = layouts.scan(tmp_path, "crema_d")
    assert len(scan.clips) == 1
    assert len(scan.skipped) == 1 and scan.skipped[0].path.endswith(name)
    assert reason in scan.skipped[0].reason


def test_folders_layout_labels_from_parent_and_speaker_pattern(tmp_path):
    touch(tmp_path / "happy" / "s01_a.wav")
    touch(tmp_path / "sad" / "deep" / "s02_b.wav")
    touch(tmp_path / "loose.wav")
    scan = layouts.scan(tmp_path, "folders", layouts.LayoutOptions(speaker_pattern=r"^(s\d+)_"))
    assert scan.label_names == ("happy", "sad")
    assert {(c.label, c.speaker, c.clip_id) for c in scan.clips} == {
        ("happy", "s01", "happy/s01_a"),
        ("sad", "s02", "sad/deep/s02_b"),
    }
    assert [s.reason for s in scan.skipped] == ["file is not inside a label folder"]


def test_folders_layout_without_pattern_has_unknown_speakers(tmp_path):
    touch(tmp_path / "angry" / "x.wav")
    scan = layouts.scan(tmp_path, "folders")
    assert scan.clips[0].speaker == layouts.UNKNOWN_SPEAKER


def test_csv_layout_reads_listing_relative_to_its_folder(tmp_path):
    (tmp_path / "labels.csv").write_text("path,label,speaker\naudio/a.wav,calm,sp1\naudio/b.wav,angry,\n,x,\n")
    scan = layouts.scan(tmp_path, "csv")
    assert scan.label_names == ("angry", "calm")
    clips = {c.clip_id: c for c in scan.clips}
    assert clips["audio/a"].path == str(tmp_path / "audio" / "a.wav")
    assert clips["audio/a"].speaker == "sp1" and clips["audio/b"].speaker == layouts.UNKNOWN_SPEAKER
    assert scan.skipped[0].path.endswith("labels.csv:4")


def test_csv_layout_needs_path_and_label_columns(tmp_path):
    (tmp_path / "labels.csv").write_text("file,emotion\na.wav,calm\n")
    with pytest.raises(KserError, match="path,label"):
        layouts.scan(tmp_path, "csv")


@pytest.mark.parametrize("setup, message", [("missing", "does not exist"), ("empty", "no usable audio files")])
def test_unusable_data_dir_is_a_clear_error(tmp_path, setup, message):
    data_dir = tmp_path / "data"
    if setup == "empty":
        data_dir.mkdir()
    with pytest.raises(KserError, match=message):
        layouts.scan(data_dir, "crema_d")


def test_unknown_layout_lists_known_ones(tmp_path):
    with pytest.raises(KserError, match="crema_d"):
        layouts.scan(tmp_path, "ravdess_typo")


def test_duplicate_clip_ids_are_refused(tmp_path):
    touch(tmp_path / "a" / "1001_DFA_ANG_XX.wav")
    touch(tmp_path / "b" / "1001_DFA_ANG_XX.wav")
    with pytest.raises(KserError, match="share the clip id"):
        layouts.scan(tmp_path, "crema_d")
