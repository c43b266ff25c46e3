"""End to end: audio folder -> shards + manifest, read back with TensorFlow."""

import collections
import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile

from kser.config import AudioConfig, BuildConfig, CREMA_D_EMOTIONS, RecordsConfig, SplitConfig
from kser.errors import KserError
from kser.splits import SPLITS
from tests.records_reader import manifest_without_paths, read_split
from tests.synthetic import tone, write_crema_d
from kser_tfrecords_builder import build_records

SHORT = AudioConfig(clip_seconds=0.5)


def config_for(data_dir, output_dir, **overrides):
    settings = dict(audio=SHORT, records=RecordsConfig(shard_size_mb=0.1), workers=1)
    settings.update(overrides)
    return BuildConfig(data_dir=str(data_dir), output_dir=str(output_dir), **settings)


@pytest.fixture(scope="module")
def crema(tmp_path_factory):
    root = tmp_path_factory.mktemp("crema")
    write_crema_d(root / "data", actors=8)
    return root / "data"


@pytest.fixture(scope="module")
def built(crema, tmp_path_factory):
    output = tmp_path_factory.mktemp("records")
    result = build_records(config_for(crema, output, workers=2), progress_stream=open("/dev/null", "w"))
    return result


def test_records_match_manifest_counts_labels_and_speakers(built, crema):
    manifest = built.manifest
    assert manifest["label_names"] == list(CREMA_D_EMOTIONS)
    assert manifest["total_clips"] == 8 * 2 * 6
    seen_speakers = {}
    for split in SPLITS:
        rows = read_split(built.output_dir, split)
        info = manifest["splits"][split]
        assert len(rows) == info["clips"] == sum(s["records"] for s in info["shards"])
        counts = collections.Counter(CREMA_D_EMOTIONS[row["label"]] for row in rows)
        assert dict(counts) == {k: v for k, v in info["class_counts"].items() if v}
        assert sorted({row["speaker"] for row in rows}) == info["speakers"]
        per_speaker = collections.Counter((row["speaker"], CREMA_D_EMOTIONS[row["label"]]) for row in rows)
        assert per_speaker == collections.Counter(
            {(speaker, label): n for speaker, counts in info["speaker_class_counts"].items() for label, n in counts.items()}
        )
        seen_speakers[split] = set(info["speakers"])
        for row in rows:
            assert row["waveform"].shape == (8000,) and row["sample_rate"] == 16_000
            label, speaker = CREMA_D_EMOTIONS[row["label"]], row["speaker"]
            assert row["clip_id"].startswith(f"{speaker}_") and row["clip_id"].split("_")[2] == label
    assert not seen_speakers["train"] & seen_speakers["test"]
    assert not seen_speakers["train"] & seen_speakers["validation"]


def test_shards_are_named_balanced_and_checksummed(built):
    import hashlib

    for split in SPLITS:
        shards = built.manifest["splits"][split]["shards"]
        count = len(shards)
        for index, shard in enumerate(shards):
            assert shard["name"] == f"{split}-{index:05d}-of-{count:05d}.tfrecord"
            data = (built.output_dir / shard["name"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == shard["sha256"] and len(data) == shard["bytes"]
        sizes = [s["records"] for s in shards]
        assert max(sizes) - min(sizes) <= 1
    assert len(built.manifest["splits"]["train"]["shards"]) > 1


def test_stored_waveform_equals_the_prepared_clip(built, crema):
    from kser.audio import read_audio
    from kser.waveform import clip_rng, prepare

    row = read_split(built.output_dir, "test")[0]
    samples, _ = read_audio(str(crema / f"{row['clip_id']}.wav"), 16_000)
    expected = prepare(samples, SHORT, clip_rng(0, row["clip_id"])).samples
    peak = float(np.max(np.abs(expected)))
    assert float(np.max(np.abs(row["waveform"] - expected))) <= peak / 65534 * 1.01
    assert row["source_samples"] == samples.size


def test_manifest_records_configuration_and_version(built):
    manifest = json.loads((built.output_dir / "manifest.json").read_text())
    assert manifest["config"]["audio"]["noise_level"] == 0.035
    assert manifest["config"]["split"]["strategy"] == "speaker"
    assert manifest["seed"] == 0 and manifest["kser_version"]
    assert manifest["waveform"]["encoding"] == "int16" and "65534" in manifest["waveform"]["error"]


def test_worker_count_does_not_change_the_output(built, crema, tmp_path):
    single = build_records(config_for(crema, tmp_path / "one", workers=1), progress_stream=open("/dev/null", "w"))
    assert manifest_without_paths(single.output_dir) == manifest_without_paths(built.output_dir)


def test_rerun_resumes_and_other_configuration_is_refused(crema, tmp_path):
    devnull = open("/dev/null", "w")
    first = build_records(config_for(crema, tmp_path), progress_stream=devnull)
    again = build_records(config_for(crema, tmp_path), progress_stream=devnull)
    assert again.shards_written == 0 and again.shards_reused == first.shards_written
    assert again.manifest == first.manifest
    with pytest.raises(KserError, match="differs in: config.audio.noise_level"):
        build_records(config_for(crema, tmp_path, audio=AudioConfig(clip_seconds=0.5, noise_level=0.0)))
    replaced = build_records(
        config_for(crema, tmp_path, audio=AudioConfig(clip_seconds=0.5, noise_level=0.0), overwrite=True),
        progress_stream=devnull,
    )
    assert replaced.manifest["config"]["audio"]["noise_level"] == 0.0
    assert replaced.shards_reused == 0


def test_foreign_files_in_output_dir_are_protected(crema, tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(KserError, match="not from a kser build"):
        build_records(config_for(crema, tmp_path))
    with pytest.raises(KserError, match="only what kser wrote.*also holds 'precious.txt'"):
        build_records(config_for(crema, tmp_path, overwrite=True), progress_stream=open("/dev/null", "w"))
    assert (tmp_path / "precious.txt").read_text() == "keep me"
    (tmp_path / "precious.txt").unlink()
    build_records(config_for(crema, tmp_path), progress_stream=open("/dev/null", "w"))
    (tmp_path / "precious.txt").write_text("keep me")  # beside a finished build: --overwrite still refuses
    with pytest.raises(KserError, match="also holds 'precious.txt'"):
        build_records(config_for(crema, tmp_path, seed=5, overwrite=True), progress_stream=open("/dev/null", "w"))
    assert (tmp_path / "precious.txt").read_text() == "keep me" and (tmp_path / "manifest.json").is_file()


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(audio=AudioConfig(clip_seconds=1e9)), "clip length must be at most 60 s"),
        (dict(audio=AudioConfig(sample_rate=1)), "sample rate must be between 4000 and 384000 Hz"),
        (dict(audio=AudioConfig(clip_seconds=0.5, trim_db=-5)), "trim_db must be >= 0"),
        (dict(seed=-1), "seed must be between 0 and 2..32 - 1"),
        (dict(workers=-3), "workers must be between 0"),
    ],
)
def test_absurd_numbers_are_refused_before_anything_is_written(crema, tmp_path, overrides, message):
    with pytest.raises(KserError, match=message):
        build_records(config_for(crema, tmp_path / "out", **overrides))
    assert not (tmp_path / "out").exists()


def test_bad_files_are_skipped_reported_and_the_rest_kept(tmp_path):
    data = tmp_path / "data"
    write_crema_d(data, actors=3, sentences=("DFA",))
    (data / "1001_IEO_ANG_XX.wav").write_bytes(b"")
    (data / "1002_IEO_ANG_XX.wav").write_bytes(b"garbage" * 50)
    (data / "1003_IEO_XXX_XX.wav").write_bytes(b"garbage")
    soundfile.write(data / "1003_IEO_SAD_XX.wav", np.zeros(0, dtype=np.float32), 16_000)
    soundfile.write(data / "1002_IEO_NEU_XX.wav", np.zeros(4000, dtype=np.float32), 16_000)
    result = build_records(config_for(data, tmp_path / "out"), progress_stream=open("/dev/null", "w"))
    reasons = {re.sub(r".*/", "", s["path"]): s["reason"] for s in result.manifest["skipped"]}
    assert reasons.keys() == {"1001_IEO_ANG_XX.wav", "1002_IEO_ANG_XX.wav", "1003_IEO_XXX_XX.wav", "1003_IEO_SAD_XX.wav"}
    assert "empty file" in reasons["1001_IEO_ANG_XX.wav"]
    assert "not a readable audio file" in reasons["1002_IEO_ANG_XX.wav"]
    assert "unknown emotion" in reasons["1003_IEO_XXX_XX.wav"]
    assert "zero length" in reasons["1003_IEO_SAD_XX.wav"]
    assert result.manifest["total_clips"] == 3 * 6 + 1
    assert [p.rsplit("/", 1)[-1] for p in result.manifest["silent_clips"]] == ["1002_IEO_NEU_XX.wav"]


def test_strict_turns_a_skip_into_a_failure(tmp_path):
    data = tmp_path / "data"
    write_crema_d(data, actors=3, sentences=("DFA",))
    (data / "1001_IEO_ANG_XX.wav").write_bytes(b"garbage" * 50)
    with pytest.raises(KserError, match=r"--strict: .*1001_IEO_ANG_XX.wav: not a readable audio file"):
        build_records(config_for(data, tmp_path / "out", strict=True), progress_stream=open("/dev/null", "w"))
    assert not (tmp_path / "out" / "manifest.json").exists()
    assert not list((tmp_path / "out").glob("*.tmp"))


def test_random_split_and_other_layouts_build(tmp_path):
    data = tmp_path / "data"
    for label, frequency in (("calm", 200), ("angry", 400)):
        (data / label).mkdir(parents=True)
        for i in range(6):
            soundfile.write(data / label / f"{label}{i}.flac", tone(0.3, frequency, seed=i), 22_050)
    config = config_for(data, tmp_path / "out", layout="folders", split=SplitConfig(strategy="random"))
    result = build_records(config, progress_stream=open("/dev/null", "w"))
    assert result.manifest["label_names"] == ["angry", "calm"]
    assert result.manifest["splits"]["train"]["class_counts"] == {"angry": 4, "calm": 4}
    rows = read_split(result.output_dir, "train")
    assert {row["speaker"] for row in rows} == {""}


def test_noise_level_zero_and_float32_store_the_clean_clip_exactly(tmp_path):
    from kser.waveform import normalize, pad_or_trim

    data = tmp_path / "data"
    write_crema_d(data, actors=3, sentences=("DFA",))
    config = config_for(
        data, tmp_path / "out", audio=AudioConfig(clip_seconds=0.5, noise_level=0.0), records=RecordsConfig(waveform_encoding="float32")
    )
    result = build_records(config, progress_stream=open("/dev/null", "w"))
    row = read_split(result.output_dir, "train")[0]
    samples, _ = soundfile.read(data / f"{row['clip_id']}.wav", dtype="float32")
    np.testing.assert_array_equal(row["waveform"], pad_or_trim(normalize(samples)[0], 8000))


def test_labels_and_split_none_give_test_only_records_with_excluded_counts(tmp_path):
    data = tmp_path / "data"
    write_crema_d(data, actors=3, sentences=("DFA",))
    config = config_for(data, tmp_path / "out", labels=("SAD", "ANG"), split=SplitConfig(strategy="none"))
    result = build_records(config, progress_stream=open("/dev/null", "w"))
    manifest = result.manifest
    assert manifest["label_names"] == ["SAD", "ANG"]
    assert manifest["excluded"] == {"DIS": 3, "FEA": 3, "HAP": 3, "NEU": 3}
    assert manifest["splits"]["train"]["clips"] == manifest["splits"]["validation"]["clips"] == 0
    assert manifest["splits"]["test"]["clips"] == 6 and len(manifest["splits"]["test"]["speakers"]) == 3
    rows = read_split(result.output_dir, "test")
    assert sorted(manifest["label_names"][row["label"]] for row in rows) == ["ANG"] * 3 + ["SAD"] * 3


RAVDESS = Path(__file__).resolve().parents[2] / "shared" / "data" / "ravdess16k"


@pytest.mark.skipif(not RAVDESS.is_dir(), reason=f"real RAVDESS clips not found at {RAVDESS} (../shared is absent)")
def test_real_ravdess_clips_build_with_the_ravdess_layout(tmp_path):
    """A few real recordings (two actors, every emotion) through the ravdess layout."""
    chosen = [path for actor in ("Actor_01", "Actor_02") for path in sorted((RAVDESS / actor).glob("03-01-0[1-7]-01-01-01-*.flac"))]
    assert len(chosen) == 12, chosen
    data = tmp_path / "data"
    for path in chosen:
        (data / path.parent.name).mkdir(parents=True, exist_ok=True)
        (data / path.parent.name / path.name).symlink_to(path)
    config = config_for(data, tmp_path / "out", layout="ravdess", split=SplitConfig(strategy="none"), audio=AudioConfig())
    result = build_records(config, progress_stream=open("/dev/null", "w"))
    manifest = result.manifest
    assert manifest["skipped"] == []
    assert manifest["splits"]["test"]["speaker_class_counts"] == {
        actor: {label: 1 for label in CREMA_D_EMOTIONS} for actor in ("01", "02")
    }
    rows = read_split(result.output_dir, "test")
    assert all(np.isfinite(row["waveform"]).all() and row["waveform"].std() > 0.5 for row in rows)
    assert all(row["source_samples"] > 3 * 16_000 for row in rows)  # RAVDESS clips are 3.1-5 s long


def test_a_successful_build_warns_about_what_a_user_should_know(tmp_path):
    """Near-duplicate labels, classes missing from a split, small splits, truncated and long files:
    each one manifest warning with a one-line message, and the build still succeeds."""
    data = tmp_path / "data"
    data.mkdir()
    rows = ["path,label,speaker"]
    for speaker in range(6):
        for label, frequency in (("ANG", 200), ("ang ", 300), ("SAD", 400)):
            name = f"s{speaker}_{label.strip()}_{frequency}.wav"
            soundfile.write(data / name, tone(0.6, frequency), 16_000)
            rows.append(f"{name},{label},s{speaker}")
    soundfile.write(data / "one.wav", tone(0.6, 500), 16_000)  # a class of one clip: absent from two splits
    rows.append("one.wav,angry,s2")
    soundfile.write(data / "long.wav", tone(6.0, 250), 16_000)  # cut by 5.5 s to fit 0.5 s
    rows.append("long.wav,SAD,s0")
    soundfile.write(data / "full.wav", tone(1.0, 250), 16_000, subtype="PCM_16")
    whole = (data / "full.wav").read_bytes()
    (data / "truncated.wav").write_bytes(whole[: len(whole) // 2])
    (data / "full.wav").unlink()
    rows.append("truncated.wav,ANG,s1")
    (data / "labels.csv").write_text("\n".join(rows) + "\n")

    result = build_records(config_for(data, tmp_path / "out", layout="csv"), progress_stream=open("/dev/null", "w"))
    warnings = result.manifest["warnings"]
    kinds = collections.Counter(w["kind"] for w in warnings)
    assert kinds["near_duplicate_labels"] == 1 and kinds["long_clips"] == 1 and kinds["clip"] == 1
    assert kinds["small_split"] == 3  # 21 clips in all: every split is under the minimum
    empty = [w for w in warnings if w["kind"] == "empty_class"]
    assert len(empty) == 2 and all(w["labels"] == ["angry"] for w in empty)
    by_kind = {w["kind"]: w for w in warnings}
    assert by_kind["near_duplicate_labels"]["labels"] == ["ANG", "ang"]
    assert by_kind["long_clips"]["count"] == 1 and by_kind["long_clips"]["longest"]["seconds"] == 6.0
    assert "truncated" in by_kind["clip"]["message"] and by_kind["clip"]["path"].endswith("truncated.wav")
    assert all("\n" not in w["message"] for w in warnings)
    assert result.manifest["total_clips"] == 21  # warned clips are used, not skipped


def test_shard_counts_for_workers_and_old_builds_keep_their_fingerprint():
    """--num_shards sets a split's shard count, --min_shards raises it (both capped at the clips);
    at their defaults neither enters the fingerprint, so builds made before they existed resume."""
    from kser.layouts import ClipSource
    from kser_tfrecords_builder.plan import plan_shards
    from kser_tfrecords_builder.state import fingerprint

    clips = [ClipSource(f"/x/{i}.wav", "ANG" if i % 2 else "SAD", f"s{i % 3}", str(i)) for i in range(5)]

    def counts(**records) -> int:
        config = BuildConfig(data_dir="d", output_dir="o", records=RecordsConfig(**records))
        return len(plan_shards({"train": clips, "test": clips[:2]}, config))

    assert counts() == 2  # one per split: 150 MB holds them all
    assert counts(min_shards=3) == 3 + 2  # test has 2 clips: a shard never holds no clip
    assert counts(num_shards=4) == 4 + 2
    assert counts(num_shards=1, min_shards=2) == 2 + 2
    default = fingerprint(BuildConfig(data_dir="d", output_dir="o"), [])["config"]["records"]
    assert set(default) == {"shard_size_mb", "waveform_encoding"}
    assert fingerprint(BuildConfig(data_dir="d", output_dir="o", records=RecordsConfig(min_shards=2)), [])["config"]["records"]["min_shards"] == 2


@pytest.mark.parametrize("records", [RecordsConfig(min_shards=0), RecordsConfig(num_shards=0)])
def test_shard_counts_below_one_are_refused(tmp_path, records):
    with pytest.raises(KserError, match="shards must be between 1 and"):
        build_records(BuildConfig(data_dir=str(tmp_path), output_dir=str(tmp_path / "out"), records=records))


def test_a_build_from_two_corpora_keeps_their_speakers_apart(crema, tmp_path):
    """--also: a second corpus joins the same records; speaker splits and counts cover both."""
    other = tmp_path / "other"
    write_crema_d(other, actors=4, seed=7)
    result = build_records(
        config_for(crema, tmp_path / "records", also=(f"crema_d={other}",)), progress_stream=open("/dev/null", "w")
    )
    manifest = result.manifest
    assert manifest["total_clips"] == (8 + 4) * 2 * 6 and manifest["also"] == [f"crema_d={other}"]
    speakers = {split: set(manifest["splits"][split]["speakers"]) for split in SPLITS}
    every = set().union(*speakers.values())
    assert len(every) == 12 and sum(speaker.startswith("crema_d:") for speaker in every) == 4
    assert not any(speakers[a] & speakers[b] for a in SPLITS for b in SPLITS if a < b)  # split by speaker, across corpora
    assert {row["clip_id"] for row in read_split(result.output_dir, "train")} & {f"crema_d:{p.stem}" for p in other.glob("*.wav")}
    # Another spelling of the same folder resumes the build (the folders are not fingerprinted, as
    # data_dir is not), and the manifest names the folder resolved.
    respelled = tmp_path / "x" / ".." / "other"
    (tmp_path / "x").mkdir()
    again = build_records(
        config_for(crema, tmp_path / "records", also=(f"crema_d={respelled}",)), progress_stream=open("/dev/null", "w")
    )
    assert again.manifest["also"] == [f"crema_d={other.resolve()}"] and again.manifest["inputs_sha256"] == manifest["inputs_sha256"]
