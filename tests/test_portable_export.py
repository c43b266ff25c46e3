"""kser.portable_export: the waveform model converts to LiteRT and ONNX and runs without TensorFlow.

A tiny ``small`` waveform classifier (its AudioFrontEnd swapped to the portable DFT) is exported with Keras's own
``model.export``; each artefact then runs in a fresh Python that imports only ``ai_edge_litert``
or ``onnxruntime`` (tests/portable_runner.py), as on a device or server, and must give the Keras
model's probabilities.
"""

from __future__ import annotations


import numpy as np
import pytest

keras = pytest.importorskip("keras")
for _runtime in ("ai_edge_litert", "onnxruntime", "onnx", "tf2onnx"):
    pytest.importorskip(_runtime, reason=f"{_runtime} is in requirements/deploy.txt (kser[deploy])")
if keras.backend.backend() != "tensorflow":
    pytest.skip("LiteRT and ONNX export go through the TensorFlow backend", allow_module_level=True)

from kser import models  # noqa: E402
from kser.audio_frontend import AudioFrontEnd, WaveformNormalization, waveform_classifier  # noqa: E402
from kser.config import FeatureConfig  # noqa: E402
from kser.portable_export import export_litert, export_onnx, portable_model  # noqa: E402
from kser.speaker_norm import BandMoments, normalize_features, with_speaker_normalization  # noqa: E402
from kser.waveform import normalize  # noqa: E402
from tests.portable_runner import run_isolated  # noqa: E402
from tests.test_features import speech_like  # noqa: E402
from tests.test_models import TINY  # noqa: E402

# Keras's numpy-2 patch of tf2onnx probes np.object, which numpy 2 warns about.
pytestmark = pytest.mark.filterwarnings("ignore:In the future `np.object`:FutureWarning")

CLIP = 48_000
BATCH = 8
SILENCE_STD = 1e-6
TOLERANCE = 1e-4
HEAD_GAIN = 30.0


def waveforms() -> np.ndarray:
    """Rows unlike each other: speech, noise at several levels and offsets, and digital silence."""
    rng = np.random.default_rng(0)
    rows = rng.standard_normal((BATCH, CLIP)) * rng.uniform(0.01, 2.0, (BATCH, 1)) + rng.uniform(-0.5, 0.5, (BATCH, 1))
    rows[0] = speech_like(CLIP)
    rows[1] = 0.0
    return rows.astype(np.float32)


def tiny_classifier(inputs: np.ndarray, prosody: bool = False, speaker_norm: bool = False) -> keras.Model:
    """Tiny ``small`` on waveforms whose probabilities differ between rows, so that matching them means something.

    Its input BatchNormalization gets the features' statistics (rather than saturating on raw dB
    levels) and its output layer sharper weights (rather than giving near-uniform probabilities).
    ``speaker_norm``: kser.speaker_norm's layer before it, holding these rows' band statistics.
    """
    front_end = AudioFrontEnd(16_000, CLIP, SILENCE_STD, features=FeatureConfig(prosody=prosody), name="front_end")
    features = keras.ops.convert_to_numpy(front_end(inputs))
    statistics = None
    if speaker_norm:
        moments = BandMoments()
        moments.add(features, ["rows"] * len(features))
        statistics = moments.statistics(min_clips=1)
        features = keras.ops.convert_to_numpy(normalize_features(features, statistics.mean, statistics.sd))
    keras.utils.set_random_seed(0)
    classifier = models.build("small", num_classes=4, input_shape=features.shape[1:], **TINY["small"])
    flat = features.reshape(-1, features.shape[2] * features.shape[3])
    batch_norm = classifier.get_layer("input_bn")
    batch_norm.moving_mean.assign(flat.mean(axis=0))
    batch_norm.moving_variance.assign(flat.var(axis=0))
    head = classifier.get_layer("predictions")
    head.kernel.assign(head.kernel * HEAD_GAIN)
    if statistics is not None:
        classifier = with_speaker_normalization(classifier, statistics)
    return waveform_classifier(front_end, classifier)


@pytest.fixture(scope="module", params=[(False, False), (True, False), (False, True)], ids=["log_mel", "with_prosody", "with_speaker_norm"])
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The export of the reference front end, of one with kser.prosody's channels, and of one with
    kser.speaker_norm's layer (the training clips' statistics, as exported)."""
    folder = tmp_path_factory.mktemp("portable")
    inputs = waveforms()
    np.save(folder / "inputs.npy", inputs)
    prosody, speaker_norm = request.param
    model = tiny_classifier(inputs, prosody=prosody, speaker_norm=speaker_norm)
    litert_model = portable_model(model, batch_size=BATCH)  # LiteRT needs a static batch
    onnx_model = portable_model(model)
    return {
        "folder": folder,
        "expected": keras.ops.convert_to_numpy(model(inputs)),
        "portable_dft": keras.ops.convert_to_numpy(onnx_model(inputs)),
        "static_batch": keras.ops.convert_to_numpy(litert_model(inputs)),
        "litert": export_litert(litert_model, folder / "model.tflite"),
        "onnx": export_onnx(onnx_model, folder / "model.onnx"),
    }


def run_without_tensorflow(kind: str, exported: dict) -> tuple[np.ndarray, list[str]]:
    """(probabilities, LiteRT op names) from tests/portable_runner.py in an isolated Python."""
    folder = exported["folder"]
    return run_isolated(kind, exported[kind], np.load(folder / "inputs.npy"), folder)


def test_keras_reference_is_informative(exported: dict) -> None:
    """The comparison means something: proper probabilities that differ from row to row."""
    expected = exported["expected"]
    assert expected.shape == (BATCH, 4)
    np.testing.assert_allclose(expected.sum(axis=1), 1.0, atol=1e-5)
    assert np.ptp(expected[2:], axis=0).max() > 0.05  # among the noise rows alone
    np.testing.assert_allclose(exported["static_batch"], exported["portable_dft"], atol=1e-6)
    np.testing.assert_allclose(exported["portable_dft"], expected, atol=TOLERANCE)  # matmul DFT = rfft


@pytest.fixture(scope="module")
def runs(exported: dict) -> dict:
    return {kind: run_without_tensorflow(kind, exported) for kind in ("litert", "onnx")}


@pytest.mark.parametrize("kind", ["litert", "onnx"])
def test_runs_without_tensorflow_with_the_keras_probabilities(kind: str, runs: dict, exported: dict) -> None:
    probabilities, _ = runs[kind]
    np.testing.assert_allclose(probabilities, exported["expected"], rtol=0, atol=TOLERANCE)


def test_litert_has_only_builtin_ops(runs: dict) -> None:
    """No Flex (TensorFlow) or custom ops: the converter was allowed builtins only, and says so."""
    _, ops = runs["litert"]
    assert "WHILE" in ops and "LOGISTIC" in ops  # the GRU's loop body is listed too
    assert not [op for op in ops if op.startswith("CUSTOM") or "FLEX" in op.upper()], ops


def test_onnx_has_only_standard_ops(exported: dict) -> None:
    import onnx

    graph = onnx.load(str(exported["onnx"])).graph
    domains = {node.domain for node in graph.node}
    assert domains <= {"", "ai.onnx"}, domains
    assert not {node.op_type for node in graph.node} & {"RFFT", "DFT", "STFT"}


def test_normalization_matches_the_records(exported: dict) -> None:
    """The float32 in-graph normalisation is kser.waveform.normalize (float64) to ~1e-6."""
    inputs = np.load(exported["folder"] / "inputs.npy")
    got = keras.ops.convert_to_numpy(WaveformNormalization(SILENCE_STD)(inputs))
    for row, y in zip(got, inputs):
        np.testing.assert_allclose(row, normalize(y, SILENCE_STD)[0], rtol=0, atol=1e-5)
    assert not got[1].any()  # the silent row
