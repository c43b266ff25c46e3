"""``kser evaluate``: the study's figures and tables for one split, from one command.

Writes report.json (accuracy, UAR, macro F1, per-class precision/recall/F1/support, confusion
matrix, split protocol, seed, manifest checksum), classification_report.txt,
confusion_matrix.png and training_curves.png.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from kser import model_dir as layout
from kser.atomic import write_json, write_text
from kser.data import make_dataset, read_manifest
from kser.errors import KserError
from kser.metrics import classification_metrics, classification_report_text
from kser.records import MANIFEST_FILE, file_sha256


def read_history(model_dir: str | Path) -> dict[str, list[float]]:
    """history.csv as columns (empty when the run wrote none)."""
    path = Path(model_dir) / layout.HISTORY_FILE
    if not path.is_file():
        return {}
    columns: dict[str, list[float]] = {}
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            for key, value in row.items():
                if key != "epoch" and value not in ("", None):
                    columns.setdefault(key, []).append(float(value))
    return columns


def evaluate(model_dir: str | Path, records_dir: str | Path, split: str = "test", output_dir: str | Path | None = None, batch_size: int = 32) -> dict[str, Any]:
    """Score the trained model on ``split`` and write the report files; returns report.json's content."""
    from kser.plots import confusion_matrix_png, training_curves_png

    model_dir, records_dir = Path(model_dir), Path(records_dir)
    info = layout.load_info(model_dir)
    manifest = read_manifest(records_dir)
    if tuple(manifest["label_names"]) != info.label_names:
        raise KserError(
            f"label sets differ: the model knows {' '.join(info.label_names)}, "
            f"{records_dir} holds {' '.join(manifest['label_names'])}"
        )
    model = layout.load_model(model_dir)
    dataset = make_dataset(records_dir, split, batch_size=batch_size, training=False, features=info.features, one_hot=False)
    # One pass: reading the labels and predicting separately would decode and featurise twice.
    true_batches, predicted_batches = [], []
    for inputs, labels in dataset:
        true_batches.append(labels.numpy())
        predicted_batches.append(np.argmax(model.predict_on_batch(inputs), axis=1))
    y_true, y_pred = np.concatenate(true_batches), np.concatenate(predicted_batches)
    metrics = classification_metrics(y_true, y_pred, info.label_names)

    output = Path(output_dir) if output_dir else model_dir / "eval"
    output.mkdir(parents=True, exist_ok=True)
    report = {
        "split": split,
        "clips": int(y_true.size),
        "arch": info.arch,
        **metrics,
        "protocol": {
            "split_strategy": manifest["config"]["split"]["strategy"],
            "split_fractions": manifest["config"]["split"]["fractions"],
            "records_seed": manifest["seed"],
            "train": info.extra.get("train", {}),
        },
        "records_dir": str(records_dir.resolve()),
        "manifest_sha256": file_sha256(records_dir / MANIFEST_FILE),
        "trained_on_manifest_sha256": info.records_manifest_sha256,
    }
    write_json(output / "report.json", report)
    write_text(output / "classification_report.txt", classification_report_text(metrics, digits=3) + "\n")
    confusion_matrix_png(np.asarray(metrics["confusion_matrix"]), info.label_names, output / "confusion_matrix.png", title=f"{info.arch} on {split}")
    training_curves_png(read_history(model_dir), output / "training_curves.png", title=info.arch)
    return report


def summary_table(report: dict[str, Any]) -> str:
    """A short printable summary: headline numbers and per-class recall."""
    lines = [
        f"{report['arch']} on {report['split']} ({report['clips']} clips): "
        f"accuracy {report['accuracy']:.4f}  UAR {report['uar']:.4f}  macro F1 {report['macro_f1']:.4f}",
        f"{'class':<8}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}",
    ]
    for name, row in report["per_class"].items():
        lines.append(f"{name:<8}{row['precision']:>10.3f}{row['recall']:>10.3f}{row['f1']:>10.3f}{row['support']:>9d}")
    return "\n".join(lines)
