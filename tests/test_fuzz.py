"""Fuzzed inputs through ``kser build-records``: 210 bad or odd files (tests/fuzz_audio.py).

No traceback; every file is used or skipped with a reason; the manifest's counts add up; and a
second build of the same tree is identical. ``kser predict`` gets the same tree in test_export.py.
"""

import json
from pathlib import Path

import pytest

from tests.cli_runner import run_kser
from tests.fuzz_audio import write_fuzz_corpus
from tests.records_reader import manifest_without_paths


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz") / "data"
    return root, write_fuzz_corpus(root)


def _build(data: Path, output: Path):
    return run_kser(
        "build-records", f"--data_dir={data}", f"--output_dir={output}", "--layout=folders",
        "--split=random", "--clip_seconds=0.5", "--workers=2",
    )


def test_every_fuzzed_file_is_used_or_skipped_with_a_reason_and_builds_repeat(corpus, tmp_path):
    data, files = corpus
    assert len(files) >= 200
    first = _build(data, tmp_path / "first")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "Traceback" not in first.stderr + first.stdout
    manifest = json.loads((tmp_path / "first" / "manifest.json").read_text())

    skipped = {entry["path"]: entry["reason"] for entry in manifest["skipped"]}
    assert all(reason.strip() for reason in skipped.values())
    assert set(skipped) <= set(files)
    assert manifest["total_clips"] + len(skipped) == len(files)
    assert sum(split["clips"] for split in manifest["splits"].values()) == manifest["total_clips"]
    for split in manifest["splits"].values():
        assert sum(split["class_counts"].values()) == split["clips"] == sum(s["records"] for s in split["shards"])
    for path, usable in files.items():
        if usable is True:
            assert path not in skipped, f"{path}: {skipped.get(path)}"
        elif usable is False:
            assert path in skipped, f"{path} was used"
    truncated = [w for w in manifest["warnings"] if "truncated" in w["message"]]
    assert truncated and all(w["path"] not in skipped for w in truncated)  # used, with a warning

    second = _build(data, tmp_path / "second")
    assert second.returncode == 0, second.stderr[-3000:]
    assert manifest_without_paths(tmp_path / "second") == manifest_without_paths(tmp_path / "first")
