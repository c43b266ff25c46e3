"""Keras 3 callbacks for ``model.fit``: per-class validation metrics and a clear stop on NaN/inf.

Learning rate: no callback here, because ``keras.callbacks.TensorBoard`` (checked in Keras 3.15.1,
``TensorBoard._collect_learning_rate``) already writes ``epoch_learning_rate`` to the ``train`` run
every epoch, reading ``optimizer.learning_rate``, which evaluates a ``LearningRateSchedule`` at
``optimizer.iterations``. It writes it to TensorBoard only, not into ``logs``, so CSVLogger and
History do not see it (the tests pin this behaviour).

Callback order matters. Keras calls the callbacks in list order with one shared ``logs`` dict per
epoch, and ``History`` and the progress bar are appended after the user's list. Put
:class:`ClassMetrics` *before* every callback that should see its ``val_uar``/``val_recall_*``
entries: ``CSVLogger`` (it fixes its columns at the first epoch, so a later ClassMetrics leaves
them out for good), ``TensorBoard``, ``EarlyStopping``/``ModelCheckpoint(monitor="val_uar")`` and
``ReduceLROnPlateau``.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import keras
import numpy as np

from kser import atomic
from kser.metrics import classification_metrics, metrics_from_confusion

__all__ = [
    "AtomicBackupAndRestore", "AtomicModelCheckpoint", "ClassMetrics", "EpochScalars", "StopOnNonFinite", "UnweightedAverageRecall", "save_atomically"
]


def _is_tf_dataset(data: Any) -> bool:
    """True for a ``tf.data.Dataset``, never importing TensorFlow (a dataset of it means it is loaded)."""
    tf = sys.modules.get("tensorflow")
    if tf is None or isinstance(data, (tuple, list)):
        return False
    return isinstance(data, tf.data.Dataset)


def _class_indices(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Integer class indices from one-hot (or smoothed/probability) rows or from integer labels."""
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == num_classes and num_classes > 1:
        return np.argmax(labels, axis=1).astype(np.int64)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise ValueError(
            f"labels must be one-hot [N, {num_classes}] or class indices [N], got shape {labels.shape}"
        )
    return labels.astype(np.int64)


class EpochScalars(keras.callbacks.Callback):
    """Keras's ``TensorBoard`` epoch charts without TensorFlow: every number in ``logs`` at each
    epoch end, ``epoch_<name>`` in ``log_dir/train`` and, for ``val_<name>``, ``epoch_<name>`` in
    ``log_dir/validation`` (the tags and runs Keras uses), plus ``epoch_learning_rate``.

    Used where TensorFlow is not installed (Keras's callback imports ``tensorflow.summary``);
    where it is, kser keeps Keras's own, which can also profile.
    """

    def __init__(self, log_dir: str | os.PathLike) -> None:
        super().__init__()
        from kser.event_writer import EventWriter

        self._train = EventWriter(os.path.join(os.fspath(log_dir), "train"))
        self._validation = EventWriter(os.path.join(os.fspath(log_dir), "validation"))

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        for name, value in (logs or {}).items():
            if not np.isscalar(value) and np.ndim(value) != 0:
                continue
            writer, tag = (self._validation, name[4:]) if name.startswith("val_") else (self._train, name)
            writer.scalar(f"epoch_{tag}", float(value), epoch)
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None:
            self._train.scalar("epoch_learning_rate", float(keras.ops.convert_to_numpy(optimizer.learning_rate)), epoch)
        self._train.flush()
        self._validation.flush()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._train.close()
        self._validation.close()


@keras.saving.register_keras_serializable(package="kser")
class UnweightedAverageRecall(keras.metrics.Metric):
    """UAR as a Keras metric, kept as the confusion matrix of the pass (``confusion``, rows true).

    Why a metric: compiled into the model, it is accumulated during Keras's own validation pass,
    so per-class recall, macro F1 and the confusion image need no second pass over the validation
    data (:class:`ClassMetrics` reads ``confusion`` at epoch end, when it holds the validation
    pass). Labels may be one-hot or soft (mixup): the true class is their argmax. Every sample
    counts once (sample weights are ignored, as in the reports). The result is the mean recall
    over all classes, a class with no samples counting 0, as :func:`kser.metrics.classification_metrics`.
    """

    def __init__(self, num_classes: int, name: str = "uar", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.num_classes = int(num_classes)
        self.confusion = self.add_variable(
            shape=(self.num_classes, self.num_classes), initializer="zeros", name="confusion", dtype="float32"
        )

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        # The first num_classes columns: a training model may append other outputs (kser.adversary).
        true = keras.ops.one_hot(keras.ops.argmax(y_true[..., : self.num_classes], axis=-1), self.num_classes, dtype="float32")
        predicted = keras.ops.one_hot(keras.ops.argmax(y_pred[..., : self.num_classes], axis=-1), self.num_classes, dtype="float32")
        self.confusion.assign_add(keras.ops.matmul(keras.ops.transpose(true), predicted))

    def result(self) -> Any:
        support = keras.ops.sum(self.confusion, axis=1)
        return keras.ops.mean(keras.ops.divide_no_nan(keras.ops.diagonal(self.confusion), support))

    def reset_state(self) -> None:
        # zeros(shape), not zeros_like(variable): JAX cannot read a dtype off a Keras Variable.
        self.confusion.assign(keras.ops.zeros(self.confusion.shape, dtype=self.confusion.dtype))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_classes": self.num_classes}


class ClassMetrics(keras.callbacks.Callback):
    """Per-class validation metrics every epoch: UAR, macro F1 and recall per emotion.

    Why: accuracy hides which emotions a model gets wrong (the study's fear and disgust), and UAR
    is the usual model-selection metric for imbalanced speech-emotion data. At each epoch end this
    reads the confusion matrix of Keras's validation pass from ``confusion_metric`` (an
    :class:`UnweightedAverageRecall` compiled into the model: no second pass), or else runs one
    ``model.predict`` pass over ``validation_data``, computes
    :func:`kser.metrics.classification_metrics` and adds ``val_uar``, ``val_macro_f1`` and
    ``val_recall_<LABEL>`` to ``logs`` so that CSVLogger, TensorBoard, EarlyStopping and History
    see them (list ClassMetrics before them; see the module docstring). The full metrics dict of
    the latest epoch is kept in :attr:`latest`.

    ``validation_data`` is a finite ``tf.data.Dataset`` yielding ``(inputs, labels[, weights])``
    batches, or a tuple ``(inputs, labels)`` of arrays; labels may be one-hot or integer. The
    labels are read once and cached, and each epoch predicts on the inputs alone, so the dataset
    must yield the same order on every pass (no ``shuffle(reshuffle_each_iteration=True)``, which a
    validation set does not need anyway).

    With ``log_dir`` (normally the same folder as ``keras.callbacks.TensorBoard``'s) it also writes
    to ``log_dir/validation``, the run TensorBoard uses for validation: scalars ``uar``,
    ``macro_f1`` and ``recall/<LABEL>`` (one chart section for all classes) when
    ``write_scalars``, and a ``confusion_matrix`` image. With keras' TensorBoard later in the list
    the same numbers also appear there as ``epoch_uar`` etc.; pass ``write_scalars=False`` to keep
    only the image.

    ``passes``: how many times the validation pass counts each clip into ``confusion_metric``
    (multi-worker training feeds every worker the whole validation set); counts are divided by it.
    """

    def __init__(
        self,
        validation_data: Any,
        label_names: Sequence[str],
        log_dir: str | os.PathLike | None = None,
        *,
        batch_size: int = 64,
        write_scalars: bool = True,
        write_images: bool = True,
        confusion_metric: UnweightedAverageRecall | None = None,
        passes: int = 1,
    ) -> None:
        super().__init__()
        if passes < 1:
            raise ValueError(f"passes must be at least 1, got {passes}")
        self.passes = int(passes)
        if validation_data is None and confusion_metric is None:
            raise ValueError("ClassMetrics needs validation_data or a compiled confusion_metric")
        self.confusion_metric = confusion_metric
        self.label_names = [str(name) for name in label_names]
        if not self.label_names:
            raise ValueError("label_names is empty")
        self.log_dir = None if log_dir is None else os.fspath(log_dir)
        self.batch_size = batch_size
        self.write_scalars = write_scalars
        self.write_images = write_images
        self.latest: dict[str, Any] | None = None
        self._validation_data = validation_data
        self._inputs: Any = None
        self._labels: np.ndarray | None = None
        self._writer: Any = None

    # Data ---------------------------------------------------------------------------------------

    def _prepare(self) -> None:
        """Split validation data into an inputs-only source and cached integer labels (once)."""
        if self._labels is not None:
            return
        num_classes = len(self.label_names)
        data = self._validation_data
        if _is_tf_dataset(data):
            spec = data.element_spec
            if not isinstance(spec, tuple) or len(spec) < 2:
                raise ValueError("validation dataset must yield (inputs, labels) tuples")
            self._inputs = data.map(lambda *element: element[0])
            label_batches = [np.asarray(batch) for batch in data.map(lambda *element: element[1])]
            if not label_batches:
                raise ValueError("validation dataset is empty")
            labels = np.concatenate(label_batches, axis=0)
        elif isinstance(data, (tuple, list)) and len(data) >= 2:
            self._inputs, labels = data[0], np.asarray(data[1])
        else:
            raise TypeError(
                "validation_data must be a tf.data.Dataset of (inputs, labels) or a tuple (inputs, labels)"
            )
        self._labels = _class_indices(labels, num_classes)

    def evaluate(self) -> dict[str, Any]:
        """The full metrics dict of the latest validation pass.

        With ``confusion_metric`` (compiled into the model and so accumulated by Keras's own
        validation pass) it is read from the metric's confusion matrix; otherwise one prediction
        pass over ``validation_data``.
        """
        if self.confusion_metric is not None:
            confusion = keras.ops.convert_to_numpy(self.confusion_metric.confusion.value) / self.passes
            return metrics_from_confusion(np.rint(confusion), self.label_names)
        self._prepare()
        if _is_tf_dataset(self._inputs):
            probabilities = self.model.predict(self._inputs, verbose=0)
        else:
            probabilities = self.model.predict(self._inputs, batch_size=self.batch_size, verbose=0)
        probabilities = np.asarray(probabilities)
        if probabilities.ndim != 2 or probabilities.shape[1] != len(self.label_names):
            raise ValueError(
                f"model output shape {probabilities.shape} does not match "
                f"{len(self.label_names)} label names"
            )
        if probabilities.shape[0] != self._labels.shape[0]:
            raise ValueError(
                f"{probabilities.shape[0]} predictions for {self._labels.shape[0]} labels: "
                "does the validation dataset repeat or change between passes?"
            )
        return classification_metrics(self._labels, probabilities.argmax(axis=1), self.label_names)

    # Keras hooks ---------------------------------------------------------------------------------

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        metrics = self.evaluate()
        self.latest = metrics
        if logs is not None:
            logs["val_uar"] = metrics["uar"]
            logs["val_macro_f1"] = metrics["macro_f1"]
            for name in self.label_names:
                logs[f"val_recall_{name}"] = metrics["per_class"][name]["recall"]
        if self.log_dir is not None and (self.write_scalars or self.write_images):
            self._write_summaries(epoch, metrics)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    # TensorBoard ---------------------------------------------------------------------------------

    def _write_summaries(self, epoch: int, metrics: dict[str, Any]) -> None:
        from kser.event_writer import EventWriter
        from kser.plots import confusion_matrix_image

        if self._writer is None:
            self._writer = EventWriter(os.path.join(self.log_dir, "validation"))
        if self.write_scalars:
            self._writer.scalar("uar", metrics["uar"], epoch)
            self._writer.scalar("macro_f1", metrics["macro_f1"], epoch)
            for name in self.label_names:
                self._writer.scalar(f"recall/{name}", metrics["per_class"][name]["recall"], epoch)
        if self.write_images:
            image = confusion_matrix_image(
                np.asarray(metrics["confusion_matrix"]),
                self.label_names,
                title=f"validation, epoch {epoch + 1}",
            )
            self._writer.image("confusion_matrix", image, epoch)
        self._writer.flush()


class StopOnNonFinite(keras.callbacks.Callback):
    """Stop training as soon as the loss (or another monitored value) is NaN or infinite.

    Like ``keras.callbacks.TerminateOnNaN`` (which also catches inf in Keras 3), but it remembers
    what happened so that a command line can say it in one line after ``fit`` returns:
    :attr:`message` (e.g. ``"loss became nan at epoch 3 batch 17; stopping"``; epochs and batches
    counted from 1 as in the progress bar), plus :attr:`key`, :attr:`value`, :attr:`epoch` and
    :attr:`batch`. It stops gracefully with ``model.stop_training`` so that the other callbacks'
    ``on_train_end`` still runs (CSV flushed, TensorBoard closed).

    ``monitor`` names are checked in the batch logs and, at epoch end, also with a ``val_`` prefix
    (a validation loss can blow up while the training loss looks fine).
    """

    def __init__(self, monitor: Sequence[str] = ("loss",)) -> None:
        super().__init__()
        self.monitor = tuple(monitor)
        self.message: str | None = None
        self.key: str | None = None
        self.value: float | None = None
        self.epoch: int | None = None
        self.batch: int | None = None
        self._current_epoch = 0

    @property
    def stopped(self) -> bool:
        """Whether this callback stopped the run."""
        return self.message is not None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.message = self.key = self.value = self.epoch = self.batch = None

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._current_epoch = epoch

    def _check(self, logs: dict[str, Any] | None, keys: Sequence[str], batch: int | None) -> None:
        if self.message is not None or not logs:
            return
        for key in keys:
            if key not in logs:
                continue
            try:
                value = float(np.asarray(logs[key]))
            except (TypeError, ValueError):
                continue
            if math.isfinite(value):
                continue
            self.key, self.value = key, value
            self.epoch = self._current_epoch + 1
            self.batch = None if batch is None else batch + 1
            where = f"epoch {self.epoch}" + ("" if self.batch is None else f" batch {self.batch}")
            self.message = f"{key} became {value} at {where}; stopping"
            self.model.stop_training = True
            return

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._check(logs, self.monitor, batch)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._current_epoch = epoch
        self._check(logs, self.monitor + tuple(f"val_{key}" for key in self.monitor), None)


def save_atomically(model: keras.Model, path: str | os.PathLike, weights_only: bool = False, attributes: dict[str, Any] | None = None) -> None:
    """``model.save``/``save_weights`` to a temporary name, flushed and renamed into place.

    Why: a run killed, or a disk that fills up, during the write leaves the previous file (or
    none) under ``path``, never a truncated one that a resumed run would load. ``attributes``
    go into the weights file's HDF5 root, so they are committed with the weights.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic.replacing(path, ".weights.h5" if weights_only else path.suffix) as temp:
        if weights_only:
            try:
                payload = _weights_file(model, attributes or {})
            except (ImportError, AttributeError):  # a Keras without these internals: its public writer
                model.save_weights(temp)
                _add_attributes(temp, attributes or {})
            else:
                temp.write_bytes(payload)
        else:
            model.save(temp)  # a zip whose HDF5 part Keras builds in memory


def _weights_file(model: keras.Model, attributes: dict[str, Any]) -> bytes:
    """What ``model.save_weights`` writes to a ``.weights.h5`` file, built in memory.

    Why not ``save_weights`` itself: when HDF5's own write fails on a full disk, closing the file
    segfaults (h5py issue 914). Built in memory by Keras's own writer, the file reaches the disk
    through Python, where a full disk is an ordinary ``OSError``. Keras is pinned (3.15).
    """
    import io

    from keras.src.saving import saving_lib

    if not model.built:
        raise ValueError(f"model {model.name} is not built: it has no weights to save")
    buffer = io.BytesIO()
    store = saving_lib.H5IOStore(buffer, mode="w")
    try:
        saving_lib._save_state(model, weights_store=store, assets_store=None, inner_path="", visited_saveables=set())
        store.h5_file.attrs.update(attributes)
    finally:
        store.close()
    return buffer.getvalue()


def _add_attributes(weights: Path, attributes: dict[str, Any]) -> None:
    """Set ``attributes`` on a weights file's HDF5 root (the fallback path of :func:`save_atomically`)."""
    if attributes:
        import h5py

        with h5py.File(weights, "a") as handle:
            handle.attrs.update(attributes)


class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """``keras.callbacks.ModelCheckpoint`` whose file is written by :func:`save_atomically`.

    Keras decides whether and where to save (``_should_save_model`` keeps ``best``); only the
    write itself is replaced.
    """

    def _save_model(self, epoch: int, batch: int | None, logs: dict[str, Any] | None) -> None:
        filepath = self._get_file_path(epoch, batch, logs)
        if self._should_save_model(epoch, batch, logs, filepath):
            save_atomically(self.model, filepath, weights_only=self.save_weights_only)


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """``keras.callbacks.BackupAndRestore`` that never loads a damaged backup.

    Why: Keras writes ``latest.weights.h5`` in place, so a kill or a full disk mid-write leaves a
    file that crashes every rerun (h5py errors, once a segfault). Here the backup is one file,
    weights plus the number of epochs done (an HDF5 attribute), written by :func:`save_atomically`:
    one rename commits both. On resume the file is read through once with h5py before Keras loads
    it; a damaged one is reported in one line through ``warn`` and the run starts from epoch 1.
    """

    EPOCHS_ATTRIBUTE = "kser_epochs_done"

    def __init__(self, backup_dir: str | os.PathLike, warn: Callable[[str], None] | None = None) -> None:
        super().__init__(os.fspath(backup_dir))
        self._warn = warn
        self._epochs_done: int | None = None

    def epochs_done(self) -> int:
        """The epochs the backup holds, to resume after: 0 without one or with a damaged one."""
        if self._epochs_done is None:
            self._epochs_done = self._check_backup()
        return self._epochs_done

    def _check_backup(self) -> int:
        path = Path(self._weights_path)
        if not path.exists():
            return 0
        try:
            return _epochs_in_backup(path, Path(self._training_metadata_path), self.EPOCHS_ATTRIBUTE)
        except Exception as error:  # any way a file can be damaged: h5py, OS and value errors
            if self._warn is not None:
                reason = str(error).splitlines()[0] if str(error) else type(error).__name__
                self._warn(f"training backup {path} is damaged ({reason}); training again from epoch 1")
            return 0

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        epochs, self._epochs_done = self.epochs_done(), None  # a later fit checks afresh
        if epochs == 0:
            return
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)  # its weights are in the backup too
        self.model.load_weights(self._weights_path)
        self.model._initial_epoch = epochs

    def _save_model(self) -> None:
        save_atomically(self.model, self._weights_path, weights_only=True, attributes={self.EPOCHS_ATTRIBUTE: self._current_epoch})
        # Keras's own record of the epoch, for readers that know only Keras's layout; kser reads the attribute.
        atomic.write_text(self._training_metadata_path, json.dumps({"epoch": self._current_epoch, "batch": self._last_batch_seen}))


def _epochs_in_backup(weights: Path, metadata: Path, attribute: str) -> int:
    """Read every array of ``weights`` (raises if any part is damaged); its epochs-done attribute,
    or, for a backup Keras's own callback wrote, the epoch in its metadata file."""
    import h5py

    def read(_: str, item: Any) -> None:  # returns None: visititems stops at the first other value
        if isinstance(item, h5py.Dataset):
            item[()]

    with h5py.File(weights, "r") as handle:
        handle.visititems(read)
        if attribute in handle.attrs:
            return int(handle.attrs[attribute])
    return int(json.loads(metadata.read_text())["epoch"])
