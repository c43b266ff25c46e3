"""Export a trained model as a self-contained TensorFlow SavedModel: raw waveform in, emotion out.

Beside it, on request (``formats``; kser.export_formats), ``model.tflite`` and ``model.onnx``:
the fixed-window model of kser.portable_export, for runtimes without TensorFlow.

The exported graph holds the whole inference path, so a server (TF Serving, or any process with
only TensorFlow installed) needs neither kser nor Keras custom objects::

    waveform [batch, samples] float32 at 16 kHz, any length
      -> per row: leading and trailing silence trimmed when the training records were
         (AudioConfig.trim_db > 0; the same rule as kser.waveform.trim_silence)
      -> rows shorter than one clip: zero-padded to one clip (as training padded them);
         longer rows: sliding clip-long windows every ``window_hop_seconds``, the last one
         aligned to the end of the row so that every sample is scored
      -> the trained model.keras on each window: its AudioFrontEnd (per-window normalisation,
         LogMelDeltas; kser.audio_frontend), then its classifier
      -> window probabilities averaged per row

Signatures:

* ``serving_default(waveform)`` -> ``probabilities`` [batch, classes], ``label`` [batch] (string)
* ``windows(waveform)`` -> ``probabilities`` [batch, windows, classes], ``label`` [batch, windows],
  ``start_seconds`` [batch, windows] (in the row as sent, trimming included) and ``num_windows``
  [batch]: rows can have different window counts once trimmed, so row r's windows are the first
  ``num_windows[r]``; the rest is padding (probabilities 0, label "").
* ``kser_constants()`` -> ``label_names`` [classes], ``sample_rate`` and ``clip_samples``: what the
  graph was built for, so that ``kser_export.json`` is checked against the graph itself
  (kser.export_info) and a server can ask the model what to send.

All rows of one call share a length (a tensor is rectangular): send clips of different lengths in
separate calls. Each window is normalised on its own, by the model, as in training: so a window
scores the same in every artefact, LiteRT and ONNX included.

Why window averaging rather than trimming to the first 3 s as training did: training clips are
CREMA-D sentences of 1-5 s, so trimming lost little there, but a deployed model gets recordings
of any length, and scoring only the first 3 s would ignore most of a long one.

The export is written under a hidden temporary directory next to ``export_dir`` and renamed into
place at the end, with ``kser_export.json`` (what each artefact expects) written last inside it, so
a killed export never leaves a directory that looks complete. Meanwhile the export holds the
lock ``.NAME.kser.lock`` beside ``export_dir`` (:mod:`kser.locks`): a second export there is refused.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path
from typing import Any

from kser import __version__, atomic
from kser.config import WINDOW_HOP_SECONDS, to_dict
from kser.errors import KserError, first_line
from kser.export_formats import (
    DEFAULT_FORMATS,
    PORTABLE_FILES,
    SAVED_MODEL,
    artefact_contracts,
    check_formats,
    check_quantize,
    portable,
)
from kser.locks import replaced_folder_lock
from kser.output_dirs import check_writable, make_dir, refuse_foreign_entries
from kser.run_config import RunConfig, read_run_config
from kser.model_dir import INFO_FILE, MODEL_FILE, ModelInfo, load_info, load_model

EXPORT_INFO_FILE = "kser_export.json"
# 2: per-row window starts and counts (trimming makes them differ per row); 3: kser_constants;
# 4: ``formats`` and ``artefacts`` (model.tflite, model.onnx; the SavedModel may be left out)
EXPORT_FORMAT_VERSION = 4
SERVING_SIGNATURE = "serving_default"
WINDOWS_SIGNATURE = "windows"
CONSTANTS_SIGNATURE = "kser_constants"
DEFAULT_WINDOW_HOP_SECONDS = WINDOW_HOP_SECONDS
# Windows scored per model call inside the graph: bounds memory on long recordings (an hour at a
# 1 s hop is 3,600 windows) while a call on a typical clip is still a single batch.
DEFAULT_MAX_WINDOWS_PER_STEP = 32


@dataclasses.dataclass(frozen=True)
class WindowPlan:
    """How a row is cut into clip-long windows (all in samples)."""

    clip_samples: int
    hop_samples: int


def window_plan(info: ModelInfo, window_hop_seconds: float) -> WindowPlan:
    """Checks the hop (0 < hop <= clip, so windows overlap or touch and every sample is scored)."""
    clip = info.audio.clip_samples
    hop = int(round(window_hop_seconds * info.audio.sample_rate))
    if not window_hop_seconds > 0 or hop < 1:
        raise KserError(f"window_hop_seconds must be positive, got {window_hop_seconds}")
    if hop > clip:
        raise KserError(
            f"window_hop_seconds={window_hop_seconds} is longer than a clip ({info.audio.clip_seconds} s): "
            "samples between windows would never be scored"
        )
    return WindowPlan(clip_samples=clip, hop_samples=hop)


def window_starts(num_samples: int, plan: WindowPlan) -> list[int]:
    """Window start offsets (samples) for a row of ``num_samples``: the numpy twin of the graph's.

    One window at 0 when the row fits in a clip (it gets zero-padded); otherwise starts every
    hop while the window stays inside the row, plus a last window ending exactly at the row's end.
    """
    length = max(num_samples, plan.clip_samples)
    count = -(-(length - plan.clip_samples) // plan.hop_samples) + 1
    return [min(i * plan.hop_samples, length - plan.clip_samples) for i in range(count)]


# --------------------------------------------------------------------------- graph pieces (TF ops)


def _tf() -> Any:
    from kser.quiet import tensorflow

    return tensorflow()


def graph_window_starts(num_samples: Any, plan: WindowPlan) -> Any:
    """``window_starts`` in TF ops: int32 [windows] for a dynamic row length."""
    tf = _tf()
    clip, hop = plan.clip_samples, plan.hop_samples
    length = tf.maximum(num_samples, clip)
    count = (length - clip + hop - 1) // hop + 1
    return tf.minimum(tf.range(count) * hop, length - clip)


def speech_bounds(rows: Any, sample_rate: int, top_db: float) -> tuple[Any, Any]:
    """Per-row ``[start, end)`` of what :func:`kser.waveform.trim_silence` keeps, in TF ops (int32 [batch] each).

    The same frames (25 ms, 10 ms hop), threshold (``top_db`` below the loudest frame's RMS) and
    100 ms margins, computed in float64 as numpy does; rows too short for a frame, or silent, are kept whole.
    """
    from kser.waveform import TRIM_FRAME_SECONDS, TRIM_HOP_SECONDS, TRIM_MARGIN_SECONDS

    tf = _tf()
    x = tf.cast(rows, tf.float64)
    batch, length = tf.shape(x)[0], tf.shape(x)[1]
    whole = (tf.zeros([batch], tf.int32), tf.fill([batch], length))
    if top_db <= 0:
        return whole
    frame = max(1, int(round(TRIM_FRAME_SECONDS * sample_rate)))
    hop = max(1, int(round(TRIM_HOP_SECONDS * sample_rate)))
    margin = int(round(TRIM_MARGIN_SECONDS * sample_rate))
    padded = tf.pad(x, [[0, 0], [0, tf.maximum(frame - length, 0)]])  # at least one frame, for the shapes
    frames = tf.signal.frame(padded, frame, hop, axis=-1)  # [batch, count, frame]
    centred = frames - tf.reduce_mean(frames, axis=-1, keepdims=True)
    rms = tf.sqrt(tf.reduce_mean(tf.square(centred), axis=-1))
    peak = tf.reduce_max(rms, axis=-1, keepdims=True)
    loud = rms >= peak * 10.0 ** (-top_db / 20.0)
    count = tf.shape(rms)[1]
    index = tf.range(count)[None, :]
    first = tf.reduce_min(tf.where(loud, index, count), axis=-1)
    last = tf.reduce_max(tf.where(loud, index, -1), axis=-1)
    start = tf.maximum(first * hop - margin, 0)
    end = tf.minimum(last * hop + frame + margin, length)
    keep_whole = (length <= frame) | (peak[:, 0] <= 0)
    return tf.where(keep_whole, whole[0], start), tf.where(keep_whole, whole[1], end)


def score_rows(
    waveform: Any,
    classify: Any,
    plan: WindowPlan,
    num_classes: int,
    sample_rate: int,
    trim_db: float,
    max_windows_per_step: int = DEFAULT_MAX_WINDOWS_PER_STEP,
) -> tuple[Any, Any]:
    """Each row trimmed (when ``trim_db > 0``) and scored on its own: ragged window probabilities
    [batch, (windows), classes] and window starts [batch, (windows)] in samples of the row as sent."""
    tf = _tf()
    rows = tf.convert_to_tensor(waveform, tf.float32)
    starts, ends = speech_bounds(rows, sample_rate, trim_db)

    def one_row(args: tuple[Any, Any, Any]) -> tuple[Any, Any]:
        row, start, end = args
        probabilities, window_starts = score_windows(
            row[None, start:end], classify, plan, num_classes, max_windows_per_step
        )
        return probabilities[0], window_starts + start

    probabilities, window_starts = tf.map_fn(
        one_row,
        (rows, starts, ends),
        fn_output_signature=(
            tf.RaggedTensorSpec(shape=[None, num_classes], dtype=tf.float32, ragged_rank=0),
            tf.RaggedTensorSpec(shape=[None], dtype=tf.int32, ragged_rank=0),
        ),
        parallel_iterations=1,
    )
    return probabilities, window_starts


def pad_to_clip(rows: Any, clip_samples: int) -> Any:
    """Zero-pad rows shorter than one clip at the end, as training's pad_or_trim did."""
    tf = _tf()
    missing = tf.maximum(clip_samples - tf.shape(rows)[1], 0)
    return tf.pad(rows, [[0, 0], [0, missing]])


def score_windows(
    waveform: Any,
    classify: Any,
    plan: WindowPlan,
    num_classes: int,
    max_windows_per_step: int = DEFAULT_MAX_WINDOWS_PER_STEP,
) -> tuple[Any, Any]:
    """Window probabilities [batch, windows, classes] and starts [windows] (int32 samples).

    ``classify`` maps clip-long waveforms [n, clip_samples] to probabilities [n, classes] (the
    waveform classifier, which normalises each window itself).
    Windows are gathered and classified at most ``max_windows_per_step`` at a time, so a long
    recording never materialises all its windows' features at once.
    """
    tf = _tf()
    clip = plan.clip_samples
    rows = tf.convert_to_tensor(waveform, tf.float32)
    starts = graph_window_starts(tf.shape(rows)[1], plan)
    rows = pad_to_clip(rows, clip)
    batch = tf.shape(rows)[0]
    count = tf.shape(starts)[0]
    per_step = tf.minimum(count, max_windows_per_step)
    steps = (count + per_step - 1) // per_step
    # Pad the start list to whole steps by repeating the last window; the extras are cut below.
    padded = tf.concat([starts, tf.fill([steps * per_step - count], starts[-1])], axis=0)
    step_starts = tf.reshape(padded, [steps, per_step])
    offsets = tf.range(clip)

    def one_step(chunk_starts: Any) -> Any:
        windows = tf.gather(rows, chunk_starts[:, None] + offsets[None, :], axis=1)  # [batch, k, clip]
        flat = tf.reshape(windows, [-1, clip])
        probabilities = tf.cast(classify(flat), tf.float32)
        return tf.reshape(probabilities, [batch, -1, num_classes])

    stepped = tf.map_fn(
        one_step,
        step_starts,
        fn_output_signature=tf.TensorSpec([None, None, num_classes], tf.float32),
        parallel_iterations=1,
    )  # [steps, batch, per_step, classes]
    stepped = tf.transpose(stepped, [1, 0, 2, 3])
    probabilities = tf.reshape(stepped, [batch, steps * per_step, num_classes])[:, :count]
    return probabilities, starts


# --------------------------------------------------------------------------- export


def _check_compatible(model: Any, info: ModelInfo) -> None:
    """The waveform classifier must take this info's clips at its sample rate and give one output
    per label: its front end is what every artefact runs, the info only describes it."""
    from kser.audio_frontend import front_end_of

    try:
        front_end = front_end_of(model)
    except ValueError as error:
        raise KserError(f"{MODEL_FILE}: {error}") from None
    if (front_end.sample_rate, front_end.clip_samples) != (info.audio.sample_rate, info.audio.clip_samples):
        raise KserError(
            f"the model takes {front_end.clip_samples} samples at {front_end.sample_rate} Hz, but {INFO_FILE} says "
            f"{info.audio.clip_samples} at {info.audio.sample_rate} Hz; {INFO_FILE} does not match {MODEL_FILE}"
        )
    classes = model.output_shape[-1]
    if classes != len(info.label_names):
        raise KserError(
            f"the model outputs {classes} classes but {INFO_FILE} names {len(info.label_names)} labels"
        )


def export_metadata(
    info: ModelInfo,
    plan: WindowPlan,
    window_hop_seconds: float,
    run: RunConfig | None = None,
    formats: tuple[str, ...] = DEFAULT_FORMATS,
    quantize: str = "none",
) -> dict[str, Any]:
    """``kser_export.json``: what a client must send and what comes back, without loading the graph,
    and how the model was trained (``training``: the run's resolved settings; None if unknown).
    ``artefacts`` lists each file written with its input/output contract; ``signatures`` describes
    the SavedModel's and is present only with it."""
    metadata = {
        "training": None if run is None else {"train": to_dict(run.train), "model_options": dict(run.model_options)},
        "format": "kser-saved-model",
        "format_version": EXPORT_FORMAT_VERSION,
        "kser_version": __version__,
        "arch": info.arch,
        "label_names": list(info.label_names),
        "sample_rate": info.audio.sample_rate,
        "clip_seconds": info.audio.clip_seconds,
        "clip_samples": plan.clip_samples,
        "window_hop_seconds": window_hop_seconds,
        "window_hop_samples": plan.hop_samples,
        "normalize": info.audio.normalize,
        "silence_std": info.audio.silence_std,
        "trim_db": info.audio.trim_db,
        "features": to_dict(info.features),
        "formats": list(formats),
        "artefacts": artefact_contracts(
            formats, plan.clip_samples, len(info.label_names), info.audio.normalize, info.audio.trim_db, quantize
        ),
        "signatures": {
            SERVING_SIGNATURE: {
                "inputs": {"waveform": "float32 [batch, samples]"},
                "outputs": {"probabilities": "float32 [batch, classes]", "label": "string [batch]"},
            },
            WINDOWS_SIGNATURE: {
                "inputs": {"waveform": "float32 [batch, samples]"},
                "outputs": {
                    "probabilities": "float32 [batch, windows, classes] (0 beyond num_windows)",
                    "label": "string [batch, windows] (empty beyond num_windows)",
                    "start_seconds": "float32 [batch, windows] (in the row as sent)",
                    "num_windows": "int32 [batch]",
                },
            },
            CONSTANTS_SIGNATURE: {
                "inputs": {},
                "outputs": {"label_names": "string [classes]", "sample_rate": "int32 []", "clip_samples": "int32 []"},
            },
        },
        "records_manifest_sha256": info.records_manifest_sha256,
    }
    if SAVED_MODEL not in formats:
        del metadata["signatures"]
    return metadata


def _write_saved_model(
    model: Any, info: ModelInfo, path: Path, plan: WindowPlan, max_windows_per_step: int
) -> None:
    """Trace the signatures around ``model`` (a waveform classifier) and write the SavedModel to ``path``."""
    import keras

    if keras.backend.backend() != "tensorflow":
        raise KserError(
            f"SavedModel export needs the TensorFlow Keras backend, not {keras.backend.backend()!r} "
            "(set KERAS_BACKEND=tensorflow)"
        )
    tf = _tf()
    num_classes = len(info.label_names)
    labels = tf.constant(list(info.label_names), dtype=tf.string)
    rate = float(info.audio.sample_rate)

    def classify(clips: Any) -> Any:
        return model(clips, training=False)

    def score(waveform: Any) -> tuple[Any, Any]:
        return score_rows(waveform, classify, plan, num_classes, info.audio.sample_rate, info.audio.trim_db, max_windows_per_step)

    def windows_fn(waveform: Any) -> dict[str, Any]:
        probabilities, starts = score(waveform)
        valid = tf.sequence_mask(probabilities.row_lengths(), dtype=tf.bool)
        window_labels = tf.ragged.map_flat_values(lambda p: tf.gather(labels, tf.argmax(p, axis=-1)), probabilities)
        return {
            "probabilities": probabilities.to_tensor(0.0),
            "label": tf.where(valid, window_labels.to_tensor(""), ""),
            # float64 division: 48000 / 16000 must be exactly 3.0, not 3.0000002
            "start_seconds": tf.cast(tf.cast(starts, tf.float64) / rate, tf.float32).to_tensor(0.0),
            "num_windows": tf.cast(probabilities.row_lengths(), tf.int32),
        }

    def serving_fn(waveform: Any) -> dict[str, Any]:
        window_probabilities, _ = score(waveform)
        probabilities = tf.reduce_mean(window_probabilities, axis=1)
        return {"probabilities": probabilities, "label": tf.gather(labels, tf.argmax(probabilities, axis=-1))}

    def constants_fn() -> dict[str, Any]:
        return {
            "label_names": tf.constant(list(info.label_names), dtype=tf.string),
            "sample_rate": tf.constant(info.audio.sample_rate, tf.int32),
            "clip_samples": tf.constant(plan.clip_samples, tf.int32),
        }

    spec = [tf.TensorSpec(shape=[None, None], dtype=tf.float32, name="waveform")]
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(SERVING_SIGNATURE, serving_fn, input_signature=spec)
    archive.add_endpoint(WINDOWS_SIGNATURE, windows_fn, input_signature=spec)
    archive.add_endpoint(CONSTANTS_SIGNATURE, constants_fn, input_signature=[])
    from kser.quiet import silenced_stderr

    with silenced_stderr():  # TF's "untraced functions" and asset chatter
        archive.write_out(str(path), verbose=False)


def _write_portable(model: Any, folder: Path, formats: tuple[str, ...], quantize: str) -> None:
    """model.tflite / model.onnx (those of ``formats``): the same waveform classifier, one window per row."""
    if not portable(formats):
        return  # spares the Keras import of kser.portable_export
    from kser.portable_export import write_portable

    write_portable(model, folder, formats, quantize)


def _temp_dir_for(export_dir: Path, kind: str) -> Path:
    return export_dir.with_name(f".{export_dir.name}.{os.getpid()}.{kind}{atomic.TEMP_SUFFIX}")


# What a kser export directory holds: the SavedModel's own entries, the fixed-window artefacts
# and kser's metadata file.
_EXPORT_ENTRIES = frozenset(
    {"saved_model.pb", "fingerprint.pb", "variables", "assets", EXPORT_INFO_FILE, *PORTABLE_FILES.values()}
)


def _check_destination(export_dir: Path, overwrite: bool) -> None:
    """Refuse a non-empty target, and with ``overwrite`` anything but an earlier kser export.

    Why: replacing the directory deletes everything in it, so --overwrite may only replace what
    kser wrote (recognised by its metadata file and the SavedModel's own entries).
    """
    if export_dir.exists() or export_dir.is_symlink():
        if not export_dir.is_dir():
            raise KserError(f"{export_dir} exists and is not a directory")
        entries = sorted(path.name for path in export_dir.iterdir())
        if not entries:
            return
        if not overwrite:
            raise KserError(f"{export_dir} is not empty; choose another export_dir or pass --overwrite to replace it")
        refuse_foreign_entries(export_dir, lambda path: path.name in _EXPORT_ENTRIES)
        if EXPORT_INFO_FILE not in entries:
            raise KserError(f"--overwrite replaces only a kser export, and {export_dir} is not one: it has no {EXPORT_INFO_FILE}")


def export_model(
    model: Any,
    info: ModelInfo,
    export_dir: str | Path,
    window_hop_seconds: float = DEFAULT_WINDOW_HOP_SECONDS,
    overwrite: bool = False,
    max_windows_per_step: int = DEFAULT_MAX_WINDOWS_PER_STEP,
    run: RunConfig | None = None,
    formats: tuple[str, ...] = DEFAULT_FORMATS,
    quantize: str = "none",
) -> Path:
    """Write ``model`` (a waveform classifier, kser.model_dir.load_model) in ``formats``
    (a SavedModel, and/or kser.export_formats' fixed-window files).

    Returns the export directory. A non-empty ``export_dir`` is refused unless ``overwrite``;
    the old export is only removed once the new one is complete.
    """
    export_dir = Path(export_dir).absolute()
    check_formats(formats)
    check_quantize(formats, quantize)
    plan = window_plan(info, window_hop_seconds)
    if max_windows_per_step < 1:
        raise KserError(f"max_windows_per_step must be >= 1, got {max_windows_per_step}")
    _check_compatible(model, info)
    _check_destination(export_dir, overwrite)
    make_dir(export_dir.parent, "the folder of --export_dir")

    temp = _temp_dir_for(export_dir, "export")
    old = _temp_dir_for(export_dir, "old")
    # One export into export_dir at a time; its lock file is beside it, as export_dir is replaced whole.
    with replaced_folder_lock(export_dir, "export directory"):
        for leftover in (temp, old):
            shutil.rmtree(leftover, ignore_errors=True)
        try:
            if SAVED_MODEL in formats:
                _write_saved_model(model, info, temp, plan, max_windows_per_step)
            temp.mkdir(exist_ok=True)
            _write_portable(model, temp, formats, quantize)
            atomic.write_json(temp / EXPORT_INFO_FILE, export_metadata(info, plan, window_hop_seconds, run, formats, quantize))
            _check_destination(export_dir, overwrite)  # something may have appeared meanwhile
            if export_dir.exists():
                os.rename(export_dir, old)
            try:
                os.rename(temp, export_dir)
            except OSError:
                if old.exists():
                    os.rename(old, export_dir)
                raise
        finally:
            shutil.rmtree(temp, ignore_errors=True)
            shutil.rmtree(old, ignore_errors=True)
    return export_dir


def export_saved_model(
    model_dir: str | Path,
    export_dir: str | Path,
    window_hop_seconds: float = DEFAULT_WINDOW_HOP_SECONDS,
    overwrite: bool = False,
    formats: tuple[str, ...] = DEFAULT_FORMATS,
    quantize: str = "none",
) -> Path:
    """Export the trained model in ``model_dir`` (see kser.model_dir) to ``export_dir`` in ``formats``
    (model.tflite quantised by ``quantize``, kser.export_formats.QUANTIZATIONS)."""
    model_dir = Path(model_dir)
    export_dir = Path(export_dir)
    check_formats(formats)
    check_quantize(formats, quantize)
    if not model_dir.is_dir():
        raise KserError(f"model directory {model_dir} does not exist")
    model_abs, export_abs = model_dir.resolve(), export_dir.resolve()
    if export_abs == model_abs or export_abs in model_abs.parents:
        raise KserError(f"export_dir {export_dir} would replace the model directory {model_dir}; choose another path")
    info = load_info(model_dir)
    run = read_run_config(model_dir)  # a damaged run configuration fails before the slow model load too
    window_plan(info, window_hop_seconds)  # a bad hop fails before the slow model load
    _check_destination(export_abs, overwrite)
    check_writable(export_abs.parent, "the folder of --export_dir")
    _tf()  # TensorFlow imported quietly before Keras imports it with its native start-up chatter
    try:
        model = load_model(model_dir)
    except KserError:
        raise
    except Exception as error:  # Keras raises a variety of errors for a damaged .keras file
        message = first_line(error)
        raise KserError(f"cannot load {model_dir / MODEL_FILE}: {message}") from None
    return export_model(
        model, info, export_dir, window_hop_seconds=window_hop_seconds, overwrite=overwrite, run=run, formats=formats,
        quantize=quantize,
    )
