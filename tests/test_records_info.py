"""kser.records_info: the one reader of manifest.json, typed, and one clear error for any damage."""

import json

import pytest

from kser.config import AudioConfig, BuildConfig, RecordsConfig
from kser.errors import KserError
from kser.records_info import read_records_info
from kser_tfrecords_builder import build_records
from tests.synthetic import write_crema_d


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    root = tmp_path_factory.mktemp("records_info")
    write_crema_d(root / "audio", actors=6, sentences=("DFA",), seconds=(0.2, 0.3))
    config = BuildConfig(
        data_dir=str(root / "audio"), output_dir=str(root / "records"), audio=AudioConfig(clip_seconds=0.25),
        records=RecordsConfig(shard_size_mb=1), workers=1,
    )
    build_records(config, progress_stream=open("/dev/null", "w"))
    return root / "records"


def test_reads_what_build_records_writes(records):
    info = read_records_info(records)
    raw = json.loads((records / "manifest.json").read_text())
    assert info.label_names == ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")
    assert info.audio == AudioConfig(clip_seconds=0.25) and info.clip_samples == 4000
    assert info.seed == 0 and info.split_strategy == "speaker" and info.waveform_encoding == "int16"
    assert sum(split.clips for split in info.splits.values()) == raw["total_clips"] == 36
    for name, split in info.splits.items():
        assert split.clips == sum(split.class_counts.values()) == raw["splits"][name]["clips"]
        assert set(split.speakers) == set(split.speaker_class_counts)
        assert all((records / shard).is_file() for shard in split.shards)


@pytest.mark.parametrize(
    "content, problem",
    [
        ("[1, 2]", "the top level is not an object"),
        ('{"foo": 1}', "config is missing"),
        ("not json {", "not valid JSON"),
        (None, "splits.train.clips should be an integer, not \"many\""),  # a real manifest with one field of the wrong type
        ("drop:label_names", "label_names is missing"),
        ("drop:waveform", "waveform is missing"),
        ("audio:list", "config.audio should be an object"),
    ],
)
def test_a_damaged_manifest_of_any_shape_is_one_clear_error(records, tmp_path, content, problem):
    manifest = json.loads((records / "manifest.json").read_text())
    if content is None:
        manifest["splits"]["train"]["clips"] = "many"
        content = json.dumps(manifest)
    elif content.startswith("drop:"):
        del manifest[content[5:]]
        content = json.dumps(manifest)
    elif content == "audio:list":
        manifest["config"]["audio"] = [16000]
        content = json.dumps(manifest)
    (tmp_path / "manifest.json").write_text(content)
    with pytest.raises(KserError, match=f"manifest.json is damaged: {problem}"):
        read_records_info(tmp_path)


def test_a_missing_manifest_says_the_build_is_unfinished(tmp_path):
    with pytest.raises(KserError, match="no manifest.json: not a finished kser build-records output"):
        read_records_info(tmp_path)
