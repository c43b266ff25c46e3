"""Figures for reports and TensorBoard: confusion matrices and training curves.

Why this shape: matplotlib is imported inside the functions, so ``import kser.plots`` (and the
command line that imports it) stays cheap; figures are drawn on an explicit Agg canvas rather than
through ``pyplot``, so there is no global figure state or interactive backend, and plotting from a
training callback cannot open a window or leak figures. PNG files are written under a temporary
name and renamed into place (:mod:`kser.atomic`), so a reader never sees half a file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from kser.atomic import commit, temp_path_for

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.figure import Figure

__all__ = ["confusion_matrix_png", "confusion_matrix_image", "robustness_png", "training_curves_png"]

# Candidate history keys, most specific first: Keras names accuracy after the metric given to compile().
_ACCURACY_KEYS = ("accuracy", "categorical_accuracy", "sparse_categorical_accuracy", "acc")


def _new_figure(figsize: tuple[float, float], dpi: int) -> "Figure":
    """A figure bound to an Agg canvas (no pyplot, no GUI backend)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=figsize, dpi=dpi, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save_png(figure: "Figure", path: str | os.PathLike) -> Path:
    """Write ``figure`` as PNG atomically; creates the parent folder."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_path_for(final)
    try:
        figure.savefig(temp, format="png")
        commit(temp, final)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return final


def _confusion_figure(
    cm: Any, label_names: Sequence[str], *, normalize: bool, title: str | None, dpi: int
) -> "Figure":
    """Heat map of a confusion matrix, coloured by row-normalised recall, cells annotated with counts."""
    counts = np.asarray(cm)
    names = [str(name) for name in label_names]
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise ValueError(f"confusion matrix must be square, got shape {counts.shape}")
    if counts.shape[0] != len(names):
        raise ValueError(f"{len(names)} label names for a {counts.shape[0]}-class confusion matrix")
    num_classes = len(names)
    row_sums = counts.sum(axis=1, keepdims=True).astype(np.float64)
    if normalize:
        # Recall colours make classes of different sizes comparable; an empty row stays 0.
        shown = np.divide(counts, row_sums, out=np.zeros(counts.shape), where=row_sums != 0)
        vmax, bar_label = 1.0, "row fraction (recall on the diagonal)"
    else:
        shown = counts.astype(np.float64)
        vmax, bar_label = max(float(shown.max()), 1.0), "count"

    side = max(4.0, 0.75 * num_classes + 2.5)
    figure = _new_figure((side + 1.0, side), dpi)
    axes = figure.add_subplot()
    image = axes.imshow(shown, cmap="Blues", vmin=0.0, vmax=vmax, interpolation="nearest")
    figure.colorbar(image, ax=axes, label=bar_label, shrink=0.8)
    ticks = np.arange(num_classes)
    axes.set_xticks(ticks, names, rotation=45, ha="right", rotation_mode="anchor")
    axes.set_yticks(ticks, names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    if title:
        axes.set_title(title)

    font_size = 9 if num_classes <= 8 else max(5, 9 - (num_classes - 8) // 2)
    for i in range(num_classes):
        for j in range(num_classes):
            text = f"{int(counts[i, j])}"
            if normalize:
                text += f"\n{100.0 * shown[i, j]:.1f}%"
            colour = "white" if shown[i, j] > 0.5 * vmax else "black"
            axes.text(j, i, text, ha="center", va="center", color=colour, fontsize=font_size)
    return figure


def confusion_matrix_png(
    cm: Any,
    label_names: Sequence[str],
    path: str | os.PathLike,
    normalize: bool = True,
    title: str | None = "Confusion matrix",
    dpi: int = 120,
) -> Path:
    """Save a confusion-matrix heat map (rows true, columns predicted) as a PNG; returns the path.

    With ``normalize`` the colours are row-normalised (each row is that class's recall
    distribution, as in the study's figures) and each cell shows its count and row percentage;
    without it the colours are raw counts.
    """
    figure = _confusion_figure(cm, label_names, normalize=normalize, title=title, dpi=dpi)
    return _save_png(figure, path)


def confusion_matrix_image(
    cm: Any,
    label_names: Sequence[str],
    normalize: bool = True,
    title: str | None = None,
    dpi: int = 80,
) -> np.ndarray:
    """The confusion-matrix figure rendered to a ``uint8`` RGB array ``[H, W, 3]``.

    For ``tf.summary.image`` (add a batch axis): TensorBoard then shows the matrix per epoch
    without any file on disk. The default DPI keeps a 6-class image around 500 x 400 pixels.
    """
    figure = _confusion_figure(cm, label_names, normalize=normalize, title=title, dpi=dpi)
    canvas = figure.canvas
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    return np.ascontiguousarray(rgba[..., :3], dtype=np.uint8)


def _history_dict(history: Any) -> Mapping[str, Sequence[float]]:
    """Accept a plain dict or a ``keras.callbacks.History`` (its ``.history`` dict)."""
    if isinstance(history, Mapping):
        return history
    inner = getattr(history, "history", None)
    if isinstance(inner, Mapping):
        return inner
    raise TypeError(f"history must be a dict of lists (or a keras History), got {type(history).__name__}")


def _has_series(history: Mapping[str, Sequence[float]], key: str) -> bool:
    values = history.get(key)
    return values is not None and len(values) > 0


def _plot_pair(axes: Any, history: Mapping[str, Sequence[float]], keys: Sequence[str], label: str) -> None:
    """Plot train and validation series for the first key present; note when there is nothing."""
    key = next((k for k in keys if _has_series(history, k) or _has_series(history, f"val_{k}")), None)
    axes.set_title(label)
    axes.set_xlabel("epoch")
    axes.set_ylabel(label)
    if key is None:
        axes.text(0.5, 0.5, f"no {label} recorded", ha="center", va="center", transform=axes.transAxes)
        return
    for series_key, series_label, style in ((key, "train", "-"), (f"val_{key}", "validation", "--")):
        if not _has_series(history, series_key):
            continue
        values = np.asarray(history[series_key], dtype=np.float64)
        epochs = np.arange(1, values.size + 1)
        axes.plot(epochs, values, style, marker="o", markersize=3, label=series_label)
    from matplotlib.ticker import MaxNLocator

    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.grid(True, alpha=0.3)
    axes.legend()


def training_curves_png(
    history: Mapping[str, Sequence[float]] | Any,
    path: str | os.PathLike,
    title: str | None = None,
    dpi: int = 120,
) -> Path:
    """Save accuracy and loss curves, train vs validation, side by side as a PNG; returns the path.

    ``history`` is ``History.history`` (or the History itself). Accuracy is read from the first of
    ``accuracy``/``categorical_accuracy``/``sparse_categorical_accuracy``/``acc`` present, loss from
    ``loss``; the ``val_`` series are drawn dashed when present. Missing series are skipped and an
    empty panel says so, so a run cut short still gets its figure. Epochs are numbered from 1.
    """
    data = _history_dict(history)
    figure = _new_figure((10.0, 4.0), dpi)
    accuracy_axes, loss_axes = figure.subplots(1, 2)
    _plot_pair(accuracy_axes, data, _ACCURACY_KEYS, "accuracy")
    _plot_pair(loss_axes, data, ("loss",), "loss")
    if title:
        figure.suptitle(title)
    return _save_png(figure, path)


def robustness_png(
    table: Mapping[str, Mapping[str, float]], clean_uar: float, path: str | os.PathLike, title: str | None = None, dpi: int = 120
) -> Path:
    """UAR against SNR, one line per noise (``{kind: {snr: uar}}``, kser.robustness), the clean
    UAR as a dashed reference; higher SNR to the right. Returns the path."""
    figure = _new_figure((6.0, 4.0), dpi)
    axes = figure.subplots()
    for kind, row in table.items():
        snrs = sorted(row, key=float)
        axes.plot([float(snr) for snr in snrs], [100 * row[snr] for snr in snrs], marker="o", label=kind)
    axes.axhline(100 * clean_uar, linestyle="--", color="gray", label="clean")
    axes.set_xlabel("SNR (dB)")
    axes.set_ylabel("UAR (%)")
    axes.set_ylim(0, 100)
    axes.legend()
    axes.grid(alpha=0.3)
    if title:
        axes.set_title(title)
    return _save_png(figure, path)
