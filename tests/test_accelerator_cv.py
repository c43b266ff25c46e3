"""benchmarks/accelerator_cv.py: the GPU cross-validation must see the clips, folds and class balance
that ``kser build-records`` and ``kser cross-validate`` would, or its figures mean something else."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks import accelerator_cv
from benchmarks.compare_cv import load
from kser.config import AudioConfig, TrainConfig
from kser.cross_validation import make_folds
from kser.data import speaker_class_counts
from kser.records_info import read_records_info
from kser.splits import speaker_folds
from tests.cli_runner import run_kser
from tests.synthetic import write_crema_d


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Six synthetic CREMA-D actors, their records as kser builds them, and the clips prepared here."""
    root = tmp_path_factory.mktemp("accelerator_cv")
    data, records = root / "audio", root / "records"
    write_crema_d(data, actors=6, sentences=("DFA",))
    result = run_kser(
        "build-records", "--layout=crema_d", "--split=none", "--seed=7", f"--data_dir={data}", f"--output_dir={records}"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    clips = accelerator_cv.prepare_clips(str(data), "crema_d", AudioConfig(), build_seed=7, workers=1)
    return records, clips


def test_prepared_clips_are_the_records_waveforms_bit_for_bit(corpus):
    records, clips = corpus
    assert len(clips["labels"]) == 36
    assert "all 36 clips identical" in accelerator_cv.check_against_records(clips, str(records))


def test_one_changed_sample_fails_the_check(corpus):
    records, clips = corpus
    other = dict(clips, waveforms=clips["waveforms"].copy())
    other["waveforms"][3, 100] += 1e-3
    with pytest.raises(SystemExit, match="records differ"):
        accelerator_cv.check_against_records(other, str(records))


@pytest.mark.parametrize("validate", [True, False])
def test_folds_are_kser_cross_validate_s(corpus, validate):
    records, clips = corpus
    expected = make_folds(speaker_folds(speaker_class_counts(read_records_info(records)), 3, 5), validate)
    assert accelerator_cv.fold_plan(clips, 3, 5, validate) == expected


def test_an_oversampled_pass_raises_every_class_to_the_largest():
    labels = np.array([0] * 4 + [1] * 2 + [2] * 1)  # factors 1, 2 and 4: whole repeats
    order = accelerator_cv.epoch_order(labels, 3, np.random.default_rng(0))
    assert np.bincount(labels[order], minlength=3).tolist() == [4, 4, 4]
    uneven = np.array([0] * 3 + [1] * 2)  # factor 1.5: one or two copies, 3 in expectation
    sizes = [len(accelerator_cv.epoch_order(uneven, 2, np.random.default_rng(seed))) for seed in range(400)]
    assert abs(np.mean(sizes) - 6.0) < 0.1


def test_training_batches_are_full_and_mixup_keeps_labels_distributions():
    waveforms = np.arange(10 * 4, dtype=np.float32).reshape(10, 4)
    labels = np.array([0, 1] * 5)
    plain = accelerator_cv.training_batches(waveforms, labels, 2, batch=4, mixup_alpha=0.0, seed=0)
    for _ in range(5):  # across pass boundaries
        x, y = next(plain)
        assert x.shape == (4, 4) and y.shape == (4, 2)
        assert set(y.ravel().tolist()) <= {0.0, 1.0}
    x, y = next(accelerator_cv.training_batches(waveforms, labels, 2, batch=4, mixup_alpha=0.4, seed=0))
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-6)
    assert np.any((y > 0) & (y < 1)), "mixup should blend some labels"


def test_every_run_s_flags_translate_to_train_config_fields():
    for name, run in accelerator_cv.ALL_RUNS.items():
        overrides, options, validate = accelerator_cv.parse_flags(run.flags)
        TrainConfig(arch=run.arch, **overrides)  # a field that does not exist would raise here
        assert isinstance(options, dict) and isinstance(validate, bool), name
    assert accelerator_cv.parse_flags(("--novalidate", "--epochs=100"))[0::2] == ({"epochs": 100}, False)
    with pytest.raises(SystemExit, match="not supported"):
        accelerator_cv.parse_flags(("--no_such_flag=1",))


def test_results_rerun_replaces_a_failure_and_compare_pairs_seeds(tmp_path):
    lines = [
        {"run": "small", "fold": 0, "seed": 0, "error": "cuBLAS"},
        {"run": "small", "fold": 0, "seed": 0, "uar": 0.5, "test_speakers": ["a"]},
        {"run": "small", "fold": 0, "seed": 100, "uar": 0.6, "test_speakers": ["a"]},
        {"run": "small", "fold": 1, "seed": 1, "uar": 0.7, "test_speakers": ["b"]},
    ]
    path = tmp_path / "results.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert len(accelerator_cv.read_results(path)) == 3
    folds = load(f"{path}:small,small@seed+100")
    assert {key: value["uar"] for key, value in folds.items()} == {(0, 0): 0.5, (1, 0): 0.7, (0, 1): 0.6}
