"""Benchmark the feature path: (a) kser's tf.data pipeline from TFRecords to feature batches,
(b) bare LogMelDeltas on in-memory batches, (c) librosa per file (load + melspectrogram + 2 deltas),
all on the same synthetic 16 kHz clips in the same run. Goals: (a) >= 6x (c) and >= 50% of (b).
Also (d) the model's front end with ``--prosody``'s channels (kser.prosody), FFT and portable paths,
as a cost against (b).

    python benchmarks/features_pipeline.py --out=benchmarks/results [--actors=24 --sentences=12]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from benchmarks.common import table, write_results  # noqa: E402
from kser.config import BuildConfig, FeatureConfig, SplitConfig  # noqa: E402
from kser.demo_data import generate_demo_dataset  # noqa: E402
from kser.quiet import tensorflow  # noqa: E402
from kser_tfrecords_builder import build_records  # noqa: E402


def best_rate(run, clips: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return clips / best


def pipeline_rate(records: Path, batch_size: int, repeats: int) -> tuple[float, int]:
    from kser.data import make_dataset
    from kser.records_info import read_records_info

    clips = read_records_info(records).splits["train"].clips
    dataset = make_dataset(records, "train", batch_size=batch_size, training=True)
    for _ in dataset.take(2):  # warm-up: trace the graph
        pass
    return best_rate(lambda: [None for _ in dataset], clips, repeats), clips


def bare_rate(waveforms: np.ndarray, batch_size: int, repeats: int, layer=None) -> float:
    """Clips per second through ``layer`` (default: LogMelDeltas) on in-memory batches."""
    from kser.features import LogMelDeltas

    tf = tensorflow()
    layer = layer or LogMelDeltas(FeatureConfig())
    compute = tf.function(lambda batch: layer(batch))
    batches = [tf.constant(waveforms[i : i + batch_size]) for i in range(0, len(waveforms), batch_size)]
    compute(batches[0]).numpy()

    def run() -> None:
        for batch in batches:
            compute(batch).numpy()

    return best_rate(run, len(waveforms), repeats)


def librosa_rate(paths: list[Path], repeats: int) -> float:
    import librosa

    def run(files: list[Path]) -> None:
        for path in files:
            y, _ = librosa.load(path, sr=16_000, duration=3.0)
            y = np.pad(y, (0, max(0, 48_000 - y.size)))
            mel = librosa.feature.melspectrogram(
                y=y, sr=16_000, n_fft=512, win_length=400, hop_length=160, window="hamming", n_mels=64
            )
            log_mel = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None)
            librosa.feature.delta(log_mel)
            librosa.feature.delta(log_mel, order=2)

    run(paths[:5])  # warm-up: librosa's lazy imports and caches
    return best_rate(lambda: run(paths), len(paths), repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--actors", type=int, default=24)
    parser.add_argument("--sentences", type=int, default=12)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--librosa_files", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        audio, records = Path(tmp) / "audio", Path(tmp) / "records"
        generate_demo_dataset(audio, actors=args.actors, sentences=args.sentences)
        config = BuildConfig(data_dir=str(audio), output_dir=str(records), split=SplitConfig(strategy="random"))
        build_records(config, progress_stream=open(os.devnull, "w"))
        from kser.data import make_dataset

        waveforms = np.concatenate(
            [w.numpy() for w, _ in make_dataset(records, "train", batch_size=256, training=False, output="waveforms")]
        )
        tensorflow()  # import before timing anything
        pipeline, clips = pipeline_rate(records, args.batch_size, args.repeats)
        bare = bare_rate(waveforms, args.batch_size, args.repeats)
        from kser.audio_frontend import AudioFrontEnd

        prosody = {
            dft: bare_rate(waveforms, args.batch_size, args.repeats, AudioFrontEnd(16_000, waveforms.shape[1], None, FeatureConfig(prosody=True), dft=dft))
            for dft in ("rfft", "matmul")
        }
        files = sorted(audio.glob("*.wav"))[: args.librosa_files]
        reference = librosa_rate(files, args.repeats)
    rows = [
        {"path": "(a) kser tf.data: TFRecords -> feature batches", "clips_per_s": f"{pipeline:.0f}", "vs_librosa": f"{pipeline / reference:.2f}", "vs_bare": f"{pipeline / bare:.2f}"},
        {"path": "(b) bare LogMelDeltas, in-memory batches", "clips_per_s": f"{bare:.0f}", "vs_librosa": f"{bare / reference:.2f}", "vs_bare": "1.00"},
        *(
            {"path": f"(d) front end with --prosody, {dft}", "clips_per_s": f"{rate:.0f}", "vs_librosa": f"{rate / reference:.2f}", "vs_bare": f"{rate / bare:.2f}"}
            for dft, rate in prosody.items()
        ),
        {"path": "(c) librosa per file (load+mel+2 deltas)", "clips_per_s": f"{reference:.0f}", "vs_librosa": "1.00", "vs_bare": f"{reference / bare:.2f}"},
    ]
    path = write_results(
        args.out,
        "features_pipeline",
        {
            "clips": clips,
            "batch_size": args.batch_size,
            "clips_per_second": {
                "pipeline": pipeline, "bare_layer": bare, "librosa": reference,
                **{f"front_end_prosody_{dft}": rate for dft, rate in prosody.items()},
            },
            "ratios": {"pipeline_vs_librosa": pipeline / reference, "pipeline_vs_bare": pipeline / bare},
            "goals": {"pipeline_vs_librosa": ">= 6", "pipeline_vs_bare": ">= 0.5"},
        },
    )
    print(table(rows, ["path", "clips_per_s", "vs_librosa", "vs_bare"]))
    print(f"{clips} train clips of 3 s, batch {args.batch_size}; results in {path}")


if __name__ == "__main__":
    main()
