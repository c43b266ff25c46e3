"""Benchmark: what computing validation metrics from Keras's own pass saves per epoch.

ClassMetrics can read the compiled UnweightedAverageRecall's confusion matrix (one validation pass
per epoch, kser's default) or run its own ``model.predict`` over the validation clips (a second
pass, how it worked before). Both run here on the same model, data and steps; the epoch time is the
median over epochs after the first (which traces). The difference is the saving.

    python benchmarks/validation_pass.py --out=benchmarks/results [--records_dir=R --epochs=3 --steps=4]

Without --records_dir the demo data set is generated and built. Records built with --split=none
(as for cross-validation) are split by speaker: the first three speakers validate, the rest train.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import table, write_results  # noqa: E402
from kser.config import BuildConfig, TrainConfig  # noqa: E402
from kser.quiet import tensorflow  # noqa: E402


def _subsets(records_dir: Path):
    from kser.data import Subset, split_size
    from kser.records_info import read_records_info

    records = read_records_info(records_dir)
    if split_size(records, "train") and split_size(records, "validation"):
        return records, Subset.of("train"), Subset.of("validation")
    speakers = sorted(records.splits["test"].speaker_class_counts)
    return records, Subset(("test",), frozenset(speakers[3:]), "train"), Subset(("test",), frozenset(speakers[:3]), "validation")


def epoch_seconds(records_dir: Path, one_pass: bool, epochs: int, steps: int) -> tuple[float, int]:
    import keras

    from kser.callbacks import ClassMetrics
    from kser.data import make_dataset, split_size
    from kser.models import build, recipe
    from kser.training import compile_for_training

    keras.utils.set_random_seed(0)
    records, train_on, validate_on = _subsets(records_dir)
    model = build("small", num_classes=len(records.label_names))
    uar = compile_for_training(model, TrainConfig(arch="small").with_recipe(recipe("small")), steps)
    train = make_dataset(records_dir, train_on, batch_size=32, training=True, seed=0).repeat()
    validation = make_dataset(records_dir, validate_on, batch_size=32, training=False)
    metrics = ClassMetrics(None, records.label_names, confusion_metric=uar) if one_pass else ClassMetrics(validation, records.label_names)
    times: list[float] = []

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):  # runs after ClassMetrics (listed after it)
            times.append(time.perf_counter() - self.started)

    model.fit(train, validation_data=validation, epochs=epochs, steps_per_epoch=steps, callbacks=[metrics, EpochTimer()], verbose=0)
    return statistics.median(times[1:] or times), split_size(records, validate_on)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--records_dir", default=None)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    tensorflow()
    with tempfile.TemporaryDirectory() as tmp:
        records_dir = Path(args.records_dir) if args.records_dir else None
        if records_dir is None:
            from kser.demo_data import generate_demo_dataset
            from kser_tfrecords_builder import build_records

            generate_demo_dataset(Path(tmp) / "audio")
            records_dir = Path(tmp) / "records"
            build_records(BuildConfig(data_dir=str(Path(tmp) / "audio"), output_dir=str(records_dir)), progress_stream=open("/dev/null", "w"))
        two, clips = epoch_seconds(records_dir, one_pass=False, epochs=args.epochs, steps=args.steps)
        one, _ = epoch_seconds(records_dir, one_pass=True, epochs=args.epochs, steps=args.steps)
    rows = [
        {"validation": "ClassMetrics predicts (two passes)", "epoch_s": round(two, 2)},
        {"validation": "compiled UAR metric (one pass)", "epoch_s": round(one, 2)},
    ]
    print(table(rows, ["validation", "epoch_s"]))
    print(f"saving per epoch: {two - one:.2f} s ({clips} validation clips, {args.steps} training steps per epoch)")
    results = {"validation_clips": clips, "steps_per_epoch": args.steps, "rows": rows, "saving_s": round(two - one, 3)}
    print(f"results: {write_results(args.out, 'validation_pass', results)}")


if __name__ == "__main__":
    main()
