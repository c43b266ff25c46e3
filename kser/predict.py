"""Predict emotions of audio files with an exported SavedModel (see kser.export).

Only the SavedModel and ``kser_export.json`` are used, not the training ``model_dir``: what is
predicted here is exactly what a server loading the export would answer. Each file is decoded
with kser.audio.read_audio at the export's sample rate (resampled if needed) and sent whole to
the graph, which normalises, windows and averages it.

The real-time factor (RTF) is processing seconds / audio seconds, where processing covers
decoding, resampling and the graph call for that file, and excludes loading the export and one
warm-up call (a one-off cost a long-running server pays once). RTF < 1 is faster than real time.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from kser.audio import read_audio
from kser.errors import KserError, SkipClip
from kser.export import EXPORT_INFO_FILE, SERVING_SIGNATURE, WINDOWS_SIGNATURE

SAVED_MODEL_FILE = "saved_model.pb"


@dataclasses.dataclass(frozen=True)
class ExportedModel:
    """A loaded export: the two signatures and what ``kser_export.json`` says about them."""

    path: Path
    metadata: dict[str, Any]
    serving: Any  # ConcreteFunction: waveform -> probabilities, label
    windows: Any  # ConcreteFunction: waveform -> per-window probabilities, label, start_seconds
    module: Any  # keeps the restored object (and so the signatures' variables) alive

    @property
    def label_names(self) -> tuple[str, ...]:
        return tuple(self.metadata["label_names"])

    @property
    def sample_rate(self) -> int:
        return int(self.metadata["sample_rate"])


@dataclasses.dataclass(frozen=True)
class WindowPrediction:
    start_seconds: float
    label: str
    probability: float  # of ``label``
    probabilities: tuple[float, ...]


@dataclasses.dataclass(frozen=True)
class FilePrediction:
    """One file's result; ``error`` is set (and the rest empty) when the file could not be used."""

    path: str
    label: str | None = None
    probabilities: dict[str, float] = dataclasses.field(default_factory=dict)
    audio_seconds: float = 0.0
    processing_seconds: float = 0.0
    windows: tuple[WindowPrediction, ...] = ()
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def rtf(self) -> float | None:
        """Real-time factor of this file (processing / audio seconds)."""
        return self.processing_seconds / self.audio_seconds if self.ok and self.audio_seconds > 0 else None


def load_exported(export_dir: str | Path, warmup: bool = True) -> ExportedModel:
    """Load an export made by ``kser export``; KserError when it is missing or incomplete."""
    export_dir = Path(export_dir)
    if not export_dir.is_dir():
        raise KserError(f"export directory {export_dir} does not exist; run kser export first")
    info_path = export_dir / EXPORT_INFO_FILE
    if not info_path.is_file():
        raise KserError(f"{export_dir} is not a kser export ({EXPORT_INFO_FILE} not found); run kser export first")
    if not (export_dir / SAVED_MODEL_FILE).is_file():
        raise KserError(f"{export_dir} is incomplete ({SAVED_MODEL_FILE} not found); run kser export again")
    try:
        metadata = json.loads(info_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise KserError(f"{info_path} is damaged: {error}") from None
    if not isinstance(metadata, dict) or not {"label_names", "sample_rate"} <= set(metadata):
        raise KserError(f"{info_path} is damaged: label_names or sample_rate missing")

    from kser.quiet import silenced_stderr, tensorflow

    tf = tensorflow()
    try:
        with silenced_stderr():
            module = tf.saved_model.load(str(export_dir))
    except Exception as error:  # TF raises assorted errors for a damaged SavedModel
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise KserError(f"cannot load the SavedModel in {export_dir}: {message}") from None
    missing = [name for name in (SERVING_SIGNATURE, WINDOWS_SIGNATURE) if name not in module.signatures]
    if missing:
        raise KserError(f"the SavedModel in {export_dir} lacks signature(s) {', '.join(missing)}; run kser export again")
    exported = ExportedModel(
        path=export_dir,
        metadata=metadata,
        serving=module.signatures[SERVING_SIGNATURE],
        windows=module.signatures[WINDOWS_SIGNATURE],
        module=module,
    )
    if warmup:
        # The first call of a restored graph initialises its kernels; keep that out of the RTF.
        clip = int(metadata.get("clip_samples", exported.sample_rate))
        run_waveform(exported, np.zeros(clip, dtype=np.float32), windows=True)
    return exported


def run_waveform(exported: ExportedModel, samples: np.ndarray, windows: bool = False) -> dict[str, np.ndarray]:
    """One mono waveform at the export's rate through a signature; numpy outputs without the batch axis."""
    from kser.quiet import tensorflow

    tf = tensorflow()
    signature = exported.windows if windows else exported.serving
    outputs = signature(waveform=tf.constant(np.asarray(samples, dtype=np.float32)[None, :]))
    result = {name: value.numpy()[0] for name, value in outputs.items()}  # the one row
    if windows:
        count = int(result.pop("num_windows"))
        result = {name: value[:count] for name, value in result.items()}
    return result


def _decode_label(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def predict_file(exported: ExportedModel, path: str | Path, windows: bool = False) -> FilePrediction:
    """Predict one file; a file that cannot be used gives an entry with ``error`` set."""
    path = str(path)
    started = time.perf_counter()
    try:
        samples, _ = read_audio(path, exported.sample_rate)
    except SkipClip as error:
        return FilePrediction(path=path, error=str(error))
    try:
        outputs = run_waveform(exported, samples, windows=windows)
    except Exception as error:  # e.g. out of memory on a very long recording: this file only
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return FilePrediction(path=path, error=f"prediction failed: {message}")
    names = exported.label_names
    window_list: tuple[WindowPrediction, ...] = ()
    if windows:
        per_window = outputs["probabilities"]  # [windows, classes]
        probabilities = per_window.mean(axis=0)  # what serving_default returns
        label = names[int(np.argmax(probabilities))]
        window_list = tuple(
            WindowPrediction(
                start_seconds=float(start),
                label=_decode_label(window_label),
                probability=float(row.max()),
                probabilities=tuple(float(p) for p in row),
            )
            for start, window_label, row in zip(outputs["start_seconds"], outputs["label"], per_window)
        )
    else:
        probabilities = outputs["probabilities"]
        label = _decode_label(outputs["label"])
    elapsed = time.perf_counter() - started
    return FilePrediction(
        path=path,
        label=label,
        probabilities={name: float(p) for name, p in zip(names, probabilities)},
        audio_seconds=samples.shape[0] / exported.sample_rate,
        processing_seconds=elapsed,
        windows=window_list,
    )


def predict_files(
    export_dir: str | Path | ExportedModel, paths: Iterable[str | Path], windows: bool = False
) -> list[FilePrediction]:
    """Predict every file in order; bad files give error entries instead of stopping the run."""
    exported = export_dir if isinstance(export_dir, ExportedModel) else load_exported(export_dir)
    return [predict_file(exported, path, windows=windows) for path in paths]


def overall_rtf(predictions: Sequence[FilePrediction]) -> float | None:
    """Total processing seconds / total audio seconds over the files that worked."""
    done = [p for p in predictions if p.ok]
    audio = sum(p.audio_seconds for p in done)
    return sum(p.processing_seconds for p in done) / audio if audio > 0 else None
