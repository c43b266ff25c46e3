"""One training run's full definition, as one typed object written once into the model directory.

Everything that decides what ``kser train`` does is here: the resolved training settings (every
recipe field filled in), the feature settings, the builder's ``model_options``, which records and
which clips of them (train and validation subsets), and the label order. ``kser train`` writes it
to ``MODEL_DIR/train_config.json`` before the first epoch; a rerun compares it to decide between
resuming and refusing; ``kser evaluate`` and ``kser export`` read it back to say how the model
was trained; cross-validation keeps one per fold. The named starting points are the recipes in
``kser.config.RECIPES`` (the study's and kser's own), plain Python objects a reader can open.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Mapping

from kser import atomic
from kser.config import FeatureConfig, TrainConfig, from_dict, to_dict
from kser.data import Subset, subset_to_json
from kser.errors import KserError

RUN_CONFIG_FILE = "train_config.json"


def subset_from_json(payload: Mapping[str, Any]) -> Subset:
    """Inverse of :func:`kser.data.subset_to_json`."""
    speakers = payload.get("speakers")
    return Subset(tuple(payload["splits"]), None if speakers is None else frozenset(speakers), payload.get("name", ""))


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """What one ``kser train`` run is: change any field and it is another run."""

    train: TrainConfig  # resolved: no recipe field left None
    features: FeatureConfig
    model_options: Mapping[str, Any]
    records_dir: str  # absolute
    label_names: tuple[str, ...]
    train_on: Subset
    validate_on: Subset | None  # None: no validation clips; a fixed number of epochs, last weights kept

    def to_json(self) -> dict[str, Any]:
        """The JSON form (plain lists and dicts), as compared on resume and stored on disk."""
        payload = {
            "train": to_dict(self.train),
            "features": to_dict(self.features),
            "model_options": dict(self.model_options),
            "records_dir": self.records_dir,
            "label_names": list(self.label_names),
            "train_on": subset_to_json(self.train_on),
            "validate_on": None if self.validate_on is None else subset_to_json(self.validate_on),
        }
        return json.loads(json.dumps(payload))  # tuples -> lists, exactly as a reader sees them

    @classmethod
    def from_json(cls, payload: Mapping[str, Any]) -> "RunConfig":
        return cls(
            train=TrainConfig.from_dict(payload["train"]),
            features=from_dict(FeatureConfig, payload["features"]),
            model_options=dict(payload["model_options"]),
            records_dir=str(payload["records_dir"]),
            label_names=tuple(payload["label_names"]),
            train_on=subset_from_json(payload["train_on"]),
            validate_on=None if payload["validate_on"] is None else subset_from_json(payload["validate_on"]),
        )


def write_run_config(model_dir: str | Path, run: RunConfig) -> None:
    atomic.write_json(Path(model_dir) / RUN_CONFIG_FILE, run.to_json())


def read_run_json(model_dir: str | Path) -> dict[str, Any] | None:
    """The stored JSON form, or None when the directory holds no run; KserError if unreadable."""
    path = Path(model_dir) / RUN_CONFIG_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise KserError(f"{path} is damaged: {error}") from None


def read_run_config(model_dir: str | Path) -> RunConfig | None:
    """The run that trained ``model_dir`` (None for a directory without one); KserError if damaged."""
    payload = read_run_json(model_dir)
    if payload is None:
        return None
    try:
        return RunConfig.from_json(payload)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise KserError(f"{Path(model_dir) / RUN_CONFIG_FILE} is damaged: {error!r}") from None
