"""Predict emotions of audio files with an export (see kser.export), in the runtime of your choice.

Only the export and its ``kser_export.json`` are used, not the training ``model_dir``: what is
predicted here is exactly what a server loading the export would answer. Each file is decoded
with kser.audio.read_audio at the export's sample rate (resampled if needed), then scored by one
runtime (``RUNTIMES``): ``tf`` sends it whole to the SavedModel's graph, which trims, windows and
averages it; ``litert`` and ``onnx`` run ``model.tflite`` / ``model.onnx`` on windows the host
cuts the same way (kser.portable_runtime). Each window is normalised by the model itself, so the
runtimes agree to float rounding.

The real-time factor (RTF) is processing seconds / audio seconds, where processing covers
decoding, resampling and the graph call for that file, and excludes loading the export and one
warm-up call (a one-off cost a long-running server pays once). RTF < 1 is faster than real time.

Files are sent one per call, not batched: the export scores each row of a call in its own
``map_fn`` step (rows are trimmed to their own lengths), so a call of B equal-length rows costs
about B calls of one. ``benchmarks/predict_batching.py`` (full-size ``small``, 16 clips of 3.5 s,
2-core CPU) measured 4 and 16 rows per call at 0.98-1.55x the time of one row per call over two
runs; one file per call also keeps each file's RTF its own and the memory bounded by one file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from kser.audio import read_audio
from kser.errors import KserError, SkipClip, first_line
from kser.export import EXPORT_INFO_FILE, SERVING_SIGNATURE, WINDOWS_SIGNATURE
from kser.export_formats import SAVED_MODEL
from kser.export_info import check_against_graph, graph_constants, read_export_info

SAVED_MODEL_FILE = "saved_model.pb"
# Under half a second a clip holds a syllable or two: too little to judge emotion by (CREMA-D's
# shortest sentences last about a second). A peak under -60 dBFS is silence for 16-bit audio.
MIN_USEFUL_SECONDS = 0.5
SILENT_PEAK_DBFS = -60.0


RUNTIMES = ("tf", "litert", "onnx")


@dataclasses.dataclass(frozen=True)
class ExportedModel:
    """A loaded export: one runtime's scoring function and what ``kser_export.json`` says."""

    path: Path
    metadata: dict[str, Any]
    runtime: str  # one of RUNTIMES
    # samples -> (window probabilities [windows, classes], window start seconds [windows])
    score: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
    serving: Any = None  # tf: the SavedModel's serving_default ConcreteFunction
    module: Any = None  # tf: keeps the restored object (and so the signatures' variables) alive

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
    warnings: tuple[str, ...] = ()  # the prediction was made but may mean little (see clip_warnings)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def rtf(self) -> float | None:
        """Real-time factor of this file (processing / audio seconds)."""
        return self.processing_seconds / self.audio_seconds if self.ok and self.audio_seconds > 0 else None


def default_runtime(formats: Sequence[str]) -> str:
    """The SavedModel when the export holds one, else its first fixed-window artefact."""
    from kser.portable_runtime import RUNTIME_FORMATS

    return next(runtime for runtime in RUNTIMES if RUNTIME_FORMATS[runtime] in formats)


def load_exported(export_dir: str | Path, warmup: bool = True, runtime: str | None = None) -> ExportedModel:
    """Load an export made by ``kser export`` for ``runtime`` (None: :func:`default_runtime`);
    KserError when it is missing or incomplete, when it lacks the runtime's artefact, or when its
    ``kser_export.json`` is damaged or does not match the graph (see kser.export_info)."""
    from kser.portable_runtime import RUNTIME_FORMATS, open_portable

    export_dir = Path(export_dir)
    if not export_dir.is_dir():
        raise KserError(f"export directory {export_dir} does not exist; run kser export first")
    info_path = export_dir / EXPORT_INFO_FILE
    if not info_path.is_file():
        raise KserError(f"{export_dir} is not a kser export ({EXPORT_INFO_FILE} not found); run kser export first")
    metadata = read_export_info(info_path)  # before the slow load
    formats = metadata.get("formats", [SAVED_MODEL])  # exports before format 4 were SavedModels only
    if runtime is not None and runtime not in RUNTIMES:
        raise KserError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
    runtime = runtime or default_runtime(formats)
    if RUNTIME_FORMATS[runtime] not in formats:
        raise KserError(
            f"{export_dir} holds only {', '.join(map(str, formats))}, without the {RUNTIME_FORMATS[runtime]} artefact "
            f"--runtime={runtime} runs; run kser export again with --format={RUNTIME_FORMATS[runtime]} or pick another --runtime"
        )
    if runtime == "tf":
        exported = _load_saved_model(export_dir, metadata, info_path)
    else:
        exported = ExportedModel(export_dir, metadata, runtime, open_portable(export_dir, metadata, RUNTIME_FORMATS[runtime]))
    if warmup:
        # The first call initialises the runtime's kernels; keep that out of the RTF.
        exported.score(np.zeros(int(metadata.get("clip_samples", exported.sample_rate)), dtype=np.float32))
    return exported


def _load_saved_model(export_dir: Path, metadata: dict[str, Any], info_path: Path) -> ExportedModel:
    if not (export_dir / SAVED_MODEL_FILE).is_file():
        raise KserError(f"{export_dir} is incomplete ({SAVED_MODEL_FILE} not found); run kser export again")

    from kser.quiet import silenced_stderr, tensorflow

    tf = tensorflow()
    try:
        with silenced_stderr():
            module = tf.saved_model.load(str(export_dir))
    except Exception as error:  # TF raises assorted errors for a damaged SavedModel
        message = first_line(error)
        raise KserError(f"cannot load the SavedModel in {export_dir}: {message}") from None
    missing = [name for name in (SERVING_SIGNATURE, WINDOWS_SIGNATURE) if name not in module.signatures]
    if missing:
        raise KserError(f"the SavedModel in {export_dir} lacks signature(s) {', '.join(missing)}; run kser export again")
    check_against_graph(metadata, graph_constants(module), info_path)
    windows = module.signatures[WINDOWS_SIGNATURE]

    def score(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The windows signature on one row; its mean over windows is what serving_default returns."""
        outputs = windows(waveform=tf.constant(np.asarray(samples, dtype=np.float32)[None, :]))
        count = int(outputs["num_windows"].numpy()[0])
        return outputs["probabilities"].numpy()[0, :count], outputs["start_seconds"].numpy()[0, :count].astype(np.float64)

    return ExportedModel(export_dir, metadata, "tf", score, serving=module.signatures[SERVING_SIGNATURE], module=module)


def clip_warnings(samples: np.ndarray, sample_rate: int) -> tuple[str, ...]:
    """Why a prediction of this waveform may mean little: too short, or silent."""
    found = []
    seconds = samples.shape[0] / sample_rate
    if seconds < MIN_USEFUL_SECONDS:
        found.append(f"only {seconds * 1000:.1f} ms of audio (under {MIN_USEFUL_SECONDS} s): too short to judge emotion")
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    if peak < 10 ** (SILENT_PEAK_DBFS / 20):
        level = "digital silence" if peak == 0 else f"peak {20 * np.log10(peak):.0f} dBFS"
        found.append(f"silent ({level}, under {SILENT_PEAK_DBFS:.0f} dBFS): the prediction is meaningless")
    return tuple(found)


def find_inputs(paths: Iterable[str | Path]) -> list[tuple[str, str | None]]:
    """Each given file, or the audio files found below each given folder (recursively, sorted),
    as ``(path, problem)``: ``problem`` is None for a file to predict, else why there is none."""
    from kser.layouts import audio_files_under

    found: list[tuple[str, str | None]] = []
    for path in map(Path, paths):
        if path.is_dir():
            files = audio_files_under(path)
            found += [(str(f), None) for f in files] or [(str(path), "a folder with no audio files in it")]
        elif path.exists():
            found.append((str(path), None))
        else:
            found.append((str(path), "no such file or folder"))
    return found


def input_at(output: str | Path, inputs: Iterable[tuple[str, str | None]]) -> str | None:
    """The input (of :func:`find_inputs`) that writing ``output`` would replace, or None.

    Why: the output is written over whatever is at its path, so ``--output=x.wav x.wav`` would
    replace the audio with the predictions. Files are compared as the system sees them (device
    and inode), so links, symbolic or hard, and other spellings of a path are caught too.
    """
    try:
        target = os.stat(output)
    except (OSError, ValueError):
        return None  # nothing there yet: nothing to lose
    for path, _ in inputs:  # a path with a problem is missing or a folder: stat fails or differs
        with contextlib.suppress(OSError, ValueError):
            if os.path.samestat(os.stat(path), target):
                return path
    return None


def restricted_to(exported: ExportedModel, labels: Sequence[str]) -> ExportedModel:
    """``exported`` asked to choose only among ``labels`` (some of its own): each window's
    probabilities of those classes, renormalised to sum to 1, in the model's order. For audio
    known to hold fewer emotions than the model knows (a four-emotion product or corpus; ``kser
    evaluate`` scores the same choice as ``among_records_labels``)."""
    names = exported.label_names
    unknown = [label for label in labels if label not in names]
    if unknown:
        raise KserError(f"--labels {','.join(unknown)}: not among the model's labels ({', '.join(names)})")
    keep = [index for index, name in enumerate(names) if name in labels]
    if len(keep) < 2:
        raise KserError(f"--labels needs at least two of the model's labels ({', '.join(names)}), got {','.join(labels) or 'none'}")
    score = exported.score

    def score_among(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        per_window, starts = score(samples)
        chosen = per_window[:, keep]
        return chosen / chosen.sum(axis=1, keepdims=True), starts

    return dataclasses.replace(exported, metadata={**exported.metadata, "label_names": [names[index] for index in keep]}, score=score_among)


def predict_file(exported: ExportedModel, path: str | Path, windows: bool = False) -> FilePrediction:
    """Predict one file; a file that cannot be used gives an entry with ``error`` set."""
    path = str(path)
    started = time.perf_counter()
    try:
        samples, _ = read_audio(path, exported.sample_rate)
    except SkipClip as error:
        return FilePrediction(path=path, error=str(error))
    try:
        per_window, starts = exported.score(samples)
    except Exception as error:  # e.g. out of memory on a very long recording: this file only
        message = first_line(error)
        return FilePrediction(path=path, error=f"prediction failed: {message}")
    names = exported.label_names
    probabilities = per_window.mean(axis=0)
    window_list: tuple[WindowPrediction, ...] = ()
    if windows:
        window_list = tuple(
            WindowPrediction(
                start_seconds=float(start),
                label=names[int(np.argmax(row))],
                probability=float(row.max()),
                probabilities=tuple(float(p) for p in row),
            )
            for start, row in zip(starts, per_window)
        )
    elapsed = time.perf_counter() - started
    return FilePrediction(
        path=path,
        label=names[int(np.argmax(probabilities))],
        probabilities={name: float(p) for name, p in zip(names, probabilities)},
        audio_seconds=samples.shape[0] / exported.sample_rate,
        processing_seconds=elapsed,
        windows=window_list,
        warnings=clip_warnings(samples, exported.sample_rate),
    )


def predict_files(
    export_dir: str | Path | ExportedModel, paths: Iterable[str | Path], windows: bool = False, runtime: str | None = None
) -> list[FilePrediction]:
    """Predict every file in order; bad files give error entries instead of stopping the run."""
    exported = export_dir if isinstance(export_dir, ExportedModel) else load_exported(export_dir, runtime=runtime)
    return [predict_file(exported, path, windows=windows) for path in paths]


def overall_rtf(predictions: Sequence[FilePrediction]) -> float | None:
    """Total processing seconds / total audio seconds over the files that worked."""
    done = [p for p in predictions if p.ok]
    audio = sum(p.audio_seconds for p in done)
    return sum(p.processing_seconds for p in done) / audio if audio > 0 else None
