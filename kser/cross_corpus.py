"""A cross-validation's fold models scored on another corpus: each alone, and their average.

Why: speaker cross-validation measures new speakers of the same corpus; a second, harder figure is
another corpus (another language, recording chain, label set). A cross-validation already keeps
one model per fold, each trained on most of the speakers, so every fold model is scored on the
other corpus's records (``kser build-records --split=none``): their mean ± sd, and the average of
their class probabilities (one model's worth of answer from the whole cross-validation). UAR
averages over the classes the corpus holds, as ``kser evaluate`` does, and, where the corpus
declares fewer emotions than the models know, also with the models choosing only among its
emotions (``kser.evaluation.among_records_labels``). Evaluation only: nothing is trained.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from kser.errors import KserError


def score_fold_models(
    fold_dirs: Sequence[Path],
    records_dir: str | Path,
    split: str = "test",
    speaker_stats: str = "speaker",
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Each fold model of ``fold_dirs`` (``kser train`` directories) on ``split`` of ``records_dir``."""
    from kser import model_dir as model_files
    from kser.cross_validation import mean_sd
    from kser.evaluation import among_records_labels, metrics_for, predict_split
    from kser.records_info import read_records_info

    records_dir = Path(records_dir)
    if not fold_dirs:
        raise KserError(f"no fold model to score on {records_dir}")
    records_labels = read_records_info(records_dir).label_names
    labels, names, probabilities, rows = None, None, [], []
    for directory in fold_dirs:
        info = model_files.load_info(directory)
        y_true, member = predict_split(model_files.load_model(directory), info, records_dir, split, speaker_stats=speaker_stats)
        if labels is not None and (not np.array_equal(labels, y_true) or names != info.label_names):
            raise KserError(f"{directory} saw other clips or labels of {records_dir} than {fold_dirs[0]}")
        labels, names = y_true, info.label_names
        probabilities.append(member)
        metrics = metrics_for(y_true, member, names)
        among = among_records_labels(y_true, member, names, records_labels)
        rows.append({"fold": _fold_name(directory), "uar": metrics["uar"], "accuracy": metrics["accuracy"], "among_records_labels_uar": among and among["uar"]})
        if log is not None:
            among_text = f"; among the records' labels: UAR {100 * among['uar']:.1f}" if among else ""
            log(f"{directory.name} on {records_dir.name}: UAR {100 * metrics['uar']:.1f}  accuracy {100 * metrics['accuracy']:.1f}{among_text}")
    mean_probabilities = np.mean(probabilities, axis=0)
    averaged = metrics_for(labels, mean_probabilities, names)
    averaged_among = among_records_labels(labels, mean_probabilities, names, records_labels)
    result: dict[str, Any] = {
        "records_dir": str(records_dir.resolve()),
        "split": split,
        "speaker_stats": speaker_stats,
        "clips": int(labels.size),
        "classes_present": averaged["classes_present"],
        "per_fold": rows,
        "fold_models_uar": mean_sd([row["uar"] for row in rows]),
        "averaged_models": {
            "uar": averaged["uar"],
            "accuracy": averaged["accuracy"],
            "recall": {name: averaged["per_class"][name]["recall"] for name in averaged["classes_present"]},
        },
    }
    if averaged_among is not None:  # the records declare fewer emotions than the models know
        result["among_records_labels"] = {
            "labels": averaged_among["labels"],
            "fold_models_uar": mean_sd([row["among_records_labels_uar"] for row in rows]),
            "averaged_models": averaged_among,
        }
    return result


def _fold_name(directory: Path) -> int | str:
    """A cross-validation fold's index (``fold-3`` -> 3), else the directory's name."""
    index = directory.name.removeprefix("fold-")
    return int(index) if index.isdigit() else directory.name


def check_corpus(records_dir: str | Path, trained_on: Any) -> None:
    """KserError, before anything trains, when ``records_dir`` cannot be scored by models trained
    on records like ``trained_on`` (a kser.records_info.RecordsInfo): unreadable, another sample
    rate or clip length, or a label the models will not know."""
    from kser.evaluation import label_mapping
    from kser.records_info import read_records_info

    records_dir = Path(records_dir)
    other = read_records_info(records_dir)
    if (other.audio.sample_rate, other.clip_samples) != (trained_on.audio.sample_rate, trained_on.clip_samples):
        raise KserError(
            f"--cross_corpus {records_dir} holds clips of {other.clip_samples} samples at {other.audio.sample_rate} Hz, but the "
            f"models train on {trained_on.clip_samples} at {trained_on.audio.sample_rate} Hz; build it with the same --sample_rate and --clip_seconds"
        )
    label_mapping(tuple(trained_on.label_names), list(other.label_names), records_dir)


def summary(name: str, result: dict[str, Any]) -> str:
    """Two printable lines: the fold models' mean ± sd and their average, six-way and among the corpus's labels."""
    from kser.cross_validation import format_mean_sd

    lines = [
        f"{name} on {Path(result['records_dir']).name} ({result['clips']} clips, {len(result['per_fold'])} fold models): "
        f"UAR {format_mean_sd(result['fold_models_uar'], digits=1, scale=100)} per model; "
        f"their average {100 * result['averaged_models']['uar']:.1f}"
    ]
    among = result.get("among_records_labels")
    if among is not None:
        lines.append(
            f"choosing only among the records' labels ({' '.join(among['labels'])}): UAR "
            f"{format_mean_sd(among['fold_models_uar'], digits=1, scale=100)} per model; "
            f"their average {100 * among['averaged_models']['uar']:.1f}"
        )
    return "\n".join(lines)
