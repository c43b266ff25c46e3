"""SavedModel export and prediction: the exported graph is kser's own preprocessing + model, standalone.

One tiny ``small`` model (random weights, 3 classes) is exported once per module; the SavedModel is
then served in a subprocess that cannot import kser, and by ``kser predict``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile

from kser import models
from kser.audio_frontend import classifier_of, front_end_for, is_waveform_classifier, waveform_classifier
from kser.config import AudioConfig, FeatureConfig
from kser.errors import KserError
from kser.export import (
    EXPORT_INFO_FILE,
    WindowPlan,
    export_model,
    export_saved_model,
    score_windows,
    speech_bounds,
    window_starts,
)
from kser.features import log_mel_deltas
from kser.model_dir import MODEL_FILE, ModelInfo, load_model, save_info
from kser.predict import load_exported, overall_rtf, predict_files, restricted_to
from kser.waveform import normalize, pad_or_trim, trim_silence
from tests.cli_runner import assert_one_line_error, run_kser, start_kser
from tests.fuzz_audio import write_fuzz_corpus

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")

RATE = 16_000
CLIP = 48_000
LABELS = ("calm", "happy", "sad")
TINY_SMALL = dict(conv_filters=(4, 8, 8), proj_units=8, rnn_units=4)


def _signal(seconds: float, seed: int, scale: float = 0.2, offset: float = 0.0) -> np.ndarray:
    """Noise with a slowly varying envelope and a tone, so windows differ from each other."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * RATE))
    t = np.arange(n) / RATE
    envelope = 0.3 + np.abs(np.sin(2 * np.pi * 0.37 * t + seed))
    tone = np.sin(2 * np.pi * (180 + 40 * seed) * t)
    return (offset + scale * envelope * (tone + 0.5 * rng.standard_normal(n))).astype(np.float32)


def tiny_classifier():
    """A features-in ``small`` with non-trivial BatchNorm statistics, so that inference mode matters."""
    model = models.build("small", num_classes=len(LABELS), input_shape=(300, 64, 3), **TINY_SMALL)
    for layer in model.layers:
        if layer.name.startswith(("input_bn", "bn")):
            mean, var = layer.moving_mean, layer.moving_variance
            rng = np.random.default_rng(len(layer.name))
            mean.assign(rng.normal(0, 2, mean.shape).astype("float32"))
            var.assign(rng.uniform(0.5, 20, var.shape).astype("float32"))
    return model


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A model_dir as training leaves it, and the Keras model itself (waveforms in)."""
    info = ModelInfo(arch="small", label_names=LABELS, audio=AudioConfig(), features=FeatureConfig())
    model = waveform_classifier(front_end_for(info.audio, info.features), tiny_classifier())
    model_dir = tmp_path_factory.mktemp("model")
    save_info(model_dir, info)
    model.save(model_dir / MODEL_FILE)
    return model_dir, model, info


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    model_dir, _, _ = trained
    return export_saved_model(model_dir, tmp_path_factory.mktemp("exports") / "emotion")


def _window_probabilities(model, info: ModelInfo, windows: np.ndarray) -> np.ndarray:
    """Clip-long windows normalised one by one in numpy (kser.waveform), featurised, classified by
    the model's classifier: the reference for its front end."""
    normalised = np.stack([normalize(window, info.audio.silence_std)[0] for window in windows])
    return np.asarray(classifier_of(model)(log_mel_deltas(normalised, info.features), training=False))


def _reference(model, info: ModelInfo, rows: np.ndarray, hop_seconds: float = 1.0) -> np.ndarray:
    """kser's own preprocessing in numpy + the Keras classifier in-process, window probabilities averaged."""
    plan = WindowPlan(clip_samples=CLIP, hop_samples=int(hop_seconds * RATE))
    result = []
    for row in rows:
        row = trim_silence(row, RATE, info.audio.trim_db)
        padded = pad_or_trim(row, CLIP) if row.shape[0] < CLIP else row
        windows = np.stack([padded[s : s + CLIP] for s in window_starts(row.shape[0], plan)])
        result.append(_window_probabilities(model, info, windows).mean(axis=0))
    return np.stack(result)


INPUTS = {
    "short": np.stack([_signal(1.2, seed=1, scale=0.01, offset=0.3)]),  # 1.2 s: zero-padded to one window
    "exact": np.stack([_signal(3.0, seed=2, scale=3.0), np.full(CLIP, 0.25, np.float32)]),  # 2nd row silent
    "long": np.stack([_signal(7.3, seed=3), _signal(7.3, seed=4, scale=0.05, offset=-0.1)]),  # 6 windows
}

# Loads the SavedModel with kser made unimportable: the export must stand on TensorFlow alone.
SERVE_SCRIPT = textwrap.dedent(
    """
    import sys

    class NoKser:
        def find_spec(self, name, path=None, target=None):
            if name == "kser" or name.startswith("kser."):
                raise ImportError("kser must not be needed to serve an export")
            return None

    sys.meta_path.insert(0, NoKser())
    import numpy as np
    import tensorflow as tf

    export_dir, inputs_path, outputs_path = sys.argv[1:]
    loaded = tf.saved_model.load(export_dir)
    inputs = np.load(inputs_path)
    outputs = {}
    for name in inputs.files:
        result = loaded.signatures["serving_default"](waveform=tf.constant(inputs[name]))
        outputs[name + ".probabilities"] = result["probabilities"].numpy()
        outputs[name + ".label"] = result["label"].numpy().astype(str)
    windows = loaded.signatures["windows"](waveform=tf.constant(inputs["long"]))
    for key, value in windows.items():
        outputs["windows." + key] = value.numpy().astype(str) if value.dtype == tf.string else value.numpy()
    assert not any(m == "kser" or m.startswith("kser.") for m in sys.modules), "kser was imported"
    np.savez(outputs_path, **outputs)
    """
)


@pytest.fixture(scope="module")
def served(exported, tmp_path_factory):
    """Outputs of both signatures, computed in a fresh process that cannot import kser."""
    work = tmp_path_factory.mktemp("serve")
    np.savez(work / "inputs.npz", **INPUTS)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    result = subprocess.run(
        [sys.executable, "-c", SERVE_SCRIPT, str(exported), str(work / "inputs.npz"), str(work / "outputs.npz")],
        cwd=work, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with np.load(work / "outputs.npz") as outputs:
        return {key: outputs[key] for key in outputs.files}


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_served_probabilities_match_kser_preprocessing_and_keras(name, served, trained):
    _, model, info = trained
    expected = _reference(model, info, INPUTS[name])
    probabilities = served[f"{name}.probabilities"]
    assert probabilities.shape == (INPUTS[name].shape[0], len(LABELS))
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert list(served[f"{name}.label"]) == [LABELS[i] for i in expected.argmax(axis=1)]


def test_windows_signature_starts_and_per_window_probabilities(served, trained):
    _, model, info = trained
    starts = served["windows.start_seconds"]
    np.testing.assert_array_equal(starts, np.float32([[0, 1, 2, 3, 4, 4.3]] * 2))  # last window ends at 7.3 s
    assert list(served["windows.num_windows"]) == [6, 6]
    per_window = served["windows.probabilities"]
    assert per_window.shape == (2, 6, len(LABELS))
    np.testing.assert_allclose(per_window.mean(axis=1), served["long.probabilities"], atol=1e-6)
    assert served["windows.label"].shape == (2, 6)
    assert (served["windows.label"] == np.array(LABELS)[per_window.argmax(axis=-1)]).all()
    # The last window, scored alone from kser's own preprocessing.
    last = _window_probabilities(model, info, INPUTS["long"][0][-CLIP:][None])[0]
    np.testing.assert_allclose(per_window[0, -1], last, atol=1e-5)


def test_window_starts_cover_every_sample():
    plan = WindowPlan(clip_samples=CLIP, hop_samples=RATE)
    assert window_starts(int(1.2 * RATE), plan) == [0]
    assert window_starts(CLIP, plan) == [0]
    assert window_starts(CLIP + 1, plan) == [0, 1]
    assert window_starts(5 * RATE, plan) == [0, RATE, 2 * RATE]  # exact fit: no duplicate last window
    assert window_starts(int(7.3 * RATE), plan) == [0, 16_000, 32_000, 48_000, 64_000, 68_800]


def test_windows_are_classified_in_bounded_steps_with_the_same_result():
    import tensorflow as tf

    plan = WindowPlan(clip_samples=CLIP, hop_samples=RATE // 2)
    rows = np.stack([_signal(9.1, seed=5), _signal(9.1, seed=6, scale=4.0)])

    def classify(clips):  # a transparent "model": three numbers read off each window
        return tf.stack([clips[:, 0], clips[:, 1234], clips[:, -1]], axis=1)

    results = [score_windows(rows, classify, plan, 3, max_windows_per_step=k) for k in (1, 4, 1000)]
    starts = window_starts(rows.shape[1], plan)
    expected = np.stack([[[r[s], r[s + 1234], r[s + CLIP - 1]] for s in starts] for r in rows])
    for probabilities, graph_starts in results:
        assert list(graph_starts.numpy()) == starts
        np.testing.assert_allclose(probabilities.numpy(), expected, atol=1e-6)


def test_a_model_directory_from_before_the_front_end_moved_in_still_scores_and_exports(trained, tmp_path):
    """Its model.keras takes features: load_model wraps it in the front end kser_model.json describes,
    so it gives the waveform model's probabilities and exports; a mismatched info is one line."""
    _, model, info = trained
    old = tmp_path / "old"
    old.mkdir()
    save_info(old, info)
    classifier_of(model).save(old / MODEL_FILE)
    loaded = load_model(old)
    assert is_waveform_classifier(loaded)
    windows = INPUTS["exact"]
    np.testing.assert_allclose(np.asarray(loaded(windows)), np.asarray(model(windows)), atol=1e-6)
    assert (export_saved_model(old, tmp_path / "export") / "saved_model.pb").is_file()
    save_info(old, ModelInfo(arch="small", label_names=LABELS, audio=AudioConfig(clip_seconds=2.0), features=FeatureConfig()))
    with pytest.raises(KserError, match=r"takes inputs of shape \(300, 64, 3\).*give \(201, 64, 3\)"):
        load_model(old)


def test_export_writes_metadata(exported):
    metadata = json.loads((exported / EXPORT_INFO_FILE).read_text())
    assert metadata["label_names"] == list(LABELS)
    assert metadata["sample_rate"] == RATE and metadata["clip_seconds"] == 3.0
    assert metadata["window_hop_seconds"] == 1.0 and metadata["arch"] == "small"
    assert metadata["kser_version"]
    assert not [p for p in exported.parent.iterdir() if p.name.startswith(".")]  # no temporaries left


def test_export_refuses_non_empty_dir_and_is_atomic(trained, tmp_path, monkeypatch):
    model_dir, model, info = trained
    target = tmp_path / "export"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(KserError, match="not empty.*--overwrite"):
        export_saved_model(model_dir, target)
    with pytest.raises(KserError, match="would replace the model directory"):
        export_saved_model(model_dir, model_dir, overwrite=True)
    with pytest.raises(KserError, match="only what kser wrote.*also holds 'keep.txt'"):
        export_saved_model(model_dir, target, overwrite=True)  # a user's file is never deleted
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
    (target / "keep.txt").unlink()
    (target / "saved_model.pb").write_text("not an export of kser's")
    with pytest.raises(KserError, match=f"no {EXPORT_INFO_FILE}"):
        export_model(model, info, target, overwrite=True)
    (target / "saved_model.pb").unlink()

    export_model(model, info, target)  # empty: no --overwrite needed

    # A failure after the SavedModel is written leaves the old directory exactly as it was.
    import kser.export

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(kser.export, "export_metadata", broken)
    before = sorted(p.name for p in target.iterdir())
    with pytest.raises(RuntimeError, match="disk full"):
        export_model(model, info, target, overwrite=True)
    assert sorted(p.name for p in target.iterdir()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]  # no temporary directory left
    monkeypatch.undo()

    export_model(model, info, target, overwrite=True)  # an earlier kser export is replaced
    assert (target / EXPORT_INFO_FILE).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]


def test_load_exported_errors(tmp_path):
    with pytest.raises(KserError, match="does not exist"):
        load_exported(tmp_path / "nope")
    with pytest.raises(KserError, match=f"{EXPORT_INFO_FILE} not found"):
        load_exported(tmp_path)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("label_names", ["calm", "happy"], "label_names names 2 classes, but the SavedModel gives 3 probabilities"),
        ("label_names", ["X", "Y", "Z"], 'label_names is ["X", "Y", "Z"], but the SavedModel was exported with ["calm", "happy", "sad"]'),
        ("sample_rate", 8000, "sample_rate is 8000, but the SavedModel was exported with 16000"),
        ("clip_samples", 16000, "clip_samples is 16000, but the SavedModel was exported with 48000"),
        ("sample_rate", "abc", 'sample_rate must be a positive whole number, got "abc"'),
        ("sample_rate", 0, "sample_rate must be a positive whole number, got 0"),
        ("clip_samples", -48000, "clip_samples must be a positive whole number, got -48000"),
        ("sample_rate", True, "sample_rate must be a positive whole number, got true"),
        ("label_names", "calm,happy,sad", 'label_names must be a list of distinct class names, got "calm,happy,sad"'),
        ("label_names", ["calm", "calm", "sad"], "label_names must be a list of distinct class names"),
    ],
)
def test_an_edited_export_info_is_refused_naming_the_field(exported, tmp_path, field, value, message):
    """kser_export.json is checked against the graph it describes: wrong columns or a wrong
    resampling rate are refused, not predicted."""
    copy = Path(shutil.copytree(exported, tmp_path / "export"))
    metadata = json.loads((copy / EXPORT_INFO_FILE).read_text())
    (copy / EXPORT_INFO_FILE).write_text(json.dumps({**metadata, field: value}))
    with pytest.raises(KserError) as error:
        load_exported(copy, warmup=False)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_kser_predict_with_an_edited_export_info_is_one_line(exported, audio_files, tmp_path):
    copy = Path(shutil.copytree(exported, tmp_path / "export"))
    metadata = json.loads((copy / EXPORT_INFO_FILE).read_text())
    (copy / EXPORT_INFO_FILE).write_text(json.dumps({**metadata, "sample_rate": 8000}))
    result = run_kser("predict", f"--export_dir={copy}", str(audio_files[0]))
    assert_one_line_error(result, "sample_rate is 8000, but the SavedModel was exported with 16000")
    assert result.stdout == ""


def test_an_export_without_the_constants_signature_is_checked_for_its_class_count(exported):
    """Exports of format 2 have no kser_constants: what their graph shows is still checked."""
    from types import SimpleNamespace

    from kser.export import SERVING_SIGNATURE
    from kser.export_info import check_against_graph, graph_constants

    loaded = load_exported(exported, warmup=False)
    assert graph_constants(loaded.module) == {"num_classes": 3, "label_names": list(LABELS), "sample_rate": RATE, "clip_samples": CLIP}
    older = graph_constants(SimpleNamespace(signatures={SERVING_SIGNATURE: loaded.serving}))
    assert older == {"num_classes": 3}
    info = exported / EXPORT_INFO_FILE
    check_against_graph({"label_names": ["a", "b", "c"], "sample_rate": 8000}, older, info)  # cannot tell: loads
    with pytest.raises(KserError, match="label_names names 2 classes, but the SavedModel gives 3"):
        check_against_graph({"label_names": ["a", "b"], "sample_rate": RATE}, older, info)


def test_export_needs_both_model_files(trained, tmp_path):
    _, _, info = trained
    with pytest.raises(KserError, match="kser_model.json not found"):
        export_saved_model(tmp_path, tmp_path / "out")
    save_info(tmp_path, info)
    with pytest.raises(KserError, match=f"{MODEL_FILE} not found"):
        export_saved_model(tmp_path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def audio_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("audio")
    short = folder / "short_16k.wav"
    soundfile.write(short, _signal(1.2, seed=7), RATE, subtype="PCM_16")
    long_44k = folder / "long_44k.wav"
    t = np.arange(int(7.3 * 44_100)) / 44_100
    soundfile.write(long_44k, (0.3 * np.sin(2 * np.pi * 220 * t) * np.sin(2 * np.pi * 0.5 * t)).astype("float32"), 44_100)
    bad = folder / "bad.wav"
    bad.write_bytes(b"RIFF but not really a wave file")
    return short, long_44k, bad


def test_predict_files_reads_resamples_and_reports_bad_files(exported, audio_files):
    short, long_44k, bad = audio_files
    results = predict_files(exported, [short, bad, long_44k], windows=True)
    assert [r.ok for r in results] == [True, False, True]
    assert "not a readable audio file" in results[1].error
    assert results[0].audio_seconds == pytest.approx(1.2) and len(results[0].windows) == 1
    assert results[2].audio_seconds == pytest.approx(7.3) and len(results[2].windows) == 6
    for result in (results[0], results[2]):
        assert result.label == max(result.probabilities, key=result.probabilities.get)
        assert sum(result.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
        assert result.rtf is not None and result.rtf > 0
    assert overall_rtf(results) > 0


def test_kser_predict_cli(exported, audio_files):
    short, long_44k, bad = audio_files
    expected = {r.path: r.label for r in predict_files(exported, [short, long_44k])}

    result = run_kser("predict", f"--export_dir={exported}", "--windows", str(short), str(bad), str(long_44k))
    assert result.returncode == 1, result.stderr  # a file failed: reported, the others still predicted
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and str(bad) in errors[0], result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout), delimiter="\t"))
    file_rows = [row for row in rows if row["window_start"] == ""]
    assert {row["path"]: row["label"] for row in file_rows} == {**expected, str(bad): ""}
    window_rows = [row for row in rows if row["window_start"] != ""]
    assert len(window_rows) == 1 + 6 and window_rows[-1]["window_start"] == "4.30"
    assert "real-time factor:" in result.stderr and "real-time" not in result.stdout

    clean = run_kser("predict", f"--export_dir={exported}", str(short), str(long_44k))
    assert clean.returncode == 0, clean.stderr
    assert len(clean.stdout.splitlines()) == 1 + 2 and clean.stdout.startswith("path\tlabel\t")


def test_predict_can_choose_among_some_labels(exported, audio_files):
    """--labels: the chosen classes' probabilities renormalised, the label the likeliest of them."""
    short, long_44k, _ = audio_files
    loaded = load_exported(exported)
    names = list(loaded.label_names)
    chosen = [names[2], names[0]]  # any order on the command line; the model's order out
    full = {r.path: r for r in predict_files(loaded, [short, long_44k], windows=True)}
    among = predict_files(restricted_to(loaded, chosen), [short, long_44k], windows=True)
    for result in among:
        assert list(result.probabilities) == [names[0], names[2]]
        assert sum(result.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
        assert result.label == max(result.probabilities, key=result.probabilities.get)
        window = full[result.path].windows[0]
        kept = np.asarray([window.probabilities[names.index(name)] for name in result.probabilities])
        np.testing.assert_allclose(result.windows[0].probabilities, kept / kept.sum(), rtol=1e-5)
    result = run_kser("predict", f"--export_dir={exported}", f"--labels={','.join(chosen)}", str(short))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].split("\t")[2:4] == [names[0], names[2]]
    assert_one_line_error(run_kser("predict", f"--export_dir={exported}", f"--labels={names[0]},BORED", str(short)), "BORED", "not among the model's labels")
    with pytest.raises(KserError, match="needs at least two of the model's labels"):
        restricted_to(loaded, [names[1]])  # one label: nothing left to choose between


def test_kser_predict_to_a_reader_that_stops_early_ends_quietly(exported, audio_files):
    """`kser predict ... | head -n 1` with the reader gone before the first row: exit 141, no traceback."""
    process = start_kser("predict", f"--export_dir={exported}", str(audio_files[0]), str(audio_files[1]))
    process.stdout.close()
    stderr = process.stderr.read()
    assert process.wait(timeout=300) == 141, stderr
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr and "error" not in stderr


def test_kser_predict_folders_formats_output_and_warnings(exported, audio_files, tmp_path):
    short, long_44k, bad = audio_files
    folder = tmp_path / "in"
    (folder / "deeper").mkdir(parents=True)
    shutil.copy(short, folder / "deeper" / "short.wav")
    shutil.copy(long_44k, folder / "long.wav")
    (folder / "notes.txt").write_text("not audio")
    soundfile.write(folder / "blip.wav", _signal(0.1, seed=3), RATE)  # too short to mean much
    soundfile.write(folder / "silent.wav", np.zeros(RATE, np.float32), RATE)
    expected_paths = [str(folder / name) for name in ("blip.wav", "deeper/short.wav", "long.wav", "silent.wav")]

    output = tmp_path / "predictions.json"
    result = run_kser("predict", f"--export_dir={exported}", "--format=json", f"--output={output}", str(folder))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    document = json.loads(output.read_text())
    assert [f["path"] for f in document["files"]] == expected_paths  # recursive, sorted, audio only
    assert document["summary"]["predicted"] == 4 and document["summary"]["with_warnings"] == 2
    warned = {f["path"]: f["warnings"] for f in document["files"] if f["warnings"]}
    assert "too short" in warned[expected_paths[0]][0] and "silent" in warned[expected_paths[3]][0]
    assert sum("warning:" in line for line in result.stderr.splitlines()) == 2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left

    lines = run_kser("predict", f"--export_dir={exported}", "--format=jsonl", str(folder), str(tmp_path / "missing"))
    assert lines.returncode == 1
    records = [json.loads(line) for line in lines.stdout.splitlines()]
    assert [r["path"] for r in records] == expected_paths + [str(tmp_path / "missing")]
    assert records[-1]["error"] == "no such file or folder"
    assert [r["label"] for r in records[:4]] == [f["label"] for f in document["files"]]

    empty = tmp_path / "empty"
    empty.mkdir()
    table = run_kser("predict", f"--export_dir={exported}", "--format=csv", str(empty))
    assert table.returncode == 1 and "no audio files" in list(csv.DictReader(io.StringIO(table.stdout)))[0]["error"]


def test_cli_errors_are_one_line(tmp_path):
    assert_one_line_error(
        run_kser("export", f"--model_dir={tmp_path / 'missing'}", f"--export_dir={tmp_path / 'out'}"),
        "missing", "does not exist",
    )
    (tmp_path / "empty_model").mkdir()
    assert_one_line_error(
        run_kser("export", f"--model_dir={tmp_path / 'empty_model'}", f"--export_dir={tmp_path / 'out'}"),
        "kser_model.json not found",
    )
    assert_one_line_error(run_kser("predict", f"--export_dir={tmp_path}", "x.wav"), EXPORT_INFO_FILE)
    assert_one_line_error(run_kser("predict", f"--export_dir={tmp_path}"), "no audio files")
    assert_one_line_error(run_kser("predict", f"--export_dir={tmp_path}", f"--output={tmp_path / 'no' / 'x.tsv'}", "x.wav"), "does not exist")
    if Path("/proc/self").is_dir():  # a folder that takes no files: refused before any file is predicted
        assert_one_line_error(run_kser("predict", f"--export_dir={tmp_path}", "--output=/proc/x.tsv", "x.wav"), "cannot be written")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("how", ["same path", "other spelling", "symbolic link", "hard link", "found in a folder"])
def test_predict_refuses_an_output_that_is_one_of_its_inputs(tmp_path, how):
    """`kser predict --output=victim.wav victim.wav` would replace the audio with the predictions."""
    folder = tmp_path / "audio"
    folder.mkdir()
    victim = folder / "victim.wav"
    soundfile.write(victim, _signal(0.5, seed=1), RATE)
    before = victim.read_bytes()
    output, given = {
        "same path": (victim, victim),
        "other spelling": (folder / ".." / "audio" / "victim.wav", victim),
        "symbolic link": (tmp_path / "link.tsv", victim),
        "hard link": (tmp_path / "hard.tsv", victim),
        "found in a folder": (victim, folder),
    }[how]
    if how == "symbolic link":
        output.symlink_to(victim)
    elif how == "hard link":
        os.link(victim, output)
    result = run_kser("predict", f"--export_dir={tmp_path / 'no-export'}", f"--output={output}", str(given))
    assert_one_line_error(result, f"--output {output} is the input {victim}")
    assert victim.read_bytes() == before


def _in_silence(lead: float, speech: float, total: float, seed: int) -> np.ndarray:
    """``speech`` seconds of signal ``lead`` seconds into a quiet row of ``total`` seconds."""
    row = (1e-4 * np.random.default_rng(seed).standard_normal(int(total * RATE))).astype(np.float32)
    start = int(lead * RATE)
    row[start : start + int(speech * RATE)] += _signal(speech, seed=seed, scale=0.5)
    return row


@pytest.mark.parametrize("top_db", [20.0, 40.0, 60.0])
def test_graph_speech_bounds_equal_trim_silence(top_db):
    rows = np.stack([_in_silence(1.0, 1.5, 4.0, 1), _in_silence(0.0, 4.0, 4.0, 2), _in_silence(2.9, 1.0, 4.0, 3), np.zeros(64_000, np.float32)])
    starts, ends = (t.numpy() for t in speech_bounds(rows, RATE, top_db))
    for row, start, end in zip(rows, starts, ends):
        kept = trim_silence(row, RATE, top_db)
        offset = (kept.__array_interface__["data"][0] - row.__array_interface__["data"][0]) // row.itemsize
        assert (start, end) == (offset, offset + kept.size)
    short = np.stack([_signal(0.02, seed=4)])  # shorter than one 25 ms frame: kept whole
    assert [int(t.numpy()[0]) for t in speech_bounds(short, RATE, top_db)] == [0, short.shape[1]]


def test_a_model_trained_on_trimmed_clips_is_served_trimmed_row_by_row(trained, tmp_path):
    """Rows of one call with speech at different places: each is trimmed as build-records trimmed."""
    import tensorflow as tf

    _, model, info = trained
    trimmed_info = ModelInfo(arch="small", label_names=LABELS, audio=AudioConfig(trim_db=40.0), features=FeatureConfig())
    export_dir = export_model(model, trimmed_info, tmp_path / "trimmed")
    assert json.loads((export_dir / EXPORT_INFO_FILE).read_text())["trim_db"] == 40.0
    loaded = tf.saved_model.load(str(export_dir))
    rows = np.stack([_in_silence(1.0, 1.8, 8.0, 5), _in_silence(0.2, 6.5, 8.0, 6), _in_silence(5.0, 2.0, 8.0, 7)])
    served = loaded.signatures["serving_default"](waveform=tf.constant(rows))
    np.testing.assert_allclose(served["probabilities"].numpy(), _reference(model, trimmed_info, rows), atol=1e-5)
    windows = loaded.signatures["windows"](waveform=tf.constant(rows))
    counts = list(windows["num_windows"].numpy())
    assert counts == [1, 5, 1]  # 2.0 s and 2.2 s of kept audio fit one window; 6.7 s need five
    starts = windows["start_seconds"].numpy()
    assert starts[0, 0] == pytest.approx(0.9, abs=0.03) and starts[2, 0] == pytest.approx(4.9, abs=0.03)
    assert (windows["label"].numpy()[0, 1:] == b"").all() and not windows["probabilities"].numpy()[0, 1:].any()


def test_kser_predict_fuzzed_inputs(exported, tmp_path):
    """The fuzz corpus of tests/fuzz_audio.py through `kser predict`: every file listed once, with a
    label or an error, no traceback, and the library gives the same answers on a second pass."""
    files = write_fuzz_corpus(tmp_path / "fuzz")
    result = run_kser("predict", f"--export_dir={exported}", "--format=jsonl", str(tmp_path / "fuzz"), timeout=600)
    assert result.returncode == 1, result.stderr[-3000:]  # some files cannot be predicted
    assert "Traceback" not in result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(r["path"] for r in records) == sorted(files)
    for record in records:
        assert (record["label"] is None) == bool(record["error"]), record
        if files[record["path"]] is True:
            assert record["label"] in LABELS, record
        elif files[record["path"]] is False:
            assert record["error"], record
    again = predict_files(exported, [r["path"] for r in records])
    assert [p.label for p in again] == [r["label"] for r in records]


def test_export_metadata_says_how_the_model_was_trained(trained):
    from kser.config import TrainConfig, to_dict
    from kser.data import Subset
    from kser.export import export_metadata, window_plan
    from kser.run_config import RunConfig

    _, _, info = trained
    plan = window_plan(info, 1.0)
    assert export_metadata(info, plan, 1.0)["training"] is None  # a model directory without a RunConfig
    run = RunConfig(
        train=TrainConfig(arch="small").with_recipe(models.recipe("small")), features=info.features,
        model_options=TINY_SMALL, records_dir="/r", label_names=LABELS,
        train_on=Subset.of("train"), validate_on=Subset.of("validation"),
    )
    training = export_metadata(info, plan, 1.0, run)["training"]
    assert training == {"train": to_dict(run.train), "model_options": TINY_SMALL}
    json.dumps(training)


# --------------------------------------------------------------------------- --format: LiteRT and ONNX


@pytest.fixture(scope="module")
def all_formats(trained, tmp_path_factory):
    """`kser export --format=saved_model,litert,onnx` of the tiny model, and what the command printed."""
    pytest.importorskip("tf2onnx", reason="kser[deploy]")
    pytest.importorskip("ai_edge_litert", reason="kser[deploy]")
    model_dir, _, _ = trained
    export_dir = tmp_path_factory.mktemp("formats") / "all"
    result = run_kser("export", f"--model_dir={model_dir}", f"--export_dir={export_dir}", "--format=saved_model,litert,onnx")
    assert result.returncode == 0, result.stderr[-3000:]
    return export_dir, result


def test_kser_export_lists_every_artefact_with_its_contract(all_formats):
    export_dir, result = all_formats
    metadata = json.loads((export_dir / EXPORT_INFO_FILE).read_text())
    assert metadata["format_version"] == 4 and metadata["formats"] == ["saved_model", "litert", "onnx"]
    assert "signatures" in metadata and metadata["label_names"] == list(LABELS) and metadata["sample_rate"] == RATE
    contracts = {a["format"]: a for a in metadata["artefacts"]}
    assert {f: a["file"] for f, a in contracts.items()} == {"saved_model": "saved_model.pb", "litert": "model.tflite", "onnx": "model.onnx"}
    assert contracts["litert"]["input"] == {"name": "waveform", "shape": [1, CLIP], "dtype": "float32"}
    assert contracts["litert"]["output"] == {"name": "probabilities", "shape": [1, 3], "dtype": "float32"}
    assert contracts["onnx"]["input"]["shape"] == [None, CLIP] and contracts["onnx"]["output"]["shape"] == [None, 3]
    assert contracts["saved_model"]["trim"] is False and not contracts["onnx"]["trim"]
    for contract in metadata["artefacts"]:
        assert (export_dir / contract["file"]).is_file()
    assert "warning" not in result.stderr  # trained untrimmed: nothing to warn about
    for name in ("model.tflite", "model.onnx", "saved_model.pb"):
        assert name in result.stdout
    # The names in the contract are the files' own.
    import onnxruntime
    from ai_edge_litert.interpreter import Interpreter

    session = onnxruntime.InferenceSession(str(export_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [(t.name, t.shape[1:]) for t in session.get_inputs()] == [("waveform", [CLIP])]
    assert [(t.name, t.shape[1:]) for t in session.get_outputs()] == [("probabilities", [3])]
    assert Interpreter(model_path=str(export_dir / "model.tflite")).get_signature_list() == {
        "serving_default": {"inputs": ["waveform"], "outputs": ["probabilities"]}
    }


@pytest.mark.parametrize("kind", ["litert", "onnx"])
def test_portable_artefacts_match_the_saved_model_without_tensorflow(kind, all_formats, trained, tmp_path):
    """20 clip-long rows (speech-like at levels from 0.01 to 100, with offsets, and constant =
    silent after normalisation): the fixed-window file, run where TensorFlow and kser cannot be
    imported, gives serving_default's probabilities, which are the Keras model's."""
    import tensorflow as tf

    from tests.portable_runner import run_isolated

    export_dir, _ = all_formats
    varied = [_signal(3.0, seed=seed, scale=10.0 ** (seed % 5 - 2), offset=0.1 * (seed % 3)) for seed in range(10, 27)]
    rows = np.concatenate([INPUTS["exact"], np.stack([_signal(3.0, seed=8, scale=0.01, offset=0.3), *varied])])
    assert rows.shape == (20, CLIP)
    expected = tf.saved_model.load(str(export_dir)).signatures["serving_default"](waveform=tf.constant(rows))
    expected = expected["probabilities"].numpy()
    probabilities, ops = run_isolated(kind, export_dir / f"model.{'tflite' if kind == 'litert' else 'onnx'}", rows, tmp_path)
    np.testing.assert_allclose(probabilities, expected, rtol=0, atol=1e-4)
    _, model, _ = trained
    np.testing.assert_allclose(np.asarray(model(rows)), expected, rtol=0, atol=1e-4)
    assert np.ptp(expected, axis=0).max() > 1e-3  # the rows are told apart: matching them means something
    assert not [op for op in ops if op.startswith("CUSTOM")], ops  # no Flex or custom ops in the LiteRT file


def test_every_runtime_predicts_the_same_as_the_keras_model(all_formats, audio_files, trained, tmp_path):
    """`kser predict --runtime=tf|litert|onnx`: the same windows, probabilities (to 1e-4) and output
    format for a short file, a long resampled one and a file with speech inside silence; the
    Keras model on kser's numpy preprocessing is the reference."""
    from kser.audio import read_audio

    export_dir, _ = all_formats
    _, model, info = trained
    short, long_44k, _ = audio_files
    inside = tmp_path / "inside_silence.wav"
    soundfile.write(inside, _in_silence(1.0, 3.5, 6.0, 9), RATE, subtype="FLOAT")
    files = [short, long_44k, inside]
    by_runtime = {runtime: predict_files(export_dir, files, windows=True, runtime=runtime) for runtime in ("tf", "litert", "onnx")}
    for path, *predictions in zip(files, *by_runtime.values()):
        samples, _ = read_audio(str(path), RATE)
        expected = _reference(model, info, samples[None])[0]
        for prediction in predictions:
            assert prediction.ok, prediction.error
            np.testing.assert_allclose(list(prediction.probabilities.values()), expected, rtol=0, atol=1e-4)
            assert [w.start_seconds for w in prediction.windows] == pytest.approx([w.start_seconds for w in predictions[0].windows], abs=1e-6)
    assert len(by_runtime["onnx"][1].windows) == 6  # 7.3 s: windows at 0, 1, 2, 3, 4 and 4.3 s
    outputs = {
        runtime: run_kser("predict", f"--export_dir={export_dir}", f"--runtime={runtime}", "--format=csv", str(short))
        for runtime in ("litert", "onnx")
    }
    for result in outputs.values():
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
    header = {runtime: result.stdout.splitlines()[0] for runtime, result in outputs.items()}
    assert header["litert"] == header["onnx"] and "label" in header["onnx"]


def test_a_float16_litert_is_half_the_size_with_the_same_answers(all_formats, trained, tmp_path):
    """--quantize=float16: weights stored as float16, probabilities within float16 rounding; a
    scheme without model.tflite to apply to, or int8 (which breaks the front end), is refused."""
    model_dir, _, _ = trained
    export_dir, _ = all_formats
    half = export_saved_model(model_dir, tmp_path / "half", formats=("litert",), quantize="float16")
    assert (half / "model.tflite").stat().st_size < 0.7 * (export_dir / "model.tflite").stat().st_size
    assert json.loads((half / EXPORT_INFO_FILE).read_text())["artefacts"][0]["quantization"] == "float16"
    clip = INPUTS["exact"][:1]
    full, halved = (load_exported(d, warmup=False, runtime="litert").score(clip[0])[0] for d in (export_dir, half))
    np.testing.assert_allclose(halved, full, atol=2e-2)
    with pytest.raises(KserError, match="applies to model.tflite: add litert to --format"):
        export_saved_model(model_dir, tmp_path / "no", formats=("onnx",), quantize="float16")
    with pytest.raises(KserError, match="unknown scheme 'int8'.*breaks the front end"):
        export_saved_model(model_dir, tmp_path / "no", formats=("litert",), quantize="int8")


def test_a_missing_or_damaged_portable_file_or_runtime_is_one_line(all_formats, audio_files, tmp_path, monkeypatch):
    """`kser predict --runtime=litert|onnx` on an export whose file is gone or damaged, or without
    the runtime installed: one error line naming the file or the extra, no traceback."""
    import importlib.util

    from kser.portable_runtime import open_portable

    export_dir, _ = all_formats
    copy = Path(shutil.copytree(export_dir, tmp_path / "export"))
    (copy / "model.onnx").unlink()
    (copy / "model.tflite").write_bytes(b"not a flatbuffer")
    missing = run_kser("predict", f"--export_dir={copy}", "--runtime=onnx", str(audio_files[0]))
    assert_one_line_error(missing, "is incomplete (model.onnx not found); run kser export again")
    damaged = run_kser("predict", f"--export_dir={copy}", "--runtime=litert", str(audio_files[0]))
    assert_one_line_error(damaged, f"cannot load {copy / 'model.tflite'}")
    metadata = json.loads((export_dir / EXPORT_INFO_FILE).read_text())
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real_find_spec(name, *a))
    with pytest.raises(KserError, match=r"^--runtime=onnx needs onnxruntime: pip install 'kser\[onnx\]'$"):
        open_portable(export_dir, metadata, "onnx")


def test_an_unknown_format_is_one_line_before_anything_is_written(trained, tmp_path):
    model_dir, _, _ = trained
    result = run_kser("export", f"--model_dir={model_dir}", f"--export_dir={tmp_path / 'out'}", "--format=onnx,bogus")
    assert_one_line_error(result, "--format: unknown export format bogus; valid: saved_model, litert, onnx")
    assert list(tmp_path.iterdir()) == []


def test_an_onnx_only_export_of_a_trimmed_model_says_so_and_predict_refuses_it(trained, audio_files, tmp_path):
    """Without saved_model only what was asked is written; for a model trained on trimmed clips one
    warning line and a note say the caller trims; `kser predict --runtime=tf` refuses the export in
    one line, and without --runtime predicts with model.onnx; --overwrite replaces it as an earlier kser export."""
    pytest.importorskip("tf2onnx", reason="kser[deploy]")
    from kser.export_formats import trim_warning

    model_dir, model, _ = trained
    trimmed = ModelInfo(arch="small", label_names=LABELS, audio=AudioConfig(trim_db=40.0), features=FeatureConfig())
    trimmed_dir = Path(shutil.copytree(model_dir, tmp_path / "model"))
    save_info(trimmed_dir, trimmed)
    export_dir = tmp_path / "onnx"
    result = run_kser("export", f"--model_dir={trimmed_dir}", f"--export_dir={export_dir}", "--format=onnx")
    assert result.returncode == 0, result.stderr[-3000:]
    warnings = [line for line in result.stderr.splitlines() if "warning:" in line]
    assert len(warnings) == 1 and "--trim_db=40" in warnings[0] and "model.onnx cannot trim" in warnings[0], result.stderr
    assert sorted(p.name for p in export_dir.iterdir()) == [EXPORT_INFO_FILE, "model.onnx"]
    metadata = json.loads((export_dir / EXPORT_INFO_FILE).read_text())
    assert "signatures" not in metadata and [a["format"] for a in metadata["artefacts"]] == ["onnx"]
    (contract,) = metadata["artefacts"]
    assert contract["trim"] is False and "--trim_db=40" in contract["note"]
    assert trim_warning(("saved_model",), 40.0) is None and trim_warning(("onnx",), 0.0) is None
    refused = run_kser("predict", f"--export_dir={export_dir}", "--runtime=tf", str(audio_files[0]))
    assert_one_line_error(refused, "holds only onnx, without the saved_model artefact --runtime=tf runs", "--format=saved_model")
    untrimmed = predict_files(export_dir, [audio_files[0]])  # the default runtime is then onnx; the host trims
    assert untrimmed[0].ok and load_exported(export_dir, warmup=False).runtime == "onnx"
    export_model(model, trimmed, export_dir, formats=("onnx",), overwrite=True)


def test_exports_of_older_format_versions_still_load(exported, tmp_path):
    copy = Path(shutil.copytree(exported, tmp_path / "export"))
    metadata = json.loads((copy / EXPORT_INFO_FILE).read_text())
    older = {k: v for k, v in metadata.items() if k not in ("formats", "artefacts")}
    (copy / EXPORT_INFO_FILE).write_text(json.dumps({**older, "format_version": 3}))
    assert load_exported(copy, warmup=False).label_names == LABELS


def test_a_portable_format_without_its_converter_is_refused_naming_the_extra(monkeypatch):
    import importlib.util

    from kser import export_formats

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        export_formats.importlib.util, "find_spec", lambda name, *args: None if name == "tf2onnx" else real_find_spec(name, *args)
    )
    with pytest.raises(KserError, match=r"^--format=onnx needs tf2onnx: pip install 'kser\[deploy\]'$"):
        export_formats.check_formats(("saved_model", "onnx"))
    export_formats.check_formats(("saved_model", "litert"))  # its converter is TensorFlow, installed
