"""``kser predict --runtime=litert|onnx``: the fixed-window artefacts, with the host doing the rest.

``model.tflite`` and ``model.onnx`` score one clip-long window per row (normalisation and
features inside, kser.portable_export). What the SavedModel does around its model, the host does
here, with the numpy twins of the graph's steps, so that every runtime answers the same::

    recording at the export's rate
      -> leading and trailing silence trimmed when the training records were (kser.waveform.speech_bounds)
      -> clip-long windows every window_hop_samples, the last aligned to the end
         (kser.export.window_starts), a short recording zero-padded to one clip
      -> the artefact, a few windows per call (LiteRT: its static batch) -> probabilities averaged

Only ``ai_edge_litert`` or ``onnxruntime`` is imported, never TensorFlow.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Callable

import numpy as np

from kser.errors import KserError, first_line
from kser.export_formats import LITERT, ONNX, PORTABLE_FILES
from kser.waveform import pad_or_trim, speech_bounds

# How `kser predict --runtime` names each runtime, and the format whose artefact it runs.
RUNTIME_FORMATS = {"tf": "saved_model", "litert": LITERT, "onnx": ONNX}
_RUNTIME_MODULES = {LITERT: "ai_edge_litert", ONNX: "onnxruntime"}
# Windows per ONNX Runtime call: one call for a typical clip, bounded memory for an hour.
ONNX_WINDOWS_PER_CALL = 32


def host_windows(samples: np.ndarray, metadata: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """``(windows [n, clip_samples] float32, start_seconds [n])`` of a mono recording, cut as the
    SavedModel's graph cuts it (kser.export.score_rows)."""
    from kser.export import WindowPlan, window_starts

    clip, hop, rate = int(metadata["clip_samples"]), int(metadata["window_hop_samples"]), int(metadata["sample_rate"])
    start, end = speech_bounds(samples, rate, float(metadata.get("trim_db", 0.0)))
    kept = np.asarray(samples[start:end], dtype=np.float32)
    starts = window_starts(kept.shape[0], WindowPlan(clip_samples=clip, hop_samples=hop))
    padded = pad_or_trim(kept, clip) if kept.shape[0] < clip else kept
    windows = np.stack([padded[s : s + clip] for s in starts])
    return windows, (np.asarray(starts, dtype=np.float64) + start) / rate


def _session(fmt: str, path: Path) -> Callable[[np.ndarray], np.ndarray]:
    """A function from windows [n, clip_samples] to probabilities [n, classes] for one artefact."""
    if fmt == LITERT:
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_path=str(path))
        interpreter.allocate_tensors()
        source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
        batch = int(source["shape"][0])

        def run_litert(windows: np.ndarray) -> np.ndarray:
            outputs = []
            for start in range(0, windows.shape[0], batch):
                rows = windows[start : start + batch]
                if rows.shape[0] < batch:  # a static batch: pad the last call, drop the extra rows
                    rows = np.concatenate([rows, np.zeros((batch - rows.shape[0], rows.shape[1]), np.float32)])
                interpreter.set_tensor(source["index"], rows)
                interpreter.invoke()
                outputs.append(interpreter.get_tensor(target["index"]).copy())
            return np.concatenate(outputs)[: windows.shape[0]]

        return run_litert
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # warnings about unused initialisers are not the user's business
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name  # INPUT_NAME in kser's exports

    def run_onnx(windows: np.ndarray) -> np.ndarray:
        return np.concatenate([
            session.run(None, {input_name: windows[start : start + ONNX_WINDOWS_PER_CALL]})[0]
            for start in range(0, windows.shape[0], ONNX_WINDOWS_PER_CALL)
        ])

    return run_onnx


def open_portable(export_dir: Path, metadata: dict[str, Any], fmt: str) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``score(samples) -> (window probabilities [n, classes], start_seconds [n])`` with the export's
    ``fmt`` artefact; KserError naming the extra to install when its runtime is missing."""
    module = _RUNTIME_MODULES[fmt]
    if importlib.util.find_spec(module) is None:
        raise KserError(f"--runtime={fmt} needs {module}: pip install 'kser[{fmt}]'")
    path = export_dir / PORTABLE_FILES[fmt]
    if not path.is_file():
        raise KserError(f"{export_dir} is incomplete ({PORTABLE_FILES[fmt]} not found); run kser export again")
    try:
        run = _session(fmt, path)
    except Exception as error:  # the runtimes raise assorted errors for a damaged file
        message = first_line(error)
        raise KserError(f"cannot load {path}: {message}") from None

    def score(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        windows, starts = host_windows(samples, metadata)
        return np.asarray(run(windows), dtype=np.float32), starts

    return score
