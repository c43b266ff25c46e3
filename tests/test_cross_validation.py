"""kser cross-validate end to end on the demo data, with tiny settings, and its resume."""

import json
import shutil

import numpy as np
import pytest
import soundfile

from kser.cross_validation import CV_CONFIG_FILE, CV_REPORT_FILE, FOLD_FILE
from kser.evaluation import read_history
from tests.cli_runner import assert_one_line_error, demo_records, run_kser
from tests.synthetic import tone

TINY = '{"conv_filters": [4, 8, 8], "proj_units": 16, "rnn_units": 8}'


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    return demo_records(
        tmp_path_factory.mktemp("cv"), ("--actors=6", "--sentences=1"), ("--split=none", "--clip_seconds=0.5", "--workers=1")
    )


def cv_command(records, model_dir, *extra):
    return (
        "cross-validate", "--arch=small", f"--records_dir={records}", f"--model_dir={model_dir}", "--folds=3",
        "--epochs=1", "--batch_size=8", f"--model_options={TINY}", *extra,
    )


@pytest.fixture(scope="module")
def cross_validated(records, tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("cv_model")
    result = run_kser(*cv_command(records, model_dir), timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return model_dir, result


def test_cross_validate_writes_folds_and_a_report(cross_validated, records):
    model_dir, result = cross_validated
    report = json.loads((model_dir / CV_REPORT_FILE).read_text())
    assert report["folds"] == report["folds_run"] == 3 and report["speakers"] == 6 and report["arch"] == "small"
    tested = [s for fold in report["per_fold"] for s in fold["speakers"]["test"]]
    assert sorted(tested) == sorted(set(tested)) and len(tested) == 6  # every speaker tested exactly once
    for fold in report["per_fold"]:
        roles = fold["speakers"]
        assert not set(roles["train"]) & set(roles["test"]) and not set(roles["validation"]) & set(roles["test"])
        assert not set(roles["train"]) & set(roles["validation"])
        directory = model_dir / f"fold-{fold['fold']}"
        for name in ("model.keras", "kser_model.json", "history.csv", "eval/report.json", FOLD_FILE):
            assert (directory / name).is_file(), name
        assert list((directory / "logs" / "train").glob("events.*"))
        fold_eval = json.loads((directory / "eval" / "report.json").read_text())
        assert fold_eval["speakers"] == sorted(roles["test"]) and fold_eval["uar"] == fold["uar"]
    for name in ("accuracy", "uar", "macro_f1"):
        values = [fold[name] for fold in report["per_fold"]]
        assert report[name]["mean"] == pytest.approx(np.mean(values))
        assert report[name]["sd"] == pytest.approx(np.std(values, ddof=1))
    pooled = np.asarray(report["pooled"]["confusion_matrix"])
    assert pooled.sum() == sum(fold["clips"] for fold in report["per_fold"]) == 6 * 6
    assert report["command"].startswith("kser cross-validate --arch=small")
    assert report["train_seeds"] == [0, 1, 2]
    assert report["records_manifest_sha256"] and (model_dir / "confusion_matrix.png").stat().st_size > 0
    assert "macro_f1" in result.stdout and "±" in result.stdout
    assert report["validation_fold"] is True
    # Stored only when off, so that cross-validations started before the flag existed still resume.
    assert "validate" not in json.loads((model_dir / "cv_config.json").read_text())["cross_validation"]


def test_evaluate_with_the_folds_speakers_reproduces_the_fold_score(cross_validated, records, tmp_path):
    """kser evaluate --speakers scores a fold model on its test actors only (records built
    --split=none hold every actor in one split), as the cross-validation scored it."""
    model_dir, _ = cross_validated
    fold = json.loads((model_dir / CV_REPORT_FILE).read_text())["per_fold"][0]
    speakers = ",".join(fold["speakers"]["test"])
    result = run_kser("evaluate", f"--model_dir={model_dir / 'fold-0'}", f"--records_dir={records}", "--split=test",
                      f"--speakers={speakers}", f"--output_dir={tmp_path}")
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["speakers"] == sorted(fold["speakers"]["test"]) and report["clips"] == fold["clips"]
    assert report["uar"] == pytest.approx(fold["uar"])
    missing = run_kser("evaluate", f"--model_dir={model_dir / 'fold-0'}", f"--records_dir={records}", "--speakers=nobody", f"--output_dir={tmp_path / 'x'}")
    assert_one_line_error(missing, "--speakers nobody: not in the test split")


def test_mean_sd_of_one_value_has_no_sd():
    from kser.cross_validation import format_mean_sd, mean_sd

    assert mean_sd([0.5]) == {"mean": 0.5, "sd": None} and format_mean_sd(mean_sd([0.5])) == "0.5000"
    assert format_mean_sd(mean_sd([0.5, 0.7]), digits=1, scale=100) == "60.0 ± 14.1"


def test_novalidate_trains_on_the_validation_fold_too_for_every_epoch(records, tmp_path):
    result = run_kser(*cv_command(records, tmp_path, "--novalidate", "--epochs=2", "--patience=1", "--max_folds=1"), timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "validation none" in result.stdout
    report = json.loads((tmp_path / CV_REPORT_FILE).read_text())
    assert report["validation_fold"] is False and report["definition"]["cross_validation"]["validate"] is False
    (fold,) = report["per_fold"]
    assert fold["speakers"]["validation"] == [] and len(fold["speakers"]["train"]) == 4  # 6 speakers - 2 tested
    assert not set(fold["speakers"]["train"]) & set(fold["speakers"]["test"])
    assert fold["epochs"] == 2  # no early stopping without validation clips
    # One fold run: a sample sd is undefined, so null in JSON and no ± in the text (not "± 0.0000").
    assert all(report[name]["sd"] is None for name in ("accuracy", "uar", "macro_f1"))
    assert "±" not in result.stdout and f"uar {report['uar']['mean']:.4f}" in result.stdout
    assert result.stderr.count("kser: warning: --epochs=2 is within the recipe's 3 warm-up epochs") == 1
    history = read_history(tmp_path / "fold-0")
    assert len(history["loss"]) == 2 and not any(key.startswith("val_") for key in history)
    assert not (tmp_path / "fold-0" / "checkpoints" / "best.weights.h5").exists()
    run = json.loads((tmp_path / "fold-0" / "train_config.json").read_text())
    assert run["validate_on"] is None and sorted(run["train_on"]["speakers"]) == sorted(fold["speakers"]["train"])


def test_a_screen_on_some_folds_is_narrowed_or_extended_without_retraining(cross_validated, records, tmp_path):
    """--max_folds picks how many of the same folds run: changing it keeps every finished fold."""
    model_dir = tmp_path / "cv"
    shutil.copytree(cross_validated[0], model_dir)
    for max_folds, expected in (("--max_folds=2", 2), ("--max_folds=3", 3)):
        result = run_kser(*cv_command(records, model_dir, max_folds), timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        assert result.stdout.count("already finished") == expected and "Epoch" not in result.stdout
        assert len(json.loads((model_dir / CV_REPORT_FILE).read_text())["per_fold"]) == expected
        assert json.loads((model_dir / CV_CONFIG_FILE).read_text())["cross_validation"]["max_folds"] == expected


def test_cross_corpus_scores_every_fold_model_without_training(cross_validated, records, tmp_path):
    """--cross_corpus on a finished run: each fold model on the other records (here the same build,
    all its clips), as kser evaluate scores it, and their average; no fold trains again."""
    model_dir = tmp_path / "cv"
    shutil.copytree(cross_validated[0], model_dir)
    result = run_kser(*cv_command(records, model_dir, f"--cross_corpus={records}"), timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("already finished") == 3 and "Epoch" not in result.stdout
    scored = json.loads((model_dir / CV_REPORT_FILE).read_text())["cross_corpus"][records.name]
    assert [row["fold"] for row in scored["per_fold"]] == [0, 1, 2] and scored["clips"] == 36
    evaluated = run_kser("evaluate", f"--model_dir={model_dir / 'fold-1'}", f"--records_dir={records}", "--split=test", f"--output_dir={tmp_path / 'eval'}")
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert scored["per_fold"][1]["uar"] == pytest.approx(json.loads((tmp_path / "eval" / "report.json").read_text())["uar"])
    uars = [row["uar"] for row in scored["per_fold"]]
    assert scored["fold_models_uar"]["mean"] == pytest.approx(np.mean(uars)) and 0 <= scored["averaged_models"]["uar"] <= 1
    assert f"on {records.name} (36 clips, 3 fold models)" in result.stdout
    missing = run_kser(*cv_command(records, tmp_path / "other", f"--cross_corpus={tmp_path / 'nowhere'}"))
    assert_one_line_error(missing, "nowhere")
    assert not (tmp_path / "other").exists()
    (tmp_path / "again").mkdir()
    twin = tmp_path / "again" / records.name
    twin.symlink_to(records)
    alike = run_kser(*cv_command(records, tmp_path / "other", f"--cross_corpus={records},{twin}"))
    assert_one_line_error(alike, "--cross_corpus names two records directories alike")
    assert not (tmp_path / "other").exists()


def test_cross_corpus_that_the_models_cannot_score_is_refused_before_any_fold_trains(records, tmp_path):
    """Another clip length, or a label the models will not know: one error line naming the folder and
    what to rebuild, and no model directory written (the checks run before fold 0 trains)."""
    longer = demo_records(tmp_path / "longer", ("--actors=2", "--sentences=1"), ("--split=none", "--clip_seconds=0.75", "--workers=1"))
    refused = run_kser(*cv_command(records, tmp_path / "cv", f"--cross_corpus={longer}"))
    assert_one_line_error(refused, str(longer), "12000 samples", "8000", "--clip_seconds")
    assert not (tmp_path / "cv").exists()
    audio = tmp_path / "bored" / "audio"
    for label in ("ANG", "BOR"):
        (audio / label).mkdir(parents=True)
        for index in range(2):
            soundfile.write(audio / label / f"s{index}.wav", tone(0.5, 200 + 50 * index, seed=index), 16_000, subtype="PCM_16")
    bored = tmp_path / "bored" / "records"
    built = run_kser("build-records", f"--data_dir={audio}", f"--output_dir={bored}", "--layout=folders", "--split=none", "--clip_seconds=0.5", "--workers=1")
    assert built.returncode == 0, built.stderr[-3000:]
    unknown = run_kser(*cv_command(records, tmp_path / "cv", f"--cross_corpus={bored}"))
    assert_one_line_error(unknown, str(bored), "BOR", "--labels=ANG")
    assert not (tmp_path / "cv").exists()


def test_an_interrupted_cross_validation_resumes_with_the_missing_folds(cross_validated, records):
    model_dir, _ = cross_validated
    before = json.loads((model_dir / CV_REPORT_FILE).read_text())
    (model_dir / "fold-2" / FOLD_FILE).unlink()  # as if killed after fold 2 trained, before it was scored
    (model_dir / CV_REPORT_FILE).unlink()
    kept = (model_dir / "fold-0" / FOLD_FILE).stat().st_mtime_ns
    result = run_kser(*cv_command(records, model_dir), timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "fold 0: already finished" in result.stdout and "fold 1: already finished" in result.stdout
    assert (model_dir / "fold-0" / FOLD_FILE).stat().st_mtime_ns == kept
    after = json.loads((model_dir / CV_REPORT_FILE).read_text())
    assert after["uar"] == before["uar"]  # fold 2's finished model was scored again, not retrained


def test_other_settings_in_the_same_model_dir_are_refused(cross_validated, records):
    model_dir, _ = cross_validated
    result = run_kser(*cv_command(records, model_dir, "--folds=2"))
    assert_one_line_error(result, "already holds a cross-validation with other settings", "cross_validation.folds: 3 -> 2")


def test_overwrite_refuses_files_kser_did_not_write_even_inside_a_fold(cross_validated, tmp_path):
    """--overwrite replaces a cross-validation, never a user's file beside it or inside a fold."""
    import shutil

    from kser.cross_validation import _prepare
    from kser.distribution import Distribution
    from kser.errors import KserError

    model_dir = tmp_path / "cv"
    shutil.copytree(cross_validated[0], model_dir)
    for place in (model_dir, model_dir / "fold-1"):
        (place / "mine.txt").write_text("keep")
        with pytest.raises(KserError, match="only what kser wrote.*also holds 'mine.txt'"):
            _prepare(model_dir, {"other": "settings"}, True, Distribution())
        assert (place / "mine.txt").read_text() == "keep" and (model_dir / "fold-0").is_dir()
        (place / "mine.txt").unlink()
    _prepare(model_dir, {"other": "settings"}, True, Distribution())
    assert sorted(p.name for p in model_dir.iterdir()) == ["cv_config.json"]


def test_a_fold_trained_with_other_settings_is_refused_not_reported(cross_validated, tmp_path):
    """Each fold's RunConfig is read back: a fold left by other settings is an error, not a row."""
    import dataclasses
    import shutil

    from kser.cross_validation import _check_fold_run
    from kser.errors import KserError
    from kser.run_config import read_run_config

    fold = tmp_path / "fold-0"
    shutil.copytree(cross_validated[0] / "fold-0", fold)
    run = read_run_config(fold)
    _check_fold_run(fold, run.train, dict(run.model_options))  # the settings it was trained with: fine
    for train, options, named in (
        (dataclasses.replace(run.train, seed=99), dict(run.model_options), r"train\.seed: 0 -> 99"),
        (run.train, {"rnn_units": 3}, r"model_options\.rnn_units: 8 -> 3"),
    ):
        with pytest.raises(KserError, match=f"fold-0 was trained with other settings .*{named}"):
            _check_fold_run(fold, train, options)


@pytest.mark.parametrize("flag, message", [("--parallel_folds=0", "--parallel_folds must be at least 1, got 0"), ("--channel_prob=1.5", "channel_prob must be a probability"), ("--babble_prob=-0.1", "babble_prob must be a probability"), ("--codec_prob=1.5", "codec_prob must be a probability"), ("--crop_prob=1.5", "crop_prob must be a probability")])
def test_bad_fold_and_augmentation_flags_are_one_line_before_anything_is_written(records, tmp_path, flag, message):
    assert_one_line_error(run_kser(*cv_command(records, tmp_path / "m", flag)), message)
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("options, message", [('{"bogus_key": 3}', "unknown option"), ('{"rnn_units": "many"}', "do not suit 'small'")])
def test_bad_model_options_fail_before_anything_is_written(records, tmp_path, options, message):
    """So that the corrected command is not refused as a cross-validation with other settings."""
    result = run_kser(*cv_command(records, tmp_path / "m", f"--model_options={options}"))
    assert_one_line_error(result, message)
    assert not (tmp_path / "m").exists()


def test_too_many_folds_is_a_one_line_error(records, tmp_path):
    result = run_kser(*cv_command(records, tmp_path / "m", "--folds=7"))
    assert_one_line_error(result, "7 folds need at least 7 speakers")
