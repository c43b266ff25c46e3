"""``kser evaluate``: the study's figures and tables for one split, from one command.

Writes report.json (accuracy, UAR, macro F1, per-class precision/recall/F1/support, confusion
matrix, split protocol, seed, manifest checksum), classification_report.txt,
confusion_matrix.png and training_curves.png.
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from kser import model_dir as model_files
from kser.atomic import write_json, write_text
from kser.config import EVAL_BATCH_SIZE, EVAL_SPLIT, SPEAKER_STATS, AudioConfig, to_dict
from kser.data import Subset
from kser.inputs import make_inputs
from kser.records_info import RecordsInfo, read_records_info
from kser.output_dirs import check_writable, make_dir
from kser.run_config import read_run_config
from kser.errors import KserError
from kser.metrics import classification_metrics, classification_report_text
from kser.records import MANIFEST_FILE, file_sha256


def read_history(model_dir: str | Path) -> dict[str, list[float]]:
    """history.csv as columns (empty when the run wrote none).

    Keras's CSVLogger writes ``NA`` in the val_ columns it adds for a run without validation; such
    cells are left out, as are empty ones.
    """
    path = Path(model_dir) / model_files.HISTORY_FILE
    if not path.is_file():
        return {}
    columns: dict[str, list[float]] = {}
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            for key, value in row.items():
                if key != "epoch" and value not in ("", "NA", None):
                    columns.setdefault(key, []).append(float(value))
    return columns


def label_mapping(model_labels: tuple[str, ...], records_labels: list[str], records_dir: Path) -> np.ndarray:
    """records label index -> model label index, matched by name; a label the model lacks is an error."""
    unknown = [label for label in records_labels if label not in model_labels]
    if unknown:
        raise KserError(
            f"{records_dir} holds label(s) {', '.join(unknown)} that the model does not know "
            f"(it knows {', '.join(model_labels)}); rebuild the records with --labels={','.join(l for l in records_labels if l in model_labels)}"
        )
    return np.asarray([model_labels.index(label) for label in records_labels], dtype=np.int64)


def _averaged_over_present(metrics: dict[str, Any], present: list[str]) -> dict[str, Any]:
    """UAR and macro F1 over the classes the records hold (a class with no clips has no recall)."""
    rows = [metrics["per_class"][name] for name in present]
    macro = {key: float(np.mean([row[key] for row in rows])) for key in ("precision", "recall", "f1")}
    return {
        **metrics,
        "uar": macro["recall"],
        "macro_f1": macro["f1"],
        "macro_avg": {**macro, "support": metrics["support"]},
    }


def predict_split(
    model: Any,
    info: model_files.ModelInfo,
    records_dir: Path,
    split: str | Subset,
    batch_size: int = EVAL_BATCH_SIZE,
    speaker_stats: str = "speaker",
) -> tuple[np.ndarray, np.ndarray]:
    """``(labels, probabilities)`` of every clip of ``split``, in the records' order and the model's
    label space: what :func:`evaluate` scores, and what an ensemble averages over models. ``model`` is
    a waveform classifier (kser.model_dir.load_model): its own front end makes the features, under
    any Keras backend. A speaker-normalised model (kser.speaker_norm) scores each speaker with the
    statistics of its own clips (``speaker_stats="speaker"``), or every clip with its training
    clips' (``"training"``: what ``kser predict`` and the exported models do)."""
    if speaker_stats not in SPEAKER_STATS:
        raise KserError(f"unknown speaker statistics {speaker_stats!r}; choose one of {', '.join(SPEAKER_STATS)}")
    records = read_records_info(records_dir)
    to_model = label_mapping(info.label_names, list(records.label_names), records_dir)
    from kser.audio_frontend import front_end_of

    front_end = front_end_of(model)
    if (records.audio.sample_rate, records.clip_samples) != (front_end.sample_rate, front_end.clip_samples):
        raise KserError(
            f"{records_dir} holds clips of {records.clip_samples} samples at {records.audio.sample_rate} Hz, but the model "
            f"takes {front_end.clip_samples} at {front_end.sample_rate} Hz; build the records with the model's sample rate and clip length"
        )
    from kser.speaker_norm import predict_by_speaker, speaker_normalization_of

    if speaker_stats == "speaker" and speaker_normalization_of(model) is not None:  # each test speaker's own, from all its clips
        from kser.pydataset import read_clips

        clips = read_clips(records_dir, Subset.of(split), records)
        waveforms = clips.waveforms(np.arange(len(clips)))
        return to_model[clips.labels], predict_by_speaker(model, waveforms, clips.speakers, batch_size)
    dataset = make_inputs(records_dir, split, batch_size=batch_size, training=False, one_hot=False, output="waveforms")
    # One pass: reading the labels and predicting separately would decode the clips twice.
    true_batches, probability_batches = [], []
    for waveforms, labels in dataset:
        true_batches.append(to_model[np.asarray(labels)])
        probability_batches.append(np.asarray(model.predict_on_batch(np.asarray(waveforms))))
    return np.concatenate(true_batches), np.concatenate(probability_batches)


def metrics_for(y_true: np.ndarray, probabilities: np.ndarray, label_names: tuple[str, ...]) -> dict[str, Any]:
    """The report's metrics of argmax predictions; UAR and macro F1 over the classes present."""
    metrics = classification_metrics(y_true, np.argmax(probabilities, axis=1), label_names)
    present = [name for name in label_names if metrics["per_class"][name]["support"] > 0]
    if len(present) < len(label_names):
        metrics = _averaged_over_present(metrics, present)
    return {**metrics, "clips": int(y_true.size), "classes_present": present}


def among_records_labels(
    y_true: np.ndarray, probabilities: np.ndarray, model_labels: tuple[str, ...], records_labels: Sequence[str]
) -> dict[str, Any] | None:
    """The model asked to choose among the records' emotions only, when the records declare fewer
    than it knows (another corpus: URDU has four of the six): argmax over those classes. None
    when the records declare every class of the model. Why beside the plain figures: a four-emotion
    corpus defines a four-way task, and a six-way model's guesses of disgust or fear there are
    errors of the label set as much as of hearing; both are reported, neither replaces the other."""
    chosen = [name for name in model_labels if name in records_labels]
    if len(chosen) == len(model_labels):
        return None
    keep = np.asarray([name in records_labels for name in model_labels])
    metrics = metrics_for(y_true, np.where(keep, probabilities, 0.0), model_labels)
    return {
        "labels": chosen,
        "uar": metrics["uar"],
        "accuracy": metrics["accuracy"],
        "macro_f1": metrics["macro_f1"],
        "recall": {name: metrics["per_class"][name]["recall"] for name in metrics["classes_present"]},
    }


def trained_with(model_dir: Path, info: model_files.ModelInfo) -> dict[str, Any]:
    """The resolved training settings of the run in ``model_dir`` (from its RunConfig)."""
    run = read_run_config(model_dir)
    if run is not None:
        return to_dict(run.train)
    return info.extra.get("train", {})  # model directories from before RunConfig kept a copy here


def evaluate(
    model_dir: str | Path,
    records_dir: str | Path,
    split: str | Subset = EVAL_SPLIT,
    output_dir: str | Path | None = None,
    batch_size: int = EVAL_BATCH_SIZE,
    noise_snrs: Sequence[float] = (),
    speaker_stats: str = "speaker",
    durations: Sequence[float] = (),
) -> dict[str, Any]:
    """Score the trained model on ``split`` and write the report files; returns report.json's content.

    The records may hold fewer labels than the model knows (another corpus, ``--split=none``):
    labels are matched by name, ``classes_present`` lists the classes scored, and UAR and macro F1
    average over those classes only. ``noise_snrs`` (dB) adds UAR under white noise and babble at
    each (kser.robustness): ``robustness`` in the report and ``robustness.png``; ``durations`` (s),
    UAR on each clip cut to its first seconds of speech: ``duration``. ``speaker_stats``:
    :func:`predict_split`'s, for a speaker-normalised model.
    """
    from kser.plots import confusion_matrix_png, training_curves_png

    model_dir, records_dir = Path(model_dir), Path(records_dir)
    info = model_files.load_info(model_dir)
    records = read_records_info(records_dir)
    output = check_writable(output_dir or model_dir / model_files.EVAL_DIR, "report directory")
    model = model_files.load_model(model_dir)
    subset = Subset.of(split)
    y_true, probabilities = predict_split(model, info, records_dir, subset, batch_size, speaker_stats)
    from kser.speaker_norm import speaker_normalization_of

    normalised = speaker_normalization_of(model) is not None
    metrics = metrics_for(y_true, probabilities, info.label_names)
    restricted = among_records_labels(y_true, probabilities, info.label_names, records.label_names)

    make_dir(output, "report directory")
    report = {
        "split": subset.label,
        "speakers": None if subset.speakers is None else sorted(subset.speakers),
        "arch": info.arch,
        **({"speaker_statistics": speaker_stats} if normalised else {}),
        **metrics,
        "protocol": {
            "split_strategy": records.split_strategy,
            "split_fractions": list(records.split_fractions),
            "records_seed": records.seed,
            "train": trained_with(model_dir, info),
        },
        "records_dir": str(records_dir.resolve()),
        "manifest_sha256": file_sha256(records_dir / MANIFEST_FILE),
        "trained_on_manifest_sha256": info.records_manifest_sha256,
    }
    if restricted is not None:
        report["among_records_labels"] = restricted
    if noise_snrs or durations:
        altered = AlteredClips.read(model, info, records_dir, records, subset, batch_size, speaker_stats)
        if noise_snrs:
            report["robustness"] = robustness(altered, noise_snrs)
        if durations:
            report["duration"] = by_duration(altered, durations, records.audio)
    write_json(output / "report.json", report)
    write_text(output / "classification_report.txt", classification_report_text(metrics, digits=3) + "\n")
    confusion_matrix_png(np.asarray(metrics["confusion_matrix"]), info.label_names, output / "confusion_matrix.png", title=f"{info.arch} on {subset.label}")
    training_curves_png(read_history(model_dir), output / "training_curves.png", title=info.arch)
    if noise_snrs:
        from kser.plots import robustness_png
        from kser.robustness import NOISE_KINDS

        robustness_png(
            {kind: report["robustness"][kind] for kind in NOISE_KINDS}, report["uar"], output / "robustness.png",
            title=f"{info.arch} on {subset.label} under noise",
        )
    return report


@dataclasses.dataclass(frozen=True)
class AlteredClips:
    """A split's clips read once, for scoring altered copies of them (noise, shorter recordings)."""

    waveforms: np.ndarray  # [clips, samples] as the records hold them
    labels: np.ndarray  # in the model's label space
    speakers: np.ndarray
    predict: Callable[[np.ndarray], np.ndarray]  # waveforms -> probabilities
    score: Callable[[np.ndarray, np.ndarray], dict[str, Any]]  # (labels, probabilities) -> the report's metrics

    @classmethod
    def read(cls, model: Any, info: model_files.ModelInfo, records_dir: Path, records: RecordsInfo, subset: Subset, batch_size: int, speaker_stats: str) -> "AlteredClips":
        from kser.pydataset import read_clips
        from kser.speaker_norm import predict_by_speaker, speaker_normalization_of

        clips = read_clips(records_dir, subset, records)
        to_model = label_mapping(info.label_names, list(records.label_names), records_dir)
        by_speaker = speaker_stats == "speaker" and speaker_normalization_of(model) is not None

        def predict(waveforms: np.ndarray) -> np.ndarray:
            if by_speaker:  # each speaker's statistics from its altered clips
                return predict_by_speaker(model, waveforms, clips.speakers, batch_size)
            return np.concatenate([np.asarray(model.predict_on_batch(waveforms[start : start + batch_size])) for start in range(0, len(waveforms), batch_size)])

        return cls(
            clips.waveforms(np.arange(len(clips))), to_model[clips.labels], clips.speakers, predict,
            lambda labels, probabilities: metrics_for(labels, probabilities, info.label_names),
        )


def robustness(clips: AlteredClips, snrs: Sequence[float]) -> dict[str, Any]:
    """UAR on ``clips`` mixed with white noise and babble at each SNR (dB)."""
    from kser.robustness import BABBLE_TALKERS, NOISE_SEED, uar_under_noise

    table = uar_under_noise(clips.predict, clips.waveforms, clips.labels, clips.speakers, snrs, clips.score)
    return {"snr_db": [float(snr) for snr in snrs], "babble_talkers": BABBLE_TALKERS, "seed": NOISE_SEED, **table}


def by_duration(clips: AlteredClips, durations: Sequence[float], audio: AudioConfig) -> dict[str, Any]:
    """UAR on ``clips`` cut to their first ``durations`` seconds of speech (kser.robustness.shortened),
    padded as records of ``audio`` (its sample rate and noise level) were."""
    from kser.robustness import NOISE_SEED, ONSET_TOP_DB, uar_by_duration

    table = uar_by_duration(clips.predict, clips.waveforms, clips.labels, durations, clips.score, audio.sample_rate, audio.noise_level)
    return {"seconds": [float(seconds) for seconds in durations], "uar": table, "onset_top_db": ONSET_TOP_DB, "noise_level": audio.noise_level, "seed": NOISE_SEED}


def summary_table(report: dict[str, Any]) -> str:
    """A short printable summary: headline numbers and per-class recall."""
    lines = [
        f"{report['arch']} on {report['split']} ({report['clips']} clips): "
        f"accuracy {report['accuracy']:.4f}  UAR {report['uar']:.4f}  macro F1 {report['macro_f1']:.4f}",
    ]
    absent = [name for name in report["per_class"] if name not in report.get("classes_present", report["per_class"])]
    if absent:
        lines.append(f"classes scored: {' '.join(report['classes_present'])} (no clips of {' '.join(absent)}; UAR and macro F1 average over the classes scored)")
    if "among_records_labels" in report:
        among = report["among_records_labels"]
        lines.append(
            f"choosing only among the records' labels ({' '.join(among['labels'])}): "
            f"accuracy {among['accuracy']:.4f}  UAR {among['uar']:.4f}  macro F1 {among['macro_f1']:.4f}"
        )
    lines.append(f"{'class':<8}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}")
    for name, row in report["per_class"].items():
        lines.append(f"{name:<8}{row['precision']:>10.3f}{row['recall']:>10.3f}{row['f1']:>10.3f}{row['support']:>9d}")
    if "robustness" in report:
        from kser.robustness import NOISE_KINDS

        snrs = [f"{snr:g}" for snr in report["robustness"]["snr_db"]]
        lines.append(f"UAR under noise ({' / '.join(snrs)} dB SNR; clean {report['uar']:.3f}):")
        for kind in NOISE_KINDS:
            lines.append(f"  {kind:<7} " + "  ".join(f"{report['robustness'][kind][snr]:.3f}" for snr in snrs))
    if "duration" in report:
        table = report["duration"]["uar"]
        lines.append("UAR on the first seconds of speech: " + "  ".join(f"{seconds} s {uar:.3f}" for seconds, uar in table.items()) + f"  (whole clips {report['uar']:.3f})")
    return "\n".join(lines)
