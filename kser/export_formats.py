"""What ``kser export --format`` may write, and the contract of each artefact in ``kser_export.json``.

Why a list of formats: the SavedModel (kser.export) serves recordings of any length but needs
TensorFlow; ``model.tflite`` (LiteRT) and ``model.onnx`` (ONNX Runtime) run without it, but hold
only the fixed-window model of kser.portable_export: one clip-long window per row, normalisation
and features inside, while windowing, averaging and silence trimming stay with the caller.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from kser.errors import KserError

SAVED_MODEL = "saved_model"
LITERT = "litert"
ONNX = "onnx"
EXPORT_FORMATS = (SAVED_MODEL, LITERT, ONNX)
DEFAULT_FORMATS = (SAVED_MODEL,)
# The fixed-window artefacts, by format: file name in the export directory.
PORTABLE_FILES = {LITERT: "model.tflite", ONNX: "model.onnx"}
# What each portable format's conversion imports (kser[deploy]).
_CONVERTERS = {LITERT: ("tensorflow",), ONNX: ("tf2onnx", "onnx")}
INPUT_NAME = "waveform"
OUTPUT_NAME = "probabilities"
# LiteRT's recurrent loops lower to builtin ops only with static shapes (kser.portable_export).
LITERT_BATCH = 1
# Post-training quantisation of model.tflite (``kser export --quantize``): "float16" stores the
# weights (and the front end's DFT and mel matrices) as float16, half the size, the same UAR.
# int8 dynamic-range is not offered: it quantises the front end's matrices too, and the features
# break (UAR 65.3 -> 19.4 on a RAVDESS fold's unseen actors, benchmarks/measured/deploy-ravdess-fold0.json).
QUANTIZATIONS = ("none", "float16")


def check_quantize(formats: tuple[str, ...], quantize: str) -> None:
    """``--quantize`` names a known scheme and applies to an artefact being written (model.tflite)."""
    if quantize not in QUANTIZATIONS:
        hint = " (int8 breaks the front end's features; see README, Deploying)" if quantize == "int8" else ""
        raise KserError(f"--quantize: unknown scheme {quantize!r}; valid: {', '.join(QUANTIZATIONS)}{hint}")
    if quantize != "none" and LITERT not in formats:
        raise KserError(f"--quantize={quantize} applies to model.tflite: add {LITERT} to --format")


def parse_formats(text: str) -> tuple[str, ...]:
    """``--format``'s comma list as format names in the given order; KserError naming the valid ones."""
    names = tuple(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    unknown = [name for name in names if name not in EXPORT_FORMATS]
    if unknown or not names:
        given = ", ".join(unknown) if unknown else "nothing"
        raise KserError(f"--format: unknown export format {given}; valid: {', '.join(EXPORT_FORMATS)} (a comma list)")
    return names


def check_formats(formats: tuple[str, ...]) -> None:
    """Known names, at least one, and the converters of the portable ones installed: refused
    before the slow model load rather than after the SavedModel is written."""
    parse_formats(",".join(formats))
    for name in formats:
        missing = [module for module in _CONVERTERS.get(name, ()) if importlib.util.find_spec(module) is None]
        if missing:
            raise KserError(f"--format={name} needs {', '.join(missing)}: pip install 'kser[deploy]'")


def portable(formats: tuple[str, ...]) -> tuple[str, ...]:
    """The fixed-window formats among ``formats``."""
    return tuple(name for name in formats if name in PORTABLE_FILES)


def trim_warning(formats: tuple[str, ...], trim_db: float) -> str | None:
    """Why the fixed-window artefacts differ from the SavedModel for a model trained on trimmed
    clips (None when they do not): they cannot trim, so the caller must."""
    asked = portable(formats)
    if trim_db <= 0 or not asked:
        return None
    return (
        f"the records were built with --trim_db={trim_db:g}, but {' and '.join(PORTABLE_FILES[f] for f in asked)} "
        "cannot trim silence: trim leading and trailing silence before sending a clip"
    )


def tensor(name: str, shape: list[int | None], dtype: str = "float32") -> dict[str, Any]:
    return {"name": name, "shape": shape, "dtype": dtype}


def artefact_contracts(
    formats: tuple[str, ...], clip_samples: int, num_classes: int, normalize: bool, trim_db: float, quantize: str = "none"
) -> list[dict[str, Any]]:
    """``kser_export.json``'s ``artefacts``: per format its file, input and output (None: any size)."""
    contracts = []
    for name in formats:
        if name == SAVED_MODEL:
            contracts.append({
                "format": SAVED_MODEL,
                "file": "saved_model.pb",
                "signature": "serving_default",
                "input": tensor(INPUT_NAME, [None, None]),
                "output": tensor(OUTPUT_NAME, [None, num_classes]),
                "normalize": normalize,
                "trim": trim_db > 0,
                "windowing": "inside: any length, clip-long windows averaged",
            })
            continue
        batch = LITERT_BATCH if name == LITERT else None
        contract = {
            "format": name,
            "file": PORTABLE_FILES[name],
            "input": tensor(INPUT_NAME, [batch, clip_samples]),
            "output": tensor(OUTPUT_NAME, [batch, num_classes]),
            "normalize": normalize,
            "trim": False,
            "windowing": "caller: one clip-long window per row, normalised on its own; cut longer recordings and average",
        }
        if name == LITERT:
            contract["quantization"] = quantize
        warning = trim_warning((name,), trim_db)
        if warning:
            contract["note"] = warning
        contracts.append(contract)
    return contracts
