"""kser train / evaluate end to end on a tiny synthetic set with a tiny model."""

import csv
import json

import numpy as np
import pytest

from kser import model_dir as model_files
from kser.config import AudioConfig, BuildConfig, RecordsConfig, SplitConfig, TrainConfig, to_dict
from kser.errors import KserError
from kser.evaluation import evaluate, summary_table
from kser.run_config import read_run_config
from kser.training import train
from tests.cli_runner import assert_one_line_error, run_kser
from tests.synthetic import write_crema_d
from kser_tfrecords_builder import build_records

TINY = {"conv_filters": [4, 8, 8], "proj_units": 16, "rnn_units": 8}


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    write_crema_d(root / "audio", actors=6, sentences=("DFA", "IEO"), seconds=(0.3, 0.6))
    config = BuildConfig(
        data_dir=str(root / "audio"), output_dir=str(root / "records"), audio=AudioConfig(clip_seconds=0.5),
        records=RecordsConfig(shard_size_mb=1), workers=1,
    )
    build_records(config, progress_stream=open("/dev/null", "w"))
    return root / "records"


def tiny_config(**overrides):
    settings = dict(arch="small", epochs=2, batch_size=8, seed=0, learning_rate=3e-3)
    settings.update(overrides)
    return TrainConfig(**settings)


@pytest.fixture(scope="module")
def trained(records, tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("model")
    result = train(tiny_config(), records, model_dir, model_options=TINY, verbose=0)
    return result


def test_training_writes_a_loadable_model_history_and_tensorboard_logs(trained):
    model_dir = trained.model_dir
    info = model_files.load_info(model_dir)
    assert info.arch == "small" and info.label_names == ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")
    model = model_files.load_model(model_dir)
    assert model.input_shape == (None, 8000)  # 0.5 s of 16 kHz waveform: the front end is the model's
    with open(model_dir / model_files.HISTORY_FILE) as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == trained.epochs_run == 2
    for column in ("loss", "accuracy", "val_loss", "val_accuracy", "val_uar", "val_recall_ANG"):
        assert column in rows[0]
    assert list((model_dir / "logs" / "train").glob("events.*")) and list((model_dir / "logs" / "validation").glob("events.*"))
    assert not (model_dir / "backup").exists()


def test_tensorboard_shows_each_validation_metric_once(trained):
    """Not `epoch_uar` beside `uar`, `epoch_recall_X` beside `recall/X`; the confusion image stays."""
    import tensorflow as tf

    tags = set()
    for path in (trained.model_dir / "logs" / "validation").glob("events.*"):
        tags |= {value.tag for event in tf.compat.v1.train.summary_iterator(str(path)) for value in event.summary.value}
    assert {"epoch_uar", "epoch_macro_f1", "epoch_recall_ANG", "epoch_loss", "confusion_matrix"} <= tags
    assert not {tag for tag in tags if tag in ("uar", "macro_f1") or tag.startswith("recall/")}, tags


def test_features_in_the_model_train_the_same_classifier_shape(records, tmp_path, monkeypatch):
    import kser.training
    from kser.audio_frontend import AudioFrontEnd, classifier_of, front_end_of
    from kser.augment import SpecAugment, WaveformAugment

    fitted = []
    original = kser.training.build_training_model

    def spy(*args, **kwargs):  # keeps the model that model.fit actually trains
        fitted.append(original(*args, **kwargs))
        return fitted[-1]

    monkeypatch.setattr(kser.training, "build_training_model", spy)
    result = train(tiny_config(epochs=1, features_on="model", augment=True), records, tmp_path, model_options=TINY, verbose=0)
    assert result.features_on == "model"
    (model,) = fitted
    assert model.input_shape == (None, 8000)  # 0.5 s waveforms go in ...
    kinds = [type(layer) for layer in model.layers]
    assert kinds.index(WaveformAugment) < kinds.index(AudioFrontEnd) < kinds.index(SpecAugment)  # ... features in the graph
    assert model.optimizer.iterations.numpy() > 0  # and this is the model that was trained
    saved = model_files.load_model(tmp_path)
    assert saved.input_shape == (None, 8000)  # the saved model takes waveforms too, without augmentation
    assert [type(layer) for layer in saved.layers[1:]] == [AudioFrontEnd, type(model.layers[-1])]
    assert classifier_of(saved).input_shape == (None, 51, 64, 3)
    assert front_end_of(saved).sample_rate == 16_000 and front_end_of(saved).clip_samples == 8000


def test_finished_run_is_protected_and_label_mismatch_is_refused(records, trained, tmp_path):
    with pytest.raises(KserError, match="finished training run"):
        train(tiny_config(), records, trained.model_dir, model_options=TINY, verbose=0)
    with pytest.raises(KserError, match="no manifest.json"):
        train(tiny_config(), tmp_path, tmp_path / "m", verbose=0)
    manifest = json.loads((records / "manifest.json").read_text())
    manifest["label_names"] = ["a", "b", "c", "d", "e", "f"]
    other = tmp_path / "other"
    other.mkdir()
    for shard in records.glob("*.tfrecord"):
        (other / shard.name).symlink_to(shard)
    (other / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(KserError, match="holds label.s. a, b, c, d, e, f that the model does not know"):
        evaluate(trained.model_dir, other)


def test_a_rerun_with_other_settings_names_each_difference(records, trained, tmp_path):
    import shutil

    model_dir = tmp_path / "model"
    shutil.copytree(trained.model_dir, model_dir)
    (model_dir / model_files.INFO_FILE).unlink()  # a run that did not finish: a rerun would resume it
    with pytest.raises(KserError, match=r"a training run with other settings \(train\.learning_rate: 0\.003 -> 0\.002\)"):
        train(tiny_config(learning_rate=2e-3), records, model_dir, model_options=TINY, verbose=0)


def test_overwrite_refuses_a_model_dir_holding_files_kser_did_not_write(records, trained, tmp_path):
    import shutil

    model_dir = tmp_path / "model"
    shutil.copytree(trained.model_dir, model_dir)
    (model_dir / "notes.txt").write_text("mine")
    before = sorted(p.name for p in model_dir.iterdir())
    with pytest.raises(KserError, match="only what kser wrote.*also holds 'notes.txt'"):
        train(tiny_config(), records, model_dir, model_options=TINY, overwrite=True, verbose=0)
    assert sorted(p.name for p in model_dir.iterdir()) == before  # nothing deleted


def test_non_finite_loss_stops_with_a_message(records, tmp_path, monkeypatch):
    import kser.training
    from kser.inputs import make_inputs

    def poisoned(*args, **kwargs):  # fault injection: the training inputs turn NaN
        dataset = make_inputs(*args, **kwargs)
        return dataset.map(lambda x, y: (x * float("nan"), y)) if kwargs.get("training") else dataset

    monkeypatch.setattr(kser.training, "make_inputs", poisoned)
    with pytest.raises(KserError, match="loss became nan at epoch 1 batch 1"):
        train(tiny_config(epochs=3), records, tmp_path, model_options=TINY, verbose=0)
    assert not (tmp_path / model_files.MODEL_FILE).exists()


def test_bad_settings_are_refused_before_anything_is_written(records, tmp_path):
    model_dir = tmp_path / "model"
    for config, options, message in (
        (tiny_config(batch_size=0), TINY, "batch_size must be at least 1, got 0"),
        (tiny_config(seed=-1), TINY, "seed must be between 0 and 2..32 - 1, got -1"),
        (tiny_config(profile_batches="5,x"), TINY, "profile_batches must be a step or two ascending steps"),
        (tiny_config(), {**TINY, "bogus_key": 3}, "unknown option.s. bogus_key"),
        (tiny_config(), {**TINY, "rnn_units": "many"}, "model_options .* do not suit 'small'"),
    ):
        with pytest.raises((KserError, ValueError), match=message):
            train(config, records, model_dir, model_options=options, verbose=0)
        assert not model_dir.exists() or not any(model_dir.iterdir())  # the corrected retry is not blocked
    with pytest.raises(KserError, match="epochs and patience must be >= 1"):
        train(tiny_config(epochs=0), records, model_dir, model_options=TINY, verbose=0)


def test_evaluate_writes_the_report_files(trained, records):
    report = evaluate(trained.model_dir, records, "test")
    out = trained.model_dir / "eval"
    for name in ("report.json", "classification_report.txt", "confusion_matrix.png", "training_curves.png"):
        assert (out / name).stat().st_size > 0, name
    saved = json.loads((out / "report.json").read_text())
    assert saved["clips"] == json.loads((records / "manifest.json").read_text())["splits"]["test"]["clips"]
    assert np.asarray(saved["confusion_matrix"]).sum() == saved["clips"]
    assert saved == json.loads(json.dumps(report))  # what evaluate returns is what it wrote
    assert 0 <= saved["uar"] <= 1 and saved["protocol"]["split_strategy"] == "speaker"
    assert saved["manifest_sha256"] == saved["trained_on_manifest_sha256"]
    assert (out / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "macro avg" in (out / "classification_report.txt").read_text()


def test_evaluate_adds_uar_under_white_noise_and_babble(trained, records, tmp_path):
    """At an SNR no model notices (100 dB) the noisy UAR is the clean one; the table and plot are written."""
    report = evaluate(trained.model_dir, records, "test", output_dir=tmp_path / "eval", noise_snrs=(100.0, 0.0))
    table = report["robustness"]
    assert table["snr_db"] == [100.0, 0.0] and set(table["white"]) == set(table["babble"]) == {"100", "0"}
    assert table["white"]["100"] == pytest.approx(report["uar"]) and table["babble"]["100"] == pytest.approx(report["uar"])
    assert all(0.0 <= table[kind][snr] <= 1.0 for kind in ("white", "babble") for snr in ("100", "0"))
    assert (tmp_path / "eval" / "robustness.png").stat().st_size > 0
    assert "UAR under noise" in summary_table(report)


def test_evaluate_adds_uar_on_the_first_seconds_of_speech(trained, records, tmp_path):
    """Each asked duration is scored, written to report.json and summarised (one past the clips' length too)."""
    report = evaluate(trained.model_dir, records, "test", output_dir=tmp_path / "eval", durations=(0.2, 30.0))
    table = report["duration"]
    assert table["seconds"] == [0.2, 30.0] and set(table["uar"]) == {"0.2", "30"} and 0.0 <= table["uar"]["0.2"] <= 1.0
    assert json.loads((tmp_path / "eval" / "report.json").read_text())["duration"] == table
    assert "UAR on the first seconds of speech: 0.2 s" in summary_table(report)


def test_cli_train_and_evaluate_errors_are_one_line(tmp_path):
    result = run_kser("train", f"--records_dir={tmp_path}", f"--model_dir={tmp_path / 'm'}")
    assert result.returncode == 1 and "Traceback" not in result.stderr and "no manifest.json" in result.stderr
    result = run_kser("evaluate", f"--records_dir={tmp_path}", f"--model_dir={tmp_path / 'm'}")
    assert result.returncode == 1 and "Traceback" not in result.stderr and "kser_model.json" in result.stderr
    result = run_kser("train", f"--records_dir={tmp_path}", f"--model_dir={tmp_path / 'm'}", "--model_options={bad")
    assert result.returncode == 1 and "--model_options" in result.stderr
    assert_one_line_error(
        run_kser("evaluate", f"--records_dir={tmp_path}", f"--model_dir={tmp_path / 'm'}", "--noise_snr=20,loud"), "--noise_snr takes numbers in dB"
    )
    for durations, message in (("1,long", "--durations takes seconds"), ("1,0", "--durations must be > 0 s each")):
        assert_one_line_error(run_kser("evaluate", f"--records_dir={tmp_path}", f"--model_dir={tmp_path / 'm'}", f"--durations={durations}"), message)


def test_a_killed_run_resumes_where_it_stopped(records, tmp_path, monkeypatch):
    import keras

    import kser.training

    class Crash(keras.callbacks.Callback):  # fault injection: the process dies after epoch 2
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    real_callbacks = kser.training._callbacks

    def with_crash(*args):
        callbacks, stop_on_non_finite = real_callbacks(*args)
        return callbacks + [Crash()], stop_on_non_finite

    monkeypatch.setattr(kser.training, "_callbacks", with_crash)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(epochs=4), records, tmp_path, model_options=TINY, verbose=0)
    assert (tmp_path / "backup").is_dir() and not (tmp_path / model_files.MODEL_FILE).exists()
    monkeypatch.setattr(kser.training, "_callbacks", real_callbacks)
    resumed = train(tiny_config(epochs=4), records, tmp_path, model_options=TINY, verbose=0)
    assert resumed.epochs_run == 2  # epochs 3 and 4 only
    with open(tmp_path / model_files.HISTORY_FILE) as handle:
        assert [row["epoch"] for row in csv.DictReader(handle)] == ["0", "1", "2", "3"]
    assert (tmp_path / model_files.MODEL_FILE).exists() and not (tmp_path / "backup").exists()


def test_evaluate_scores_records_that_hold_a_subset_of_the_labels(trained, records, tmp_path):
    """Another corpus's test-only records (--split=none, fewer labels, other order) match by name."""
    write_crema_d(tmp_path / "audio", actors=2, sentences=("IEO",), seconds=(0.3, 0.6), seed=5)
    config = BuildConfig(
        data_dir=str(tmp_path / "audio"), output_dir=str(tmp_path / "records"), audio=AudioConfig(clip_seconds=0.5),
        labels=("SAD", "ANG"), split=SplitConfig(strategy="none"), workers=1,
    )
    build_records(config, progress_stream=open("/dev/null", "w"))
    report = evaluate(trained.model_dir, tmp_path / "records", "test", output_dir=tmp_path / "eval")
    assert report["clips"] == 4 and report["classes_present"] == ["ANG", "SAD"]
    per_class = report["per_class"]
    assert per_class["ANG"]["support"] == per_class["SAD"]["support"] == 2 and per_class["NEU"]["support"] == 0
    assert report["uar"] == pytest.approx((per_class["ANG"]["recall"] + per_class["SAD"]["recall"]) / 2)
    assert np.asarray(report["confusion_matrix"]).sum() == 4
    # The same clips with the model choosing between the records' two labels only (argmax over them).
    from kser.evaluation import predict_split

    y_true, probabilities = predict_split(model_files.load_model(trained.model_dir), model_files.load_info(trained.model_dir), tmp_path / "records", "test")
    names = list(model_files.load_info(trained.model_dir).label_names)
    two = [names.index("ANG"), names.index("SAD")]
    chosen = np.asarray(two)[np.argmax(probabilities[:, two], axis=1)]
    recalls = [float(np.mean(chosen[y_true == label] == label)) for label in two]
    among = report["among_records_labels"]
    assert among["labels"] == [name for name in names if name in ("ANG", "SAD")]
    assert among["uar"] == pytest.approx(np.mean(recalls))
    assert "among_records_labels" not in evaluate(trained.model_dir, records, "test", output_dir=tmp_path / "eval6")


def test_recipe_options_train_and_are_recorded(records, tmp_path):
    """Cosine schedule with warm-up, AdamW, label smoothing, mixup and early stopping on val_uar."""
    config = tiny_config(
        epochs=3, schedule="cosine", warmup_epochs=1, weight_decay=1e-4, label_smoothing=0.1, mixup_alpha=0.2,
        monitor="val_uar", patience=5,
    )
    result = train(config, records, tmp_path, model_options=TINY, verbose=0)
    with open(tmp_path / model_files.HISTORY_FILE) as handle:
        rows = list(csv.DictReader(handle))
    uar = [float(row["val_uar"]) for row in rows]
    assert result.best_epoch == 1 + max(range(len(uar)), key=lambda epoch: (uar[epoch], -epoch))
    run = read_run_config(tmp_path)
    stored = run.train
    assert stored.schedule == "cosine" and stored.monitor == "val_uar" and stored.mixup_alpha == 0.2
    assert stored.epochs == 3 and stored.decay_rate == 0.9  # unset fields come from small's recipe
    assert run.model_options == TINY and run.train_on.splits == ("train",)
    assert "train" not in model_files.load_info(tmp_path).extra  # the run is written once, in RUN_CONFIG_FILE
    report = evaluate(tmp_path, records, "test")
    assert report["protocol"]["train"] == to_dict(stored)


def test_novalidate_trains_every_epoch_on_the_train_split_and_keeps_the_last_weights(records, tmp_path):
    result = run_kser(
        "train", "--arch=small", f"--records_dir={records}", f"--model_dir={tmp_path}", "--epochs=2", "--patience=1",
        "--batch_size=8", "--seed=0", f"--model_options={json.dumps(TINY)}", "--novalidate",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 epochs, no validation clips: the last epoch's weights kept" in result.stdout
    assert read_run_config(tmp_path).validate_on is None
    assert not (tmp_path / "checkpoints" / "best.weights.h5").exists()
    report = evaluate(tmp_path, records, "test")
    assert report["protocol"]["train"]["epochs"] == 2


def test_epochs_within_the_warm_up_are_warned_about_once_where_the_recipe_is_resolved(capsys):
    from kser.training import resolve_config, warmup_warning

    resolved = resolve_config(TrainConfig(arch="small", epochs=2))  # small's recipe warms up over 3 epochs
    warning = capsys.readouterr().err
    assert warning.startswith("kser: warning: --epochs=2 is within the recipe's 3 warm-up epochs") and warning.count("\n") == 1
    resolve_config(resolved)  # already resolved (a cross-validation's folds): said once, where it was resolved
    assert capsys.readouterr().err == ""
    assert warmup_warning(resolve_config(TrainConfig(arch="small", epochs=4))) is None
    assert warmup_warning(resolve_config(TrainConfig(arch="lstm", epochs=1))) is None  # no warm-up in the study's recipe


def test_learning_rate_schedules():
    import keras

    from kser.models import recipe
    from kser.training import learning_rate_schedule

    study = learning_rate_schedule(TrainConfig(arch="gru").with_recipe(recipe("gru")), steps_per_epoch=10)
    assert float(study(999)) == pytest.approx(1e-4) and float(study(1000)) == pytest.approx(0.95e-4)
    cosine = learning_rate_schedule(
        TrainConfig(arch="small", schedule="cosine", learning_rate=1e-3, warmup_epochs=2, epochs=10).with_recipe(recipe("small")), 10
    )
    values = [float(keras.ops.convert_to_numpy(cosine(step))) for step in (0, 10, 20, 60, 100)]
    assert values[0] < values[1] < values[2] == pytest.approx(1e-3)  # linear warm-up to the peak
    assert values[2] > values[3] > values[4] and values[4] == pytest.approx(0.0, abs=1e-9)  # cosine to 0
