"""What ``--arch=whisper`` costs: GFLOPs per clip, caching, head training per epoch, and the export's RTF.

For each Whisper size (``--sizes``; the widths of keras-hub's presets) a randomly initialised
encoder is written as a local preset and loaded as kser loads a real one (no preset can be
downloaded here; compute does not depend on the weights' values). Then, on ``--records_dir``:

* GFLOPs per clip of the front end (kser.whisper's count: mel, stem, encoder blocks) and the head;
* the one-time cache: seconds to compute every clip's encoder output (kser.feature_cache), its size;
* head training with the cache: seconds per epoch over every clip (median of ``--epochs``),
  beside the same for ``small`` with its features computed in tf.data every epoch (the baseline);
* the exported waveform model (SavedModel and ONNX): latency of one clip at batch 1 and the RTF.

    python benchmarks/pretrained_encoder.py --records_dir=R --out=benchmarks/results
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
from benchmarks.deploy import time_artefact  # noqa: E402

# (layers, heads, hidden_dim, intermediate_dim) of keras-hub's whisper_{size}_en presets.
SIZES = {"tiny": (4, 6, 384, 1536), "base": (6, 8, 512, 2048), "small": (12, 12, 768, 3072), "medium": (24, 16, 1024, 4096)}


class EpochTimer:
    """Seconds of each epoch of a fit."""

    def __init__(self) -> None:
        import keras

        class Timer(keras.callbacks.Callback):
            def on_epoch_begin(inner, epoch: int, logs: Any = None) -> None:
                inner.started = time.perf_counter()

            def on_epoch_end(inner, epoch: int, logs: Any = None) -> None:
                self.seconds.append(time.perf_counter() - inner.started)

        self.seconds: list[float] = []
        self.callback = Timer()


def epoch_seconds(records_dir: Path, arch: str, front_end: Any, epochs: int, cache: Path | None) -> float:
    """Median seconds per training epoch of ``arch`` on the training split, inputs as kser train makes them."""
    import math

    from kser.config import TrainConfig
    from kser.data import Subset, split_size
    from kser.inputs import make_inputs
    from kser.records_info import read_records_info
    from kser.training import build_core, compile_for_training, resolve_config

    records = read_records_info(records_dir)
    config = resolve_config(TrainConfig(arch=arch, epochs=epochs))
    # Every clip trains (records built with --split=none hold them all in one split).
    clips = Subset(tuple(name for name, split in records.splits.items() if split.clips), name="all clips")
    steps = math.ceil(split_size(records, clips, config.balance) / config.batch_size)
    core = build_core(arch, len(records.label_names), front_end.output_feature_shape, {})
    compile_for_training(core, config, steps)
    data = make_inputs(
        records_dir, clips, steps=steps, training=True, balance=config.balance, batch_size=config.batch_size,
        augment=config.augmentation if config.augment else None,
        mixup_alpha=config.mixup_alpha, seed=0, front_end=front_end, output="features", feature_cache=cache,
    )
    timer = EpochTimer()
    core.fit(data, epochs=epochs, steps_per_epoch=steps, callbacks=[timer.callback], shuffle=False, verbose=0)
    return statistics.median(timer.seconds[1:] or timer.seconds)  # the first epoch traces the graph


def export_rtf(
    work: Path, front_end: Any, head: Any, label_names: tuple[str, ...], audio: Any, calls: int, formats: tuple[str, ...]
) -> dict[str, float]:
    """RTF of the exported waveform model at batch 1, per runtime (SavedModel through TensorFlow, ONNX)."""
    from kser.audio_frontend import waveform_classifier
    from kser.export import export_saved_model
    from kser.model_dir import MODEL_FILE, ModelInfo, save_info

    model_dir = work / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    waveform_classifier(front_end, head).save(model_dir / MODEL_FILE)
    save_info(model_dir, ModelInfo("whisper", label_names, audio, front_end.feature_config, extra={"front_end": front_end.describe()}))
    rng = np.random.default_rng(0)
    results = {}
    for fmt, runtime in (("saved_model", "tf"), ("onnx", "onnx")):
        if fmt not in formats:
            continue
        export_dir = work / f"export_{fmt}"
        export_saved_model(model_dir, export_dir, formats=(fmt,))
        timed = time_artefact(export_dir, runtime, calls, rng)
        results[f"{fmt}_latency_ms"], results[f"{fmt}_rtf"] = timed["latency_ms"], timed["rtf"]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records_dir", required=True, help="records built by kser build-records (every clip trains)")
    parser.add_argument("--sizes", default="tiny,base", help=f"comma list of {', '.join(SIZES)}")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--calls", type=int, default=20)
    # tf2onnx needed more than this machine's 23 GB for the `small` size (killed); tiny and base convert.
    parser.add_argument("--formats", default="saved_model,onnx", help="exports to time: saved_model, onnx")
    parser.add_argument("--name", default="pretrained_encoder")
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()

    from kser.audio_frontend import front_end_for
    from kser.feature_cache import ensure_cache
    from kser.models import build, estimate_flops
    from kser.records_info import read_records_info
    from kser.whisper import load_front_end, save_preset

    records_dir = Path(args.records_dir)
    records = read_records_info(records_dir)
    work = Path(tempfile.mkdtemp(prefix="kser-pretrained-"))
    clips = sum(split.clips for split in records.splits.values())
    baseline = epoch_seconds(records_dir, "small", front_end_for(records.audio), args.epochs, None)
    print(f"small, features in tf.data: {baseline:.1f} s per epoch", flush=True)
    rows = []
    for size in args.sizes.split(","):
        layers, heads, width, hidden = SIZES[size]
        preset = save_preset(work / size / "preset", num_layers=layers, num_heads=heads, hidden_dim=width, intermediate_dim=hidden)
        front_end = load_front_end(str(preset), records.audio)
        head = build("whisper", num_classes=len(records.label_names), input_shape=front_end.output_feature_shape)
        started = time.perf_counter()
        cache = ensure_cache(work / size / "cache", records_dir, front_end)
        cache_s = time.perf_counter() - started
        row = {
            "encoder": f"whisper_{size} (random weights)",
            "encoder_params_m": front_end.count_params() / 1e6,
            "front_end_gflops": 2 * front_end.macs() / 1e9,
            "head_gflops": estimate_flops(head) / 1e9,
            "cache_s": cache_s,
            "cache_ms_per_clip": 1000 * cache_s / clips,
            "cache_mb": cache.stat().st_size / 1e6,
            "head_epoch_s": epoch_seconds(records_dir, "whisper", front_end, args.epochs, cache),
            "small_epoch_s": baseline,
            **export_rtf(work / size, front_end, head, records.label_names, records.audio, args.calls, tuple(args.formats.split(","))),
        }
        row["head_epoch_vs_small"] = row["head_epoch_s"] / baseline
        rows.append(row)
        print({key: round(value, 4) if isinstance(value, float) else value for key, value in row.items()}, flush=True)

    columns = ["encoder", "encoder_params_m", "front_end_gflops", "head_gflops", "cache_s", "cache_ms_per_clip", "cache_mb",
               "head_epoch_s", "small_epoch_s", "head_epoch_vs_small"] + [f"{fmt}_rtf" for fmt in args.formats.split(",")]
    formatted = [{key: f"{value:.3g}" if isinstance(value, float) else value for key, value in row.items()} for row in rows]
    results = {"records_dir": str(records_dir), "clips": clips, "epochs": args.epochs, "calls": args.calls, "rows": rows, "table": table(formatted, columns)}
    print(results["table"])
    print(write_results(args.out, args.name, results))


if __name__ == "__main__":
    main()
