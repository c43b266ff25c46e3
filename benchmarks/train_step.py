"""Benchmark training steps at batch 32: kser's path vs a plain Keras build of the same layers.

kser: the model from kser.models.build, compiled as kser.training compiles it, fed by
kser.data.make_dataset from TFRecords (features computed in the tf.data pipeline, as on a CPU).
plain: the same layer graph rebuilt by Keras from its config, fed by in-memory feature tensors.
Both run model.fit in the same process; step time is the median wall time between batch ends.
The difference (ratio above 1) is the input pipeline's wait plus any overhead kser adds.
Also measured: the real-time factor of an exported SavedModel of `small` (if kser.export exists).

    python benchmarks/train_step.py --out=benchmarks/results [--archs=small,lstm_ft,gru,lstm,attn_pool --steps=4]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from benchmarks.common import table, write_results  # noqa: E402
from kser.config import BuildConfig, TrainConfig  # noqa: E402
from kser.demo_data import generate_demo_dataset  # noqa: E402
from kser.quiet import tensorflow  # noqa: E402
from kser_tfrecords_builder import build_records  # noqa: E402

BATCH = 32


def step_times(model, data, steps: int) -> list[float]:
    """Wall time between consecutive batch ends (the first step, which traces, is dropped)."""
    import keras

    ends: list[float] = []

    class Timer(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            ends.append(time.perf_counter())

    model.fit(data, epochs=1, steps_per_epoch=steps + 1, callbacks=[Timer()], verbose=0)
    return [b - a for a, b in zip(ends, ends[1:])]


def compile_like_kser(model, arch: str, steps_per_epoch: int) -> None:
    from kser.models import recipe
    from kser.training import compile_for_training

    compile_for_training(model, TrainConfig(arch=arch).with_recipe(recipe(arch)), steps_per_epoch)


def bench_arch(arch: str, records: Path, steps: int) -> dict:
    import keras

    from kser.data import make_dataset
    from kser.models import build

    tf = tensorflow()
    kser_model = build(arch)
    compile_like_kser(kser_model, arch, steps)
    kser_data = make_dataset(records, "train", batch_size=BATCH, training=True, balance="oversample").repeat()
    plain = keras.Model.from_config(kser_model.get_config())
    compile_like_kser(plain, arch, steps)
    rng = np.random.default_rng(0)
    features = tf.constant(rng.standard_normal((BATCH, 300, 64, 3)).astype(np.float32))
    labels = tf.one_hot(rng.integers(0, 6, BATCH), 6)
    plain_data = tf.data.Dataset.from_tensors((features, labels)).repeat()
    kser_times = step_times(kser_model, kser_data, steps)
    plain_times = step_times(plain, plain_data, steps)
    kser_step, plain_step = statistics.median(kser_times), statistics.median(plain_times)
    return {"arch": arch, "params": kser_model.count_params(), "kser_s": kser_step, "plain_s": plain_step, "ratio": kser_step / plain_step}


def export_rtf(records: Path, workdir: Path) -> dict | None:
    """Real-time factor of an exported `small` SavedModel on 3 s and 10 s clips (CPU)."""
    try:
        from kser.export import export_model
    except ImportError:
        return None
    from kser.config import AudioConfig, FeatureConfig
    from kser.model_dir import ModelInfo
    from kser.audio_frontend import front_end_for, waveform_classifier
    from kser.models import build

    tf = tensorflow()
    info = ModelInfo("small", ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD"), AudioConfig(), FeatureConfig())
    export_dir = workdir / "export"
    export_model(waveform_classifier(front_end_for(info.audio, info.features), build("small")), info, export_dir)
    serve = tf.saved_model.load(str(export_dir)).signatures["serving_default"]
    results = {}
    for seconds in (3, 10):
        waveform = tf.constant(np.random.default_rng(0).standard_normal((1, 16_000 * seconds)).astype(np.float32))
        serve(waveform=waveform)
        runs = []
        for _ in range(5):
            started = time.perf_counter()
            serve(waveform=waveform)["probabilities"].numpy()
            runs.append(time.perf_counter() - started)
        results[f"{seconds}s_clip"] = statistics.median(runs) / seconds
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--archs", default="small,lstm_ft,gru,lstm,attn_pool")
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    tensorflow()
    with tempfile.TemporaryDirectory() as tmp:
        audio, records = Path(tmp) / "audio", Path(tmp) / "records"
        generate_demo_dataset(audio, actors=12, sentences=4)
        build_records(BuildConfig(data_dir=str(audio), output_dir=str(records)), progress_stream=open(os.devnull, "w"))
        rows = [bench_arch(arch, records, args.steps) for arch in args.archs.split(",")]
        rtf = export_rtf(records, Path(tmp))
    printable = [
        {"arch": r["arch"], "params": f"{r['params']:,}", "kser_step_s": f"{r['kser_s']:.3f}", "plain_step_s": f"{r['plain_s']:.3f}", "ratio": f"{r['ratio']:.3f}"}
        for r in rows
    ]
    path = write_results(args.out, "train_step", {"batch_size": BATCH, "steps": args.steps, "archs": rows, "export_rtf_small": rtf, "goals": {"ratio": "<= 1.05", "rtf_small_cpu": "<= 0.01"}})
    print(table(printable, ["arch", "params", "kser_step_s", "plain_step_s", "ratio"]))
    if rtf:
        print("exported small, real-time factor on CPU: " + ", ".join(f"{k} {v:.4f}" for k, v in rtf.items()))
    print(f"results in {path}")


if __name__ == "__main__":
    main()
