"""Test-time speaker normalisation, probed on a trained model before anything is built for it.

Why: issue 22 lists speaker-level normalisation first among the ways to generalise to new speakers
and corpora. Building it into training, evaluation and predict is a lot of work; this measures
first whether it helps a model trained *without* it. Each test group's log-mel statistics (per mel
band, over all its frames) are matched to the training clips' statistics, an affine map of the
log-mel applied before the deltas, so it is the same map on all three channels (Δ and ΔΔ are linear
in the log-mel: the shift drops out, the scale stays). Groups:

* ``none``: the model as it is (what ``kser evaluate`` reports);
* ``corpus``: one group, every test clip (a whole new corpus or recording chain);
* ``speaker``: one group per test speaker; speakers with fewer than ``--min_clips`` clips fall back
  to the corpus statistics (a single clip says too little about its speaker).

Evaluation only: nothing is trained. Records must hold the speakers (kser's records do).

    python benchmarks/speaker_norm_probe.py --model_dir=M --train_records=R --records_dir=T [--split=test]
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import table, write_results  # noqa: E402

MODES = ("none", "corpus", "speaker")


def read_clips(records_dir: Path, splits: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """(waveforms [N, samples], labels [N], speakers, label names) of ``splits``, in shard order."""
    from kser.records import parse_example_numpy
    from kser.tfrecord_format import read_records

    manifest = json.loads((records_dir / "manifest.json").read_text())
    encoding = manifest["waveform"]["encoding"]
    waveforms, labels, speakers = [], [], []
    for split in splits:
        for shard in manifest["splits"][split]["shards"]:
            for serialized in read_records(records_dir / shard["name"]):
                parsed = parse_example_numpy(serialized, encoding)
                waveforms.append(parsed["waveform"])
                labels.append(int(parsed["label"]))
                speakers.append(parsed["speaker"].decode())
    return np.stack(waveforms), np.asarray(labels), speakers, list(manifest["label_names"])


def features_of(waveforms: np.ndarray, layer, batch: int = 64) -> np.ndarray:
    """The model's front end (kser.audio_frontend.AudioFrontEnd) on every waveform, [N, frames, mels, 3]."""
    return np.concatenate([np.asarray(layer(waveforms[i : i + batch])) for i in range(0, len(waveforms), batch)])


def band_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-mel-band mean and sd of the log-mel channel over every frame of ``features``."""
    log_mel = features[..., 0].reshape(-1, features.shape[2])
    return log_mel.mean(axis=0), log_mel.std(axis=0) + 1e-6


def matched(features: np.ndarray, group: tuple[np.ndarray, np.ndarray], target: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """``features`` with the group's log-mel statistics mapped onto the target's (deltas scaled alike)."""
    (group_mean, group_sd), (target_mean, target_sd) = group, target
    scale = target_sd / group_sd
    out = features * scale[None, None, :, None]
    out[..., 0] += (target_mean - group_mean * scale)[None, None, :]
    return out.astype(np.float32)


def normalised(features: np.ndarray, speakers: list[str], mode: str, target: tuple[np.ndarray, np.ndarray], min_clips: int) -> np.ndarray:
    if mode == "none":
        return features
    corpus = band_stats(features)
    if mode == "corpus":
        return matched(features, corpus, target)
    out = np.empty_like(features)
    by_speaker = collections.defaultdict(list)
    for index, speaker in enumerate(speakers):
        by_speaker[speaker].append(index)
    for indices in by_speaker.values():
        rows = features[indices]
        stats = band_stats(rows) if len(indices) >= min_clips else corpus
        out[indices] = matched(rows, stats, target)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_dir", required=True, help="a kser train model directory")
    parser.add_argument("--train_records", required=True, help="the records the model trained on (their train split gives the target statistics)")
    parser.add_argument("--records_dir", required=True, help="the records to score")
    parser.add_argument("--split", default="test")
    parser.add_argument("--min_clips", type=int, default=5)
    parser.add_argument("--name", default="speaker_norm_probe")
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()

    from kser import model_dir as model_files
    from kser.audio_frontend import classifier_of, front_end_of
    from kser.evaluation import label_mapping, metrics_for

    info = model_files.load_info(args.model_dir)
    model = model_files.load_model(args.model_dir)
    front_end, classifier = front_end_of(model), classifier_of(model)
    train_waveforms, _, _, _ = read_clips(Path(args.train_records), ("train",))
    target = band_stats(features_of(train_waveforms, front_end))
    del train_waveforms
    waveforms, labels, speakers, names = read_clips(Path(args.records_dir), (args.split,))
    y_true = label_mapping(info.label_names, names, Path(args.records_dir))[labels]
    features = features_of(waveforms, front_end)
    rows = []
    for mode in MODES:
        probabilities = classifier.predict(normalised(features, speakers, mode, target, args.min_clips), batch_size=64, verbose=0)
        metrics = metrics_for(y_true, probabilities, info.label_names)
        rows.append({
            "mode": mode, "uar": round(100 * metrics["uar"], 1), "accuracy": round(100 * metrics["accuracy"], 1),
            **{f"recall_{name}": round(metrics["per_class"][name]["recall"], 2) for name in metrics["classes_present"]},
        })
    counts = collections.Counter(speakers)
    results = {
        "model_dir": args.model_dir, "train_records": args.train_records, "records_dir": args.records_dir, "split": args.split,
        "min_clips": args.min_clips, "clips": len(speakers), "speakers": len(counts),
        "speakers_with_own_stats": sum(1 for n in counts.values() if n >= args.min_clips), "rows": rows,
    }
    path = write_results(args.out, args.name, results)
    print(table(rows, list(rows[0])))
    print(f"{len(speakers)} clips, {len(counts)} speakers ({results['speakers_with_own_stats']} with >= {args.min_clips} clips); {path}")


if __name__ == "__main__":
    main()
