"""Tests for kser.callbacks with a tiny Dense model fit for a couple of epochs on random data.

Also pins two Keras behaviours the module relies on / documents: keras.callbacks.TensorBoard logs
the (scheduled) learning rate itself, and callback order decides whether CSVLogger sees our columns.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf

from kser import metrics
from kser.callbacks import ClassMetrics, StopOnNonFinite

NAMES = ["ANG", "HAP", "SAD"]
FEATURES = 8


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = rng.normal(size=(n, FEATURES)).astype("float32") + y[:, None].astype("float32")
    return x, y


def _model(learning_rate: Any = 0.05) -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def _events(run_dir: Path) -> dict[str, list[tuple[int, object, str]]]:
    """tag -> [(step, value proto, plugin name)] from every event file in a TensorBoard run folder."""
    found: dict[str, list] = {}
    plugins: dict[str, str] = {}
    for path in sorted(run_dir.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name:
                    plugins[value.tag] = value.metadata.plugin_data.plugin_name
                found.setdefault(value.tag, []).append((event.step, value))
    return {
        tag: [(step, value, plugins.get(tag, "")) for step, value in items] for tag, items in found.items()
    }


def _scalar(value) -> float:
    return float(tf.make_ndarray(value.tensor))


def test_fit_with_csv_and_tensorboard(tmp_path: Path) -> None:
    x_train, y_train = _data(48, seed=1)
    x_val, y_val = _data(30, seed=2)
    one_hot = keras.utils.to_categorical(y_train, 3)
    val_ds = tf.data.Dataset.from_tensor_slices((x_val, keras.utils.to_categorical(y_val, 3))).batch(8)
    schedule = keras.optimizers.schedules.ExponentialDecay(0.05, 2, 0.5, staircase=True)  # halve every 2 steps
    model = _model(schedule)
    log_dir = tmp_path / "tb"
    class_metrics = ClassMetrics(val_ds, NAMES, log_dir=log_dir)
    history = model.fit(
        x_train,
        one_hot,
        batch_size=16,
        epochs=2,
        validation_data=val_ds,
        verbose=0,
        callbacks=[
            class_metrics,  # first, so that the loggers below see its entries
            keras.callbacks.CSVLogger(str(tmp_path / "log.csv")),
            keras.callbacks.TensorBoard(log_dir=str(log_dir), write_graph=False),
        ],
    )

    # Metrics equal those computed directly from the final model's predictions.
    expected = metrics.classification_metrics(y_val, model.predict(x_val, verbose=0).argmax(1), NAMES)
    assert class_metrics.latest is not None
    assert class_metrics.latest["confusion_matrix"] == expected["confusion_matrix"]
    assert history.history["val_uar"][-1] == pytest.approx(expected["uar"])
    assert history.history["val_macro_f1"][-1] == pytest.approx(expected["macro_f1"])
    # With one-hot labels and no weights, ClassMetrics' accuracy is keras' val_accuracy.
    assert history.history["val_accuracy"][-1] == pytest.approx(expected["accuracy"], abs=1e-6)

    with open(tmp_path / "log.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2
    for column in ["val_uar", "val_macro_f1", *(f"val_recall_{name}" for name in NAMES)]:
        assert column in rows[0], column
    assert float(rows[-1]["val_uar"]) == pytest.approx(expected["uar"])
    for name in NAMES:
        assert float(rows[-1][f"val_recall_{name}"]) == pytest.approx(expected["per_class"][name]["recall"])

    # ClassMetrics' own summaries in log_dir/validation: scalars and one confusion-matrix image per epoch.
    validation = _events(log_dir / "validation")
    uar = validation["uar"]
    assert [step for step, _, _ in uar] == [0, 1] and uar[0][2] == "scalars"
    assert _scalar(uar[-1][1]) == pytest.approx(expected["uar"], abs=1e-6)
    sad_recall = expected["per_class"]["SAD"]["recall"]
    assert _scalar(validation["recall/SAD"][-1][1]) == pytest.approx(sad_recall, abs=1e-6)
    images = validation["confusion_matrix"]
    assert [step for step, _, _ in images] == [0, 1] and images[0][2] == "images"
    # TF2 image summaries are [width, height, png bytes...] string tensors.
    encoded = tf.make_ndarray(images[0][1].tensor)
    assert encoded[2][:8] == b"\x89PNG\r\n\x1a\n"
    # keras' TensorBoard, listed after ClassMetrics, wrote our log entries to the same run.
    assert _scalar(validation["epoch_uar"][-1][1]) == pytest.approx(expected["uar"], abs=1e-6)
    assert "epoch_recall_HAP" in validation

    # Keras 3.15's TensorBoard already logs the scheduled learning rate (why there is no LR callback):
    # 3 steps per epoch, staircase halving every 2 steps -> 0.05 * 0.5 ** (3 // 2), 0.05 * 0.5 ** (6 // 2).
    train = _events(log_dir / "train")
    learning_rates = [_scalar(value) for _, value, _ in train["epoch_learning_rate"]]
    assert learning_rates == pytest.approx([0.025, 0.00625])
    assert "learning_rate" not in history.history  # ... but only in TensorBoard, not in logs.


def test_callback_order_matters_for_csv_logger(tmp_path: Path) -> None:
    x, y = _data(24, seed=3)
    model = _model()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    csv_path = tmp_path / "late.csv"
    late = ClassMetrics((x, y), NAMES, batch_size=8)  # integer labels, numpy tuple
    history = model.fit(
        x, y, batch_size=8, epochs=2, verbose=0,
        callbacks=[keras.callbacks.CSVLogger(str(csv_path)), late],
    )
    with open(csv_path, newline="") as handle:
        header = next(csv.reader(handle))
    assert "val_uar" not in header  # CSVLogger ran before ClassMetrics added it
    assert len(history.history["val_uar"]) == 2  # History runs last, so it has it anyway
    assert late.latest["support"] == 24


def test_integer_label_dataset_and_errors() -> None:
    x, y = _data(20, seed=4)
    model = _model()
    ds = tf.data.Dataset.from_tensor_slices((x, y.reshape(-1, 1))).batch(6)
    callback = ClassMetrics(ds, NAMES)
    callback.set_model(model)
    result = callback.evaluate()
    expected = metrics.classification_metrics(y, model.predict(x, verbose=0).argmax(1), NAMES)
    assert result["confusion_matrix"] == expected["confusion_matrix"]

    wrong = ClassMetrics((x, y), ["A", "B"])
    wrong.set_model(model)
    with pytest.raises(ValueError, match="label names"):
        wrong.evaluate()
    with pytest.raises(ValueError, match="labels"):
        bad = ClassMetrics(tf.data.Dataset.from_tensor_slices(x).batch(4), NAMES)
        bad.set_model(model)
        bad.evaluate()


def test_stop_on_non_finite() -> None:
    x, y = _data(32, seed=5)
    x[20] = np.nan  # batch 3 of 4 (batch size 8, no shuffling)
    model = _model()
    stopper = StopOnNonFinite()
    history = model.fit(
        x, keras.utils.to_categorical(y, 3), batch_size=8, epochs=3, shuffle=False, verbose=0,
        callbacks=[stopper],
    )
    assert stopper.stopped and model.stop_training
    assert stopper.message == "loss became nan at epoch 1 batch 3; stopping"
    assert (stopper.key, stopper.epoch, stopper.batch) == ("loss", 1, 3)
    assert len(history.history["loss"]) == 1  # no second epoch


def test_stop_on_non_finite_catches_inf_and_validation() -> None:
    stopper = StopOnNonFinite()
    stopper.set_model(_model())
    stopper.on_train_begin()
    stopper.on_epoch_begin(0)
    stopper.on_train_batch_end(0, {"loss": 1.0})
    assert not stopper.stopped
    stopper.on_epoch_end(0, {"loss": 1.0, "val_loss": float("inf")})
    assert stopper.message == "val_loss became inf at epoch 1; stopping"
    assert stopper.model.stop_training
    stopper.on_train_begin()  # a new fit starts clean
    assert not stopper.stopped


def test_the_compiled_uar_metric_gives_class_metrics_without_a_second_validation_pass() -> None:
    """ClassMetrics reading the compiled UnweightedAverageRecall equals ClassMetrics predicting."""
    from kser.callbacks import UnweightedAverageRecall

    x_train, y_train = _data(48, seed=1)
    x_val, y_val = _data(30, seed=2)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(3, activation="softmax")])
    uar = UnweightedAverageRecall(3)
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="categorical_crossentropy", metrics=[uar])
    one_pass = ClassMetrics(None, NAMES, confusion_metric=uar)
    predicted = ClassMetrics((x_val, y_val), NAMES)
    seen: list[tuple[float, float]] = []

    class Compare(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            assert one_pass.latest == predicted.latest
            seen.append((logs["val_uar"], one_pass.latest["uar"]))

    history = model.fit(
        x_train, keras.utils.to_categorical(y_train, 3), validation_data=(x_val, keras.utils.to_categorical(y_val, 3)),
        epochs=3, batch_size=8, verbose=0, callbacks=[one_pass, predicted, Compare()],
    )
    assert len(seen) == 3 and all(a == pytest.approx(b) for a, b in seen)
    assert np.asarray(one_pass.latest["confusion_matrix"]).sum() == 30  # the validation pass, not training
    assert "uar" in history.history  # the training batches' UAR comes with it


def test_uar_metric_counts_argmax_of_soft_labels_and_round_trips() -> None:
    from kser.callbacks import UnweightedAverageRecall

    metric = UnweightedAverageRecall(3)
    metric.update_state(np.array([[0.7, 0.3, 0.0], [0.0, 1.0, 0.0], [0.0, 0.2, 0.8]]), np.array([[0.9, 0.1, 0.0], [0.6, 0.4, 0.0], [0.1, 0.1, 0.8]]))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(metric.confusion), [[1, 0, 0], [1, 0, 0], [0, 0, 1]])
    assert float(metric.result()) == pytest.approx(2 / 3)
    clone = UnweightedAverageRecall.from_config(metric.get_config())
    assert clone.num_classes == 3 and clone.name == "uar"
