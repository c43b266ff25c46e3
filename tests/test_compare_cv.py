"""benchmarks/compare_cv.py reads the retired GPU script's published results: a rerun replaces a
failure, and a side's runs with other seeds pair in order."""

import json

from benchmarks.compare_cv import load, read_results


def test_results_rerun_replaces_a_failure_and_compare_pairs_seeds(tmp_path):
    lines = [
        {"run": "small", "fold": 0, "seed": 0, "error": "cuBLAS"},
        {"run": "small", "fold": 0, "seed": 0, "uar": 0.5, "test_speakers": ["a"]},
        {"run": "small", "fold": 0, "seed": 100, "uar": 0.6, "test_speakers": ["a"]},
        {"run": "small", "fold": 1, "seed": 1, "uar": 0.7, "test_speakers": ["b"]},
    ]
    path = tmp_path / "results.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert len(read_results(path)) == 3
    folds = load(f"{path}:small,small@seed+100")
    assert {key: value["uar"] for key, value in folds.items()} == {(0, 0): 0.5, (1, 0): 0.7, (0, 1): 0.6}
