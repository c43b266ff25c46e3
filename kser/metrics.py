"""Classification metrics for emotion recognition, in plain NumPy.

Why not scikit-learn: it would be a heavy runtime dependency for a few lines of arithmetic, and
these functions run inside training (once per epoch, see :class:`kser.callbacks.ClassMetrics`).
The numbers match scikit-learn's ``precision_recall_fscore_support(..., labels=range(C),
zero_division=0)`` and ``classification_report`` (the tests check this).

Conventions:

* Labels are integer class indices ``0 .. C-1``; ``label_names[i]`` names class ``i``. Every class
  in ``label_names`` is reported, including ones absent from ``y_true`` or never predicted.
* 0/0 is 0.0 (scikit-learn's ``zero_division=0``): the precision of a class that is never
  predicted, the recall of a class with no true samples, and the F1 of a class with neither.
* UAR (unweighted average recall) is the mean per-class recall over *all* ``label_names``, i.e. the
  macro-average recall. A class absent from ``y_true`` therefore counts as recall 0.0; when every
  class occurs (any proper validation/test split), UAR equals scikit-learn's
  ``balanced_accuracy_score``. Such classes are listed under ``"absent_classes"`` so that a caller
  can warn about them.
* F1 per class is ``2 tp / (2 tp + fp + fn)``, which equals ``2 P R / (P + R)`` wherever that
  is defined.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

__all__ = ["confusion_matrix", "classification_metrics", "classification_report_text", "metrics_from_confusion"]


def _as_label_vector(values: Any, name: str) -> np.ndarray:
    """1-D int64 class indices; integer-valued floats are accepted (Keras often yields float labels)."""
    array = np.asarray(values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of class indices, got shape {array.shape}")
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)) or not np.all(array == np.round(array)):
            raise ValueError(f"{name} must hold integer class indices")
    elif array.dtype.kind not in "iu" and array.size:
        raise ValueError(f"{name} must hold integer class indices, got dtype {array.dtype}")
    return array.astype(np.int64, copy=False)


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Elementwise division with 0/0 (and x/0) defined as 0.0."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    out = np.zeros(np.broadcast(numerator, denominator).shape, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def confusion_matrix(y_true: Any, y_pred: Any, num_classes: int) -> np.ndarray:
    """Counts ``cm[i, j]`` of samples of true class ``i`` predicted as class ``j`` (int64, C x C).

    Rows are true classes and columns predictions, as in scikit-learn, so a row divided by its sum
    is that class's recall distribution.
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be positive, got {num_classes}")
    true = _as_label_vector(y_true, "y_true")
    pred = _as_label_vector(y_pred, "y_pred")
    if true.shape != pred.shape:
        raise ValueError(f"y_true and y_pred differ in length: {true.shape[0]} vs {pred.shape[0]}")
    for name, array in (("y_true", true), ("y_pred", pred)):
        if array.size and (array.min() < 0 or array.max() >= num_classes):
            raise ValueError(
                f"{name} holds class indices outside 0..{num_classes - 1}: "
                f"min {array.min()}, max {array.max()}"
            )
    # One bincount over the flattened (true, pred) pair index: fast for any number of samples.
    flat = np.bincount(true * num_classes + pred, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes).astype(np.int64, copy=False)


def classification_metrics(y_true: Any, y_pred: Any, label_names: Sequence[str]) -> dict[str, Any]:
    """Accuracy, UAR, macro/weighted F1, per-class precision/recall/F1/support and the confusion matrix.

    Returns a JSON-serialisable dict (plain Python floats, ints and lists)::

        {"accuracy", "uar", "macro_f1", "weighted_f1": float,
         "support": int (number of samples),
         "label_names": [str, ...],
         "per_class": {name: {"precision", "recall", "f1": float, "support": int}},
         "macro_avg" / "weighted_avg": {"precision", "recall", "f1": float, "support": int},
         "absent_classes": [names with no sample in y_true],
         "confusion_matrix": [[int, ...], ...]}   # rows true, columns predicted

    ``per_class`` keeps the order of ``label_names``. See the module docstring for the 0/0 rule.
    """
    names = _checked_names(label_names)
    return metrics_from_confusion(confusion_matrix(y_true, y_pred, len(names)), names)


def _checked_names(label_names: Sequence[str]) -> list[str]:
    names = [str(name) for name in label_names]
    if not names:
        raise ValueError("label_names is empty")
    if len(set(names)) != len(names):
        raise ValueError(f"label_names must be unique, got {names}")
    return names


def metrics_from_confusion(confusion: Any, label_names: Sequence[str]) -> dict[str, Any]:
    """:func:`classification_metrics` from a confusion matrix of counts (rows true, columns predicted).

    For a matrix accumulated elsewhere (a Keras metric over a validation pass, or folds pooled).
    """
    names = _checked_names(label_names)
    cm = np.rint(np.asarray(confusion, dtype=np.float64)).astype(np.int64)
    if cm.shape != (len(names), len(names)):
        raise ValueError(f"confusion matrix must be {len(names)} x {len(names)}, got shape {cm.shape}")
    total = int(cm.sum())
    if total == 0:
        raise ValueError("cannot compute classification metrics on zero samples")

    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)  # true samples per class
    predicted = cm.sum(axis=0)  # predictions per class
    precision = _safe_divide(tp, predicted)
    recall = _safe_divide(tp, support)
    f1 = _safe_divide(2.0 * tp, support + predicted)  # 2tp + fp + fn == support + predicted
    weights = support / total

    per_class = {
        name: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(names)
    }
    macro_avg = {
        "precision": float(precision.mean()),
        "recall": float(recall.mean()),
        "f1": float(f1.mean()),
        "support": total,
    }
    weighted_avg = {
        "precision": float(np.dot(weights, precision)),
        "recall": float(np.dot(weights, recall)),
        "f1": float(np.dot(weights, f1)),
        "support": total,
    }
    return {
        "accuracy": float(tp.sum() / total),
        "uar": macro_avg["recall"],
        "macro_f1": macro_avg["f1"],
        "weighted_f1": weighted_avg["f1"],
        "support": total,
        "label_names": names,
        "per_class": per_class,
        "macro_avg": macro_avg,
        "weighted_avg": weighted_avg,
        "absent_classes": [name for name, count in zip(names, support) if count == 0],
        "confusion_matrix": cm.tolist(),
    }


def classification_report_text(metrics: dict[str, Any], digits: int = 2) -> str:
    """Text table laid out exactly like ``sklearn.metrics.classification_report``.

    Takes the dict from :func:`classification_metrics` (also after a JSON round trip), so a saved
    metrics file can be re-rendered without the predictions.
    """
    names = list(metrics["label_names"])
    per_class = metrics["per_class"]
    headers = ["precision", "recall", "f1-score", "support"]
    width = max(max(len(name) for name in names), len("weighted avg"), digits)
    head_fmt = "{:>{width}s} " + " {:>9}" * len(headers)
    row_fmt = "{:>{width}s} " + " {:>9.{digits}f}" * 3 + " {:>9}\n"

    report = head_fmt.format("", *headers, width=width) + "\n\n"
    for name in names:
        row = per_class[name]
        report += row_fmt.format(
            name, row["precision"], row["recall"], row["f1"], int(row["support"]),
            width=width, digits=digits,
        )
    report += "\n"
    accuracy_fmt = "{:>{width}s} " + " {:>9}" * 2 + " {:>9.{digits}f}" + " {:>9}\n"
    report += accuracy_fmt.format(
        "accuracy", "", "", metrics["accuracy"], int(metrics["support"]), width=width, digits=digits
    )
    for heading, key in (("macro avg", "macro_avg"), ("weighted avg", "weighted_avg")):
        avg = metrics[key]
        report += row_fmt.format(
            heading, avg["precision"], avg["recall"], avg["f1"], int(avg["support"]),
            width=width, digits=digits,
        )
    return report
