"""Deployment artefacts of `small`, compared in one run: size, load time, latency, RTF, and UAR.

For each artefact of ``kser export`` (SavedModel, model.tflite as float32 and float16, model.onnx): file size, load time, latency of one 3 s clip at batch 1 (median of
``--calls``, after a warm-up call) through ``kser.predict``'s runtime for it (the host windowing
included, as ``kser predict --runtime`` runs it), and the real-time factor; each as a ratio to the
SavedModel's. With ``--model_dir`` and ``--records_dir`` (a trained model and records holding
speakers it never saw, ``--speakers``), every artefact also scores those clips and the table gives
its UAR and the change against the float SavedModel. Without them a randomly initialised
full-size `small` is exported (sizes and timings only).

    python benchmarks/deploy.py --out=benchmarks/results
    python benchmarks/deploy.py --model_dir=CV/fold-0 --records_dir=R --speakers=03,07,08 --out=benchmarks/results
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import table, write_results  # noqa: E402

# (row name, --format, --quantize, --runtime)
ARTEFACTS = (
    ("saved_model", "saved_model", "none", "tf"),
    ("litert float32", "litert", "none", "litert"),
    ("litert float16", "litert", "float16", "litert"),
    ("onnx float32", "onnx", "none", "onnx"),
)


def size_bytes(export_dir: Path, fmt: str) -> int:
    """The artefact's bytes: the SavedModel's whole tree, else its one file."""
    from kser.export_formats import PORTABLE_FILES

    if fmt == "saved_model":
        return sum(path.stat().st_size for path in export_dir.rglob("*") if path.is_file() and path.name != "kser_export.json")
    return (export_dir / PORTABLE_FILES[fmt]).stat().st_size


def random_model_dir(folder: Path) -> Path:
    """A model directory holding a randomly initialised full-size `small` (for sizes and timings)."""
    from kser.audio_frontend import front_end_for, waveform_classifier
    from kser.config import AudioConfig, CREMA_D_EMOTIONS, FeatureConfig
    from kser.model_dir import MODEL_FILE, ModelInfo, save_info
    from kser.models import build

    info = ModelInfo("small", CREMA_D_EMOTIONS, AudioConfig(), FeatureConfig())
    front_end = front_end_for(info.audio, info.features)
    folder.mkdir(parents=True)
    waveform_classifier(front_end, build("small", num_classes=6, input_shape=front_end.output_feature_shape)).save(folder / MODEL_FILE)
    save_info(folder, info)
    return folder


def uar_of(exported: Any, records_dir: Path, waveforms: np.ndarray, labels: np.ndarray, names: list[str]) -> float:
    from kser.evaluation import label_mapping, metrics_for

    y_true = label_mapping(exported.label_names, names, records_dir)[labels]
    probabilities = np.stack([exported.score(waveform)[0].mean(axis=0) for waveform in waveforms])
    return 100 * metrics_for(y_true, probabilities, exported.label_names)["uar"]


def time_artefact(export_dir: Path, runtime: str, calls: int, rng: np.random.Generator) -> dict[str, Any]:
    """Load seconds, then the median latency of one clip at batch 1 over ``calls`` (after a
    warm-up call) through kser.predict's runtime, and the real-time factor."""
    from kser.predict import load_exported

    started = time.perf_counter()
    exported = load_exported(export_dir, warmup=False, runtime=runtime)
    load_s = time.perf_counter() - started
    clip = rng.standard_normal(int(exported.metadata["clip_samples"])).astype(np.float32) * 0.1
    exported.score(clip)  # warm-up: kernels initialised, graphs traced
    latencies = []
    for _ in range(calls):
        started = time.perf_counter()
        exported.score(clip)
        latencies.append(time.perf_counter() - started)
    latency = statistics.median(latencies)
    return {"exported": exported, "load_s": load_s, "latency_ms": 1000 * latency, "rtf": latency / float(exported.metadata["clip_seconds"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_dir", help="a trained model directory (default: a random full-size small)")
    parser.add_argument("--records_dir", help="records whose --speakers' clips every artefact scores (UAR)")
    parser.add_argument("--speakers", default="", help="comma list of speakers the model never saw")
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--name", default="deploy")
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()

    from kser.export import export_saved_model

    work = Path(tempfile.mkdtemp(prefix="kser-deploy-"))
    model_dir = Path(args.model_dir) if args.model_dir else random_model_dir(work / "model")
    clips = None
    if args.records_dir:
        from benchmarks.speaker_norm_probe import read_clips

        waveforms, labels, speakers, names = read_clips(Path(args.records_dir), ("train", "validation", "test"))
        wanted = set(filter(None, args.speakers.split(",")))
        keep = np.asarray([speaker in wanted for speaker in speakers]) if wanted else np.ones(len(speakers), bool)
        clips = (waveforms[keep], labels[keep], names)
        print(f"{int(keep.sum())} clips of speakers {sorted(wanted) or 'all'}", flush=True)

    rng = np.random.default_rng(0)
    rows, base = [], None
    for name, fmt, quantize, runtime in ARTEFACTS:
        export_dir = work / name.replace(" ", "_").replace("(", "").replace(")", "")
        export_saved_model(model_dir, export_dir, formats=(fmt,), quantize=quantize)
        timed = time_artefact(export_dir, runtime, args.calls, rng)
        exported = timed.pop("exported")
        row = {"artefact": name, "size_mb": size_bytes(export_dir, fmt) / 1e6, **timed}
        if clips is not None:
            row["uar"] = uar_of(exported, Path(args.records_dir), *clips)
        base = base or row
        row.update({f"{key}_vs_saved_model": row[key] / base[key] for key in ("size_mb", "load_s", "latency_ms")})
        if clips is not None:
            row["uar_change"] = row["uar"] - base["uar"]
        rows.append(row)
        print({key: round(value, 4) if isinstance(value, float) else value for key, value in row.items()}, flush=True)

    columns = ["artefact", "size_mb", "size_mb_vs_saved_model", "load_s", "load_s_vs_saved_model", "latency_ms",
               "latency_ms_vs_saved_model", "rtf"] + (["uar", "uar_change"] if clips is not None else [])
    formatted = [{key: f"{value:.3g}" if isinstance(value, float) else value for key, value in row.items()} for row in rows]
    results = {
        "model_dir": str(args.model_dir or "random full-size small"),
        "records_dir": args.records_dir, "speakers": args.speakers, "calls": args.calls,
        "clips": None if clips is None else int(len(clips[1])), "rows": rows, "table": table(formatted, columns),
    }
    print(results["table"])
    print(write_results(args.out, args.name, results))


if __name__ == "__main__":
    main()
