"""Layouts turn file names and folders into (label, speaker, clip id) without opening audio."""

from pathlib import Path

import pytest

from kser import layouts
from kser.config import CREMA_D_EMOTIONS
from kser.errors import KserError
from tests.cli_runner import assert_one_line_error, run_kser


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


@pytest.mark.parametrize(
    "second, message",
    [("audio/./a.wav,calm", "labels.csv:3 lists .* again \\(first at line 2\\)"),
     ("audio/a.wav,angry", "labels.csv:3 lists .* as 'angry' but line 2 says 'calm'")],
)
def test_csv_layout_refuses_a_file_listed_twice(tmp_path, second, message):
    (tmp_path / "labels.csv").write_text(f"path,label\naudio/a.wav,calm\n{second}\n")
    with pytest.raises(KserError, match=message):
        layouts.scan(tmp_path, "csv")


def test_csv_layout_reads_excel_s_csv_utf_8_with_its_byte_order_mark(tmp_path):
    (tmp_path / "labels.csv").write_bytes("path,label\naudio/café.wav,calm\n".encode("utf-8-sig"))
    assert [c.path for c in layouts.scan(tmp_path, "csv").clips] == [str(tmp_path / "audio" / "café.wav")]


def test_csv_layout_skips_a_line_with_a_nul_byte(tmp_path):
    (tmp_path / "labels.csv").write_text("path,label\n\naudio/a.wav,calm\naudio/b\0.wav,calm\n")
    scan = layouts.scan(tmp_path, "csv")
    assert [c.clip_id for c in scan.clips] == ["audio/a"]
    assert scan.skipped[0].path.endswith("labels.csv:4") and "NUL byte" in scan.skipped[0].reason


def test_a_csv_listing_not_in_utf_8_is_one_line_naming_the_file_and_line(tmp_path):
    (tmp_path / "audio").mkdir()
    (tmp_path / "labels.csv").write_bytes("path,label\naudio/a.wav,calm\naudio/café.wav,calm\n".encode("latin-1"))
    result = run_kser("build-records", "--layout=csv", f"--data_dir={tmp_path}", f"--output_dir={tmp_path / 'records'}")
    assert_one_line_error(result, f"{tmp_path / 'labels.csv'}:3: not UTF-8 text (byte 0xe9)")
    assert not (tmp_path / "records").exists()


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


# One synthetic tree per emotion corpus, named exactly as the corpus names its files.
CORPUS_TREES = {
    "ravdess": {
        "files": [
            "Actor_01/03-01-05-01-01-01-01.wav",  # angry
            "Actor_01/03-01-01-01-01-01-01.wav",  # neutral
            "Actor_02/03-01-07-02-02-02-02.flac",  # disgust
            "Actor_02/03-01-02-01-01-01-02.wav",  # calm: outside the default label set
            "Actor_02/03-01-08-01-01-01-02.wav",  # surprised: outside the default label set
        ],
        "expected": {
            ("03-01-05-01-01-01-01", "ANG", "01"),
            ("03-01-01-01-01-01-01", "NEU", "01"),
            ("03-01-07-02-02-02-02", "DIS", "02"),
        },
        "excluded": {"CAL": 1, "SUR": 1},
        "bad": ("03-01-09-01-01-01-01.wav", "unknown emotion code '09'"),
    },
    "emodb": {
        "files": ["wav/03a01Wa.wav", "wav/08b02Fb.wav", "wav/16a05Tc.wav", "wav/10a07La.wav"],
        "expected": {("03a01Wa", "ANG", "03"), ("08b02Fb", "HAP", "08"), ("16a05Tc", "SAD", "16")},
        "excluded": {"BOR": 1},
        "bad": ("03a01Xa.wav", "unknown emotion code 'X'"),
    },
    "tess": {
        "files": [
            "OAF_angry/OAF_back_angry.wav",
            "YAF_fear/YAF_dog_fear.wav",
            "YAF_neutral/YAF_chair_neutral.wav",
            "YAF_pleasant_surprised/YAF_back_ps.wav",
        ],
        "expected": {("OAF_back_angry", "ANG", "OAF"), ("YAF_dog_fear", "FEA", "YAF"), ("YAF_chair_neutral", "NEU", "YAF")},
        "excluded": {"SUR": 1},
        "bad": ("OAF_back_bored.wav", "unknown emotion code 'bored'"),
    },
    "savee": {
        "files": ["AudioData/DC/a01.wav", "AudioData/JE/sa02.wav", "AudioData/JE/d03.wav", "KL_n04.wav", "JK_su01.wav"],
        "expected": {("DC_a01", "ANG", "DC"), ("JE_sa02", "SAD", "JE"), ("JE_d03", "DIS", "JE"), ("KL_n04", "NEU", "KL")},
        "excluded": {"SUR": 1},
        "bad": ("JK_x01.wav", "file name is not [SPEAKER_]EENN"),
    },
}


@pytest.mark.parametrize("layout", sorted(CORPUS_TREES))
def test_emotion_corpus_layouts_map_codes_speakers_and_count_excluded(tmp_path, layout):
    tree = CORPUS_TREES[layout]
    for name in tree["files"]:
        touch(tmp_path / name)
    scan = layouts.scan(tmp_path, layout)
    assert scan.label_names == CREMA_D_EMOTIONS
    assert {(c.clip_id, c.label, c.speaker) for c in scan.clips} == tree["expected"]
    assert scan.excluded == tree["excluded"]
    assert scan.skipped == []


@pytest.mark.parametrize("layout", sorted(CORPUS_TREES))
def test_emotion_corpus_layouts_skip_bad_names_with_a_reason(tmp_path, layout):
    tree = CORPUS_TREES[layout]
    touch(tmp_path / tree["files"][0])
    name, reason = tree["bad"]
    touch(tmp_path / name)
    scan = layouts.scan(tmp_path, layout)
    assert len(scan.clips) == 1
    assert [s.path.endswith(name) for s in scan.skipped] == [True]
    assert reason in scan.skipped[0].reason


@pytest.mark.parametrize("layout", sorted(CORPUS_TREES) + ["crema_d"])
def test_every_layout_has_a_correctly_named_example(tmp_path, layout):
    touch(tmp_path / layouts.layout_example(layout))
    scan = layouts.scan(tmp_path, layout, layouts.LayoutOptions(labels=None))
    assert len(scan.clips) + sum(scan.excluded.values()) == 1


def test_labels_choose_and_order_the_label_set_and_the_rest_is_excluded(tmp_path):
    for name in CORPUS_TREES["ravdess"]["files"]:
        touch(tmp_path / name)
    scan = layouts.scan(tmp_path, "ravdess", layouts.LayoutOptions(labels=("SUR", "NEU", "ANG")))
    assert scan.label_names == ("SUR", "NEU", "ANG")
    assert sorted(c.label for c in scan.clips) == ["ANG", "NEU", "SUR"]
    assert scan.excluded == {"CAL": 1, "DIS": 1}


def test_labels_apply_to_folder_layouts_too(tmp_path):
    for label in ("angry", "calm", "sad"):
        touch(tmp_path / label / "x.wav")
    scan = layouts.scan(tmp_path, "folders", layouts.LayoutOptions(labels=("sad", "angry")))
    assert scan.label_names == ("sad", "angry")
    assert scan.excluded == {"calm": 1}


@pytest.mark.parametrize(
    "labels, message",
    [
        (("ANG", "XYZ"), "layout 'ravdess' has no label XYZ"),
        (("ANG", "BOR"), "layout 'ravdess' has no label BOR"),
        (("ANG", "FEA"), "no clip is labelled FEA"),
        (("ANG",), "at least two labels"),
        (("ANG", "ANG"), "distinct"),
    ],
)
def test_bad_label_sets_are_clear_errors(tmp_path, labels, message):
    for name in CORPUS_TREES["ravdess"]["files"]:
        touch(tmp_path / name)
    with pytest.raises(KserError, match=message):
        layouts.scan(tmp_path, "ravdess", layouts.LayoutOptions(labels=labels))


def test_more_corpora_join_with_prefixed_speakers_and_the_primary_label_set(tmp_path):
    """--also: EmoDB beside CREMA-D; EmoDB's boredom is outside the six and counted as excluded."""
    for name in ("1001_DFA_ANG_XX.wav", "1002_IEO_SAD_HI.wav"):
        touch(tmp_path / "crema" / name)
    for name in ("03a01Wa.wav", "03a01Ta.wav", "08b02La.wav"):  # anger, sadness, boredom
        touch(tmp_path / "emodb" / name)
    primary = layouts.scan(tmp_path / "crema", "crema_d")
    joined = layouts.with_corpora(primary, [f"emodb={tmp_path / 'emodb'}"])
    assert joined.label_names == primary.label_names == CREMA_D_EMOTIONS
    assert {(c.label, c.speaker, c.clip_id) for c in joined.clips} == {
        ("ANG", "1001", "1001_DFA_ANG_XX"),
        ("SAD", "1002", "1002_IEO_SAD_HI"),
        ("ANG", "emodb:03", "emodb:03a01Wa"),
        ("SAD", "emodb:03", "emodb:03a01Ta"),
    }
    assert joined.excluded == {"BOR": 1}
    with pytest.raises(KserError, match="write LAYOUT=DIR"):
        layouts.with_corpora(primary, [str(tmp_path / "emodb")])
    with pytest.raises(KserError, match="unknown layout 'emo'"):
        layouts.with_corpora(primary, [f"emo={tmp_path / 'emodb'}"])
    with pytest.raises(KserError, match="twice"):
        layouts.with_corpora(primary, [f"emodb={tmp_path / 'emodb'}", f"emodb={tmp_path / 'emodb'}"])
    with pytest.raises(KserError, match="does not exist"):
        layouts.with_corpora(primary, [f"tess={tmp_path / 'nowhere'}"])
    only_boredom = tmp_path / "bored"
    touch(only_boredom / "08b02La.wav")
    with pytest.raises(KserError, match=r"bored has one of the labels ANG, DIS"):
        layouts.with_corpora(primary, [f"emodb={only_boredom}"])
