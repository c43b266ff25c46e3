"""Nothing lost under faults: checkpoints are written whole or not at all, a damaged backup is
reported and never loaded, and --overwrite starts clean."""

import errno
import os
import shutil
import signal
import time
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest

from kser import model_dir as model_files
from kser.callbacks import AtomicBackupAndRestore, save_atomically
from tests.cli_runner import demo_records, run_kser, start_kser

TINY = '{"conv_filters": [4, 8, 8], "proj_units": 16, "rnn_units": 8}'
EPOCHS = 6


def _dense_model() -> keras.Model:
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    return model


def _fit(model: keras.Model, epochs: int, callbacks: list) -> keras.callbacks.History:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 4)).astype("float32"), np.arange(16) % 3
    return model.fit(x, y, batch_size=8, epochs=epochs, callbacks=callbacks, verbose=0)


def _damage(path: Path) -> None:
    """What a kill inside the write leaves: the file's apparent size, but zeros from halfway."""
    size = path.stat().st_size
    os.truncate(path, size // 2)
    os.truncate(path, size)


@pytest.mark.parametrize("name", ["best.weights.h5", "model.keras"])
def test_a_write_that_fails_midway_leaves_the_previous_file(tmp_path, monkeypatch, name):
    model, path = _dense_model(), tmp_path / name
    weights_only = name.endswith(".weights.h5")
    save_atomically(model, path, weights_only=weights_only)
    before = path.read_bytes()

    def dies_midway(self, data, *args, **kwargs):  # fault injection: the disk fills up halfway
        with open(self, "wb") as handle:
            handle.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    real_save = keras.Model.save

    def save_dies_midway(self, filepath, *args, **kwargs):
        real_save(self, filepath, *args, **kwargs)
        dies_midway(Path(filepath), Path(filepath).read_bytes())

    monkeypatch.setattr(Path, "write_bytes", dies_midway)
    monkeypatch.setattr(keras.Model, "save", save_dies_midway)
    model.layers[0].kernel.assign(np.ones((4, 3), "float32"))
    with pytest.raises(OSError, match="No space left"):
        save_atomically(model, path, weights_only=weights_only)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary left behind
    fresh = _dense_model()
    fresh.load_weights(path)  # the previous file is whole
    assert not np.allclose(fresh.layers[0].kernel.numpy(), 1.0)


def test_the_backup_holds_its_epoch_and_a_damaged_one_is_reported_and_never_loaded(tmp_path):
    class Crash(keras.callbacks.Callback):  # the process dies after epoch 2, its backup written
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    backup = tmp_path / "backup"
    with pytest.raises(KeyboardInterrupt):
        _fit(_dense_model(), 5, [AtomicBackupAndRestore(backup), Crash()])
    assert AtomicBackupAndRestore(backup).epochs_done() == 2
    resumed = _fit(_dense_model(), 5, [AtomicBackupAndRestore(backup)])
    assert len(resumed.history["loss"]) == 3 and not backup.exists()  # epochs 3-5, then the backup goes

    with pytest.raises(KeyboardInterrupt):
        _fit(_dense_model(), 5, [AtomicBackupAndRestore(backup), Crash()])
    _damage(backup / "latest.weights.h5")
    warnings = []
    callback = AtomicBackupAndRestore(backup, warn=warnings.append)
    assert callback.epochs_done() == 0
    again = _fit(_dense_model(), 5, [callback])  # loading the damaged file would raise
    assert len(again.history["loss"]) == 5
    assert len(warnings) == 1 and "is damaged" in warnings[0] and "training again from epoch 1" in warnings[0]


def test_the_backup_keeps_its_epoch_with_keras_s_public_writer_too(tmp_path, monkeypatch):
    """Where Keras's internal in-memory writer is missing, save_weights to the temporary name
    and the attribute set with h5py: still one file, committed by one rename."""
    import kser.callbacks as callbacks

    def no_internals(*args, **kwargs):
        raise ImportError("no keras.src.saving.saving_lib here")

    monkeypatch.setattr(callbacks, "_weights_file", no_internals)
    model, path = _dense_model(), tmp_path / "backup" / "latest.weights.h5"
    save_atomically(model, path, weights_only=True, attributes={AtomicBackupAndRestore.EPOCHS_ATTRIBUTE: 3})
    assert sorted(p.name for p in path.parent.iterdir()) == ["latest.weights.h5"]
    with h5py.File(path, "r") as handle:
        assert int(handle.attrs[AtomicBackupAndRestore.EPOCHS_ATTRIBUTE]) == 3
    fresh = _dense_model()
    fresh.load_weights(path)
    np.testing.assert_allclose(fresh.layers[0].kernel.numpy(), model.layers[0].kernel.numpy())


def test_trim_history_keeps_the_epochs_the_backup_holds(tmp_path):
    history = tmp_path / model_files.HISTORY_FILE
    history.write_text("epoch,loss\n0,1.5\n1,1.4\n2,1.3\n2,1.3\n3,1")  # epoch 2 logged twice, 3 cut short
    model_files.trim_history(tmp_path, 2)
    assert history.read_text() == "epoch,loss\n0,1.5\n1,1.4\n"
    model_files.trim_history(tmp_path, 0)
    assert not history.exists()


def test_cross_validate_overwrite_with_the_same_settings_starts_again(tmp_path):
    from kser.cross_validation import CV_CONFIG_FILE, FOLD_FILE, _prepare
    from kser.distribution import Distribution

    definition = {"same": "settings"}
    _prepare(tmp_path, definition, False, Distribution())
    (tmp_path / "fold-0").mkdir()
    (tmp_path / "fold-0" / FOLD_FILE).write_text("{}")
    _prepare(tmp_path, definition, False, Distribution())  # resumes: the finished fold stays
    assert (tmp_path / "fold-0" / FOLD_FILE).is_file()
    _prepare(tmp_path, definition, True, Distribution())
    assert sorted(p.name for p in tmp_path.iterdir()) == [CV_CONFIG_FILE]


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    return demo_records(tmp_path_factory.mktemp("faults"), ("--actors=6", "--sentences=1"), ("--clip_seconds=0.5", "--workers=1"))


def train_command(records, model_dir, *extra):
    return (
        "train", "--arch=small", f"--records_dir={records}", f"--model_dir={model_dir}", f"--epochs={EPOCHS}",
        f"--patience={EPOCHS}", "--batch_size=8", f"--model_options={TINY}", *extra,
    )


@pytest.fixture(scope="module")
def killed_run(records, tmp_path_factory):
    """A model directory whose `kser train` was SIGKILLed at a random moment after its first backup."""
    model_dir = tmp_path_factory.mktemp("killed") / "model"
    backup = model_dir / "backup" / "latest.weights.h5"
    process = start_kser(*train_command(records, model_dir))
    deadline = time.monotonic() + 120
    while not backup.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(np.random.default_rng().uniform(0, 0.5))  # anywhere in the epochs that follow
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    return model_dir


def _epochs_logged(model_dir: Path) -> list[str]:
    lines = (model_dir / model_files.HISTORY_FILE).read_text().splitlines()
    assert lines[0].startswith("epoch,") and not any(line.startswith("epoch,") for line in lines[1:])
    return [line.split(",", 1)[0] for line in lines[1:]]


def _copy(model_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(model_dir, target)
    return target


def test_a_killed_run_leaves_a_whole_backup(killed_run):
    backup = killed_run / "backup" / "latest.weights.h5"
    with h5py.File(backup, "r") as handle:  # every array reads: the file is whole
        arrays = []
        handle.visititems(lambda _, item: arrays.append(item[()]) if isinstance(item, h5py.Dataset) else None)
        assert arrays and handle.attrs[AtomicBackupAndRestore.EPOCHS_ATTRIBUTE] >= 1
    finals = {p.name for p in backup.parent.iterdir() if not p.name.startswith(".")}  # a temporary may be hidden
    assert finals <= {backup.name, "training_metadata.json"}


def test_a_damaged_backup_is_one_warning_and_training_starts_again(records, killed_run, tmp_path):
    model_dir = _copy(killed_run, tmp_path)
    _damage(model_dir / "backup" / "latest.weights.h5")
    result = run_kser(*train_command(records, model_dir))
    assert result.returncode == 0, result.stderr[-3000:]
    warnings = [line for line in result.stderr.splitlines() if "warning:" in line]
    assert len(warnings) == 1 and warnings[0].startswith("kser: warning: training backup") and "is damaged" in warnings[0], result.stderr
    assert "Traceback" not in result.stderr
    assert f"{EPOCHS} epochs" in result.stdout
    assert _epochs_logged(model_dir) == [str(epoch) for epoch in range(EPOCHS)]
    assert (model_dir / model_files.MODEL_FILE).is_file() and not (model_dir / "backup").exists()


def test_overwrite_with_the_same_settings_starts_from_epoch_1(records, killed_run, tmp_path):
    model_dir = _copy(killed_run, tmp_path)
    result = run_kser(*train_command(records, model_dir, "--overwrite"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "warning:" not in result.stderr and f"{EPOCHS} epochs" in result.stdout
    assert _epochs_logged(model_dir) == [str(epoch) for epoch in range(EPOCHS)]
