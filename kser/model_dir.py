"""What a training run leaves in ``--model_dir``, and how later commands find it.

    model_dir/
      model.keras         the trained classifier: waveforms [batch, clip_samples] -> probabilities,
                          its front end (kser.audio_frontend) inside (best weights)
      kser_model.json     ModelInfo: architecture, label names, audio + feature settings, records manifest
      train_config.json   RunConfig (kser.run_config): everything that defines the run, written once
      history.csv         per-epoch metrics (CSVLogger)
      logs/               TensorBoard (train/ and validation/ runs)
      checkpoints/        the best epoch's weights; backup/ lets a killed run resume (both written atomically)
      eval/               written by ``kser evaluate``
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from kser import atomic
from kser.config import AudioConfig, FeatureConfig, from_dict, to_dict
from kser.errors import KserError

MODEL_FILE = "model.keras"
INFO_FILE = "kser_model.json"
HISTORY_FILE = "history.csv"
LOGS_DIR = "logs"
EVAL_DIR = "eval"
CHECKPOINTS_DIR = "checkpoints"


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """Everything needed to turn raw audio into this model's prediction."""

    arch: str
    label_names: tuple[str, ...]
    audio: AudioConfig
    features: FeatureConfig
    records_manifest_sha256: str = ""
    records_dir: str = ""
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "arch": self.arch,
            "label_names": list(self.label_names),
            "audio": to_dict(self.audio),
            "features": to_dict(self.features),
            "records_manifest_sha256": self.records_manifest_sha256,
            "records_dir": self.records_dir,
            "extra": self.extra,
        }

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> "ModelInfo":
        return cls(
            arch=payload["arch"],
            label_names=tuple(payload["label_names"]),
            audio=from_dict(AudioConfig, payload["audio"]),
            features=from_dict(FeatureConfig, payload["features"]),
            records_manifest_sha256=payload.get("records_manifest_sha256", ""),
            records_dir=payload.get("records_dir", ""),
            extra=payload.get("extra", {}),
        )


def save_info(model_dir: str | Path, info: ModelInfo) -> None:
    atomic.write_json(Path(model_dir) / INFO_FILE, info.to_json())


def load_info(model_dir: str | Path) -> ModelInfo:
    path = Path(model_dir) / INFO_FILE
    if not path.is_file():
        raise KserError(f"{model_dir} is not a trained kser model directory ({INFO_FILE} not found); run kser train first")
    try:
        return ModelInfo.from_json(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError) as error:
        raise KserError(f"{path} is damaged: {error}") from None


def trim_history(model_dir: str | Path, epochs: int) -> None:
    """Keep the rows of the first ``epochs`` epochs of history.csv (none: the file goes).

    Why: a resumed run redoes every epoch after its backup, and CSVLogger appends their rows
    again; a run killed between logging an epoch and backing it up would list it twice.
    """
    path = Path(model_dir) / HISTORY_FILE
    if not path.is_file():
        return
    if epochs <= 0:
        path.unlink()
        return
    lines = path.read_text().splitlines(keepends=True)
    epoch_of = [line.split(",", 1)[0] for line in lines[1:]]  # CSVLogger's first column
    kept = [line for line, epoch in zip(lines[1:], epoch_of) if epoch.isdigit() and int(epoch) < epochs]
    if len(kept) < len(lines) - 1:
        atomic.write_text(path, "".join(lines[:1] + kept))


def load_model(model_dir: str | Path) -> Any:
    """The trained waveform classifier (kser.audio_frontend), kser's layers registered on import.

    A model directory written before the front end moved into the model (its model.keras takes
    features) is wrapped, in memory, in the front end its kser_model.json describes: it
    evaluates, exports and predicts as before.
    """
    import keras

    import kser.audio_frontend  # noqa: F401  (registers kser layers for deserialisation)
    import kser.augment  # noqa: F401
    import kser.callbacks  # noqa: F401  (the compiled UAR metric)
    import kser.features  # noqa: F401
    import kser.models  # noqa: F401
    from kser.audio_frontend import front_end_for, is_waveform_classifier, waveform_classifier

    path = Path(model_dir) / MODEL_FILE
    if not path.is_file():
        raise KserError(f"{path} not found: the training run in {model_dir} has not saved a model yet")
    model = keras.models.load_model(path)
    if is_waveform_classifier(model):
        return model
    info = load_info(model_dir)
    front_end = front_end_for(info.audio, info.features)
    got = tuple(model.input_shape[1:]) if not isinstance(model.input_shape, list) else None
    if got != front_end.output_feature_shape:
        raise KserError(
            f"{path} takes inputs of shape {got}, but {info.audio.clip_seconds} s clips with the feature settings "
            f"of {INFO_FILE} give {front_end.output_feature_shape}; {INFO_FILE} does not belong to {MODEL_FILE}"
        )
    return waveform_classifier(front_end, model)
