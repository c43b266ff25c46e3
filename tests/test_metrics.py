"""Tests for kser.metrics: checked against scikit-learn, including classes never predicted or absent."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kser import metrics

NAMES = ["ANG", "DIS", "FEA", "HAP", "NEU", "SAD"]


def _labels(seed: int, n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """Random labels where class 2 (FEA) is never predicted and class 5 (SAD) never occurs in y_true."""
    rng = np.random.default_rng(seed)
    y_true = rng.choice([0, 1, 2, 3, 4], size=n)
    y_pred = np.where(rng.random(n) < 0.5, y_true, rng.integers(0, 6, size=n))
    y_pred[y_pred == 2] = 3
    y_pred[:3] = 5  # make sure the absent class is predicted at least once
    return y_true, y_pred


def test_confusion_matrix_matches_sklearn_and_orientation() -> None:
    sk = pytest.importorskip("sklearn.metrics")
    y_true, y_pred = _labels(0)
    cm = metrics.confusion_matrix(y_true, y_pred, 6)
    assert cm.dtype == np.int64 and cm.shape == (6, 6)
    np.testing.assert_array_equal(cm, sk.confusion_matrix(y_true, y_pred, labels=range(6)))
    # Rows are true classes: one sample of class 0 predicted as 1.
    np.testing.assert_array_equal(metrics.confusion_matrix([0], [1], 2), [[0, 1], [0, 0]])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_classification_metrics_match_sklearn(seed: int) -> None:
    sk = pytest.importorskip("sklearn.metrics")
    y_true, y_pred = _labels(seed)
    labels = list(range(6))
    result = metrics.classification_metrics(y_true, y_pred, NAMES)
    p, r, f, s = sk.precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    for i, name in enumerate(NAMES):
        row = result["per_class"][name]
        assert row["precision"] == pytest.approx(p[i])
        assert row["recall"] == pytest.approx(r[i])
        assert row["f1"] == pytest.approx(f[i])
        assert row["support"] == s[i]
    assert result["per_class"]["FEA"]["precision"] == 0.0  # never predicted: 0/0 -> 0
    assert result["per_class"]["SAD"]["recall"] == 0.0  # absent from y_true: 0/0 -> 0
    assert result["absent_classes"] == ["SAD"]
    assert result["accuracy"] == pytest.approx(sk.accuracy_score(y_true, y_pred))
    options = dict(labels=labels, zero_division=0)
    assert result["uar"] == pytest.approx(sk.recall_score(y_true, y_pred, average="macro", **options))
    assert result["macro_f1"] == pytest.approx(sk.f1_score(y_true, y_pred, average="macro", **options))
    assert result["weighted_f1"] == pytest.approx(sk.f1_score(y_true, y_pred, average="weighted", **options))
    report = sk.classification_report(
        y_true, y_pred, labels=labels, target_names=NAMES, output_dict=True, zero_division=0
    )
    for ours, theirs in (("macro_avg", "macro avg"), ("weighted_avg", "weighted avg")):
        assert result[ours]["precision"] == pytest.approx(report[theirs]["precision"])
        assert result[ours]["recall"] == pytest.approx(report[theirs]["recall"])
        assert result[ours]["f1"] == pytest.approx(report[theirs]["f1-score"])
        assert result[ours]["support"] == report[theirs]["support"] == len(y_true)
    assert result["confusion_matrix"] == sk.confusion_matrix(y_true, y_pred, labels=labels).tolist()
    json.dumps(result)  # plain Python types only


def test_uar_is_balanced_accuracy_when_every_class_occurs() -> None:
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(5)
    y_true = np.concatenate([np.arange(6), rng.integers(0, 6, size=200)])
    y_pred = rng.integers(0, 6, size=y_true.size)
    result = metrics.classification_metrics(y_true, y_pred, NAMES)
    assert result["uar"] == pytest.approx(sk.balanced_accuracy_score(y_true, y_pred))
    assert result["absent_classes"] == []


@pytest.mark.parametrize("digits", [2, 4])
def test_report_text_matches_sklearn(digits: int) -> None:
    sk = pytest.importorskip("sklearn.metrics")
    y_true, y_pred = _labels(3)
    expected = sk.classification_report(
        y_true, y_pred, labels=range(6), target_names=NAMES, zero_division=0, digits=digits
    )
    result = metrics.classification_metrics(y_true, y_pred, NAMES)
    assert metrics.classification_report_text(result, digits=digits) == expected
    # Also from a JSON round trip (a saved metrics file), with a long label name.
    names = ["anger", "disgust", "fear", "happiness", "neutral", "a_very_long_sadness"]
    result = json.loads(json.dumps(metrics.classification_metrics(y_true, y_pred, names)))
    expected = sk.classification_report(y_true, y_pred, labels=range(6), target_names=names, zero_division=0)
    assert metrics.classification_report_text(result) == expected


def test_accepts_float_and_column_labels() -> None:
    cm = metrics.confusion_matrix(np.array([[0.0], [1.0], [1.0]]), np.array([0, 1, 0]), 2)
    np.testing.assert_array_equal(cm, [[1, 0], [1, 1]])


@pytest.mark.parametrize(
    "y_true, y_pred, message",
    [
        ([0, 1], [0], "differ in length"),
        ([0, 3], [0, 1], "outside"),
        ([0, -1], [0, 1], "outside"),
        ([0.5, 1.0], [0, 1], "integer"),
    ],
)
def test_bad_inputs_are_rejected(y_true, y_pred, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        metrics.confusion_matrix(y_true, y_pred, 3)


def test_bad_label_names_and_empty_inputs() -> None:
    with pytest.raises(ValueError, match="unique"):
        metrics.classification_metrics([0, 1], [0, 1], ["A", "A"])
    with pytest.raises(ValueError, match="zero samples"):
        metrics.classification_metrics([], [], ["A", "B"])
