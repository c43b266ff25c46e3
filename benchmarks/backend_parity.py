"""Does a saved kser model.keras give the same probabilities under another Keras backend and device?

``make`` (TensorFlow backend, CPU) saves waveform classifiers (kser.audio_frontend) with the inputs
and the probabilities TensorFlow gives; ``check`` (any backend: JAX on a GPU, say) loads each with
``keras.saving.load_model`` after ``import kser`` and reports the largest probability difference
and the time per batch, at the backend's default float32 matmul precision and, under JAX, at
"highest" (GPUs otherwise multiply float32 in TF32, about 3 decimal digits).

    python benchmarks/backend_parity.py make --dir=D [--model_dir=M] [--data_dir=AUDIO]
    KERAS_BACKEND=jax python benchmarks/backend_parity.py check --dir=D --out=benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CLIPS = 20


def read_inputs(data_dir: str | None, clip_samples: int, sample_rate: int) -> np.ndarray:
    """``CLIPS`` real recordings (the first of each actor folder, then more) cut or padded to one clip,
    or seeded noise with a moving envelope where no audio is given."""
    from kser.audio import read_audio
    from kser.waveform import pad_or_trim

    if data_dir:
        files = sorted(Path(data_dir).rglob("*.flac")) or sorted(Path(data_dir).rglob("*.wav"))
        files = files[:: max(1, len(files) // CLIPS)][:CLIPS]
        return np.stack([pad_or_trim(read_audio(str(path), sample_rate)[0], clip_samples) for path in files]).astype(np.float32)
    rng = np.random.default_rng(0)
    t = np.arange(clip_samples) / sample_rate
    envelope = np.abs(np.sin(2 * np.pi * rng.uniform(0.2, 2.0, (CLIPS, 1)) * t))
    return (envelope * rng.standard_normal((CLIPS, clip_samples))).astype(np.float32)


def make(args: argparse.Namespace) -> None:
    import keras

    from kser.audio_frontend import front_end_for, waveform_classifier
    from kser.config import AudioConfig, FeatureConfig
    from kser.model_dir import load_model
    from kser.models import build

    out = Path(args.dir)
    out.mkdir(parents=True, exist_ok=True)
    front_end = front_end_for(AudioConfig(), FeatureConfig())
    models = {}
    if args.model_dir:
        models["small_trained"] = load_model(args.model_dir)
    keras.utils.set_random_seed(0)
    for arch in args.archs.split(","):
        models[f"{arch}_random"] = waveform_classifier(front_end, build(arch, num_classes=6, input_shape=front_end.output_feature_shape))
    inputs = read_inputs(args.data_dir, front_end.clip_samples, front_end.sample_rate)
    np.save(out / "inputs.npy", inputs)
    for name, model in models.items():
        model.save(out / f"{name}.keras")
        np.save(out / f"{name}.expected.npy", np.asarray(model.predict(inputs, batch_size=CLIPS, verbose=0)))
    print(f"{len(models)} models, {inputs.shape[0]} clips -> {out}")


def check(args: argparse.Namespace) -> None:
    import keras

    import kser  # noqa: F401  (registers kser's layers for keras.saving, once Keras is loaded)

    folder = Path(args.dir)
    inputs = np.load(folder / "inputs.npy")
    precisions = ["default"]
    if keras.backend.backend() == "jax":
        precisions.append("highest")
    rows = []
    for path in sorted(folder.glob("*.keras")):
        expected = np.load(folder / f"{path.stem}.expected.npy")
        for precision in precisions:
            if keras.backend.backend() == "jax":
                import jax

                jax.config.update("jax_default_matmul_precision", None if precision == "default" else precision)
            model = keras.saving.load_model(path)
            got = np.asarray(model.predict(inputs, batch_size=CLIPS, verbose=0))
            times = []
            for _ in range(5):
                started = time.perf_counter()
                np.asarray(model.predict_on_batch(inputs))
                times.append(time.perf_counter() - started)
            rows.append({
                "model": path.stem, "precision": precision,
                "max_abs_diff": float(np.abs(got - expected).max()),
                "same_argmax": int((got.argmax(axis=1) == expected.argmax(axis=1)).sum()),
                "clips": int(inputs.shape[0]),
                "ms_per_batch": round(1000 * statistics.median(times), 2),
            })
            print(json.dumps(rows[-1]), flush=True)
    if args.out:
        from benchmarks.common import write_results

        devices = []
        if keras.backend.backend() == "jax":
            import jax

            devices = [str(device) for device in jax.devices()]
        print(write_results(args.out, "backend_parity", {"backend": keras.backend.backend(), "devices": devices, "rows": rows}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("make", "check"))
    parser.add_argument("--dir", required=True)
    parser.add_argument("--model_dir", help="make: a trained model directory to include")
    parser.add_argument("--data_dir", help="make: audio to score (default: seeded noise)")
    parser.add_argument("--archs", default="small,lstm_ft", help="make: randomly initialised full-size architectures")
    parser.add_argument("--out", help="check: write the rows to OUT/backend_parity.json")
    args = parser.parse_args()
    (make if args.mode == "make" else check)(args)


if __name__ == "__main__":
    main()
