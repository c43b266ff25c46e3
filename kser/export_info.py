"""``kser_export.json`` read back, and checked against the SavedModel it describes.

Why check: prediction takes the class names, the sample rate and the clip length from this file,
and the file is plain JSON beside the graph. Edited or copied from another export, it would name
the probability columns wrongly or resample the audio to a rate the model never heard, without
a word. So its fields are checked for type first (before the slow load), then against what the
graph itself states: the class count from the serving signature's output shape, and the class
names, sample rate and clip length from the ``kser_constants`` signature (kser.export). Exports
made before that signature (format 2) are checked for what they show: the class count.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kser.errors import KserError
from kser.export import CONSTANTS_SIGNATURE, SERVING_SIGNATURE

REQUIRED = ("label_names", "sample_rate")
COUNTS = ("sample_rate", "clip_samples")  # positive whole numbers; clip_samples may be absent


def read_export_info(info_path: Path) -> dict[str, Any]:
    """The metadata in ``info_path``, its fields' types checked; KserError naming a bad field."""
    try:
        metadata = json.loads(info_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise KserError(f"{info_path} is damaged: {error}") from None
    if not isinstance(metadata, dict) or not set(REQUIRED) <= set(metadata):
        raise KserError(f"{info_path} is damaged: {' or '.join(REQUIRED)} missing")
    names = metadata["label_names"]
    if (
        not isinstance(names, list)
        or not names
        or not all(isinstance(name, str) and name for name in names)
        or len(set(names)) != len(names)
    ):
        raise KserError(f"{info_path} is damaged: label_names must be a list of distinct class names, got {json.dumps(names)}")
    for field in COUNTS:
        value = metadata.get(field, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise KserError(f"{info_path} is damaged: {field} must be a positive whole number, got {json.dumps(value)}")
    return metadata


def graph_constants(module: Any) -> dict[str, Any]:
    """What a loaded export's graph states: ``num_classes``, and where the export has the
    constants signature, ``label_names``, ``sample_rate`` and ``clip_samples``."""
    found: dict[str, Any] = {}
    outputs = module.signatures[SERVING_SIGNATURE].structured_outputs
    probabilities = outputs.get("probabilities") if isinstance(outputs, dict) else None
    if probabilities is not None and probabilities.shape.rank and probabilities.shape[-1] is not None:
        found["num_classes"] = int(probabilities.shape[-1])
    if CONSTANTS_SIGNATURE in module.signatures:
        values = {name: value.numpy() for name, value in module.signatures[CONSTANTS_SIGNATURE]().items()}
        found["label_names"] = [name.decode("utf-8") for name in values["label_names"]]
        found.update({field: int(values[field]) for field in COUNTS})
    return found


def check_against_graph(metadata: dict[str, Any], graph: dict[str, Any], info_path: Path) -> None:
    """KserError naming the first field of ``metadata`` that differs from what the graph states."""
    again = "; the file does not belong to this SavedModel: run kser export again"
    classes = graph.get("num_classes")
    if classes is not None and len(metadata["label_names"]) != classes:
        raise KserError(
            f"{info_path}: label_names names {len(metadata['label_names'])} classes, "
            f"but the SavedModel gives {classes} probabilities{again}"
        )
    for field in ("label_names", *COUNTS):
        if field in graph and field in metadata and metadata[field] != graph[field]:
            raise KserError(
                f"{info_path}: {field} is {json.dumps(metadata[field])}, but the SavedModel was exported "
                f"with {json.dumps(graph[field])}{again}"
            )
