"""Tests for kser.plots: valid PNGs written atomically, image arrays, tolerance of missing history keys."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kser import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NAMES = ["ANG", "DIS", "FEA", "HAP", "NEU", "SAD"]
REPO_ROOT = Path(__file__).resolve().parents[1]


def _cm() -> np.ndarray:
    rng = np.random.default_rng(0)
    cm = rng.integers(0, 40, size=(6, 6))
    cm[5] = 0  # a class with no true samples must not produce NaN colours
    return cm


def _assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert 5_000 < len(data) < 2_000_000
    assert not list(path.parent.glob(".*.tmp")), "temporary file left behind"


def test_import_is_cheap() -> None:
    code = "import sys, kser.plots; print('matplotlib' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize("normalize", [True, False])
def test_confusion_matrix_png(tmp_path: Path, normalize: bool) -> None:
    path = plots.confusion_matrix_png(_cm(), NAMES, tmp_path / "sub" / "cm.png", normalize=normalize)
    assert path == tmp_path / "sub" / "cm.png"
    _assert_png(path)


def test_confusion_matrix_png_replaces_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "cm.png"
    path.write_bytes(b"old")
    plots.confusion_matrix_png(_cm(), NAMES, path, title=None)
    _assert_png(path)


def test_confusion_matrix_image() -> None:
    image = plots.confusion_matrix_image(_cm(), NAMES)
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] in (3, 4)
    assert 200 <= image.shape[0] <= 1200 and 200 <= image.shape[1] <= 1200
    assert image.min() < 100 and image.max() == 255  # something was drawn on the white background


def test_confusion_matrix_shape_mismatch() -> None:
    with pytest.raises(ValueError, match="label names"):
        plots.confusion_matrix_image(np.zeros((3, 3)), NAMES)


def test_training_curves_png(tmp_path: Path) -> None:
    history = {
        "accuracy": [0.3, 0.4, 0.5],
        "val_accuracy": [0.25, 0.35, 0.4],
        "loss": [1.7, 1.5, 1.3],
        "val_loss": [1.8, 1.6, float("nan")],
    }
    _assert_png(plots.training_curves_png(history, tmp_path / "curves.png", title="run"))


@pytest.mark.parametrize(
    "history",
    [
        {"loss": [1.0, 0.9]},  # no accuracy, no validation
        {"val_categorical_accuracy": [0.2], "val_loss": [2.0]},  # validation only, other metric name
        {},
    ],
)
def test_training_curves_missing_keys(tmp_path: Path, history: dict) -> None:
    _assert_png(plots.training_curves_png(history, tmp_path / "curves.png"))


def test_training_curves_accepts_history_object(tmp_path: Path) -> None:
    class FakeHistory:
        history = {"loss": np.array([1.0, 0.5])}

    _assert_png(plots.training_curves_png(FakeHistory(), tmp_path / "curves.png"))
    with pytest.raises(TypeError):
        plots.training_curves_png([1, 2], tmp_path / "bad.png")
