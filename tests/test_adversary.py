"""kser.adversary: the speaker-adversarial head, its gradient reversal, loss, targets and training."""

from __future__ import annotations

import dataclasses
import json

import keras
import numpy as np
import pytest

from kser import models
from kser.models import recipe
from kser.adversary import SPEAKER_HEAD_NAME, EmotionSpeakerLoss, GradientReversal, with_speaker_adversary
from kser.audio_frontend import classifier_of
from kser.config import TrainConfig
from kser.data import make_dataset, speakers_of
from kser.pydataset import RecordsDataset, read_clips
from kser.records_info import read_records_info
from kser.training import compile_for_training
from tests.cli_runner import assert_one_line_error, run_kser
from tests.test_data import records  # noqa: F401  (the module-scoped fixture)
from tests.test_models import TINY, TINY_INPUT

tf = pytest.importorskip("tensorflow")
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


def test_gradient_reversal_is_the_identity_forward_and_minus_scale_backward():
    x = tf.constant(np.random.default_rng(0).standard_normal((3, 5)), tf.float32)
    layer = GradientReversal(0.3)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
        total = tf.reduce_sum(y * tf.range(5, dtype=tf.float32))
    np.testing.assert_array_equal(y.numpy(), x.numpy())
    np.testing.assert_allclose(tape.gradient(total, x).numpy(), -0.3 * np.broadcast_to(np.arange(5.0), (3, 5)), rtol=1e-6)
    assert GradientReversal.from_config(layer.get_config()).scale == 0.3
    with pytest.raises(ValueError, match="at least 0"):
        GradientReversal(-1.0)


def test_the_loss_adds_the_speaker_cross_entropy_and_skips_unknown_speakers():
    emotions = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], np.float32)
    speakers = np.array([[0.25, 0.75], [0.5, 0.5]], np.float32)
    y_pred = np.concatenate([emotions, speakers], axis=1)
    y_true = np.array([[1, 0, 0, 0, 1], [0, 0, 1, 0, 0]], np.float32)  # the second clip's speaker is unknown
    loss = EmotionSpeakerLoss(3, label_smoothing=0.1, reduction=None)
    plain = keras.losses.CategoricalCrossentropy(label_smoothing=0.1, reduction=None)(y_true[:, :3], emotions)
    expected = keras.ops.convert_to_numpy(plain) + np.array([-np.log(0.75), 0.0])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loss(y_true, y_pred)), expected, rtol=1e-5)


def _core() -> keras.Model:
    keras.utils.set_random_seed(0)
    return models.build("small", num_classes=3, input_shape=TINY_INPUT, **TINY["small"])


def test_the_encoder_gets_the_emotion_gradient_minus_scale_times_the_speaker_gradient():
    """The reversal acts where it must: on the weights under the embedding, the speaker loss's
    gradient arrives negated and scaled; the emotion loss's is untouched."""
    core = _core()
    x = tf.constant(np.random.default_rng(1).standard_normal((4, *TINY_INPUT)), tf.float32)
    y = tf.constant(np.eye(5, dtype=np.float32)[[0, 1, 2, 0]] + np.eye(5, dtype=np.float32)[[3, 4, 3, 4]])
    conv = core.get_layer("conv1").kernel

    def conv_gradient(model: keras.Model, loss: keras.losses.Loss) -> np.ndarray:
        with tf.GradientTape() as tape:
            value = tf.reduce_mean(loss(y, model(x, training=False)))
        return tape.gradient(value, conv).numpy()

    gradients = {}
    for scale in (0.0, 1.0, 2.0):
        model = with_speaker_adversary(core, 2, scale)
        model.get_layer(SPEAKER_HEAD_NAME).set_weights([np.linspace(-1, 1, w.size).reshape(w.shape) for w in model.get_layer(SPEAKER_HEAD_NAME).get_weights()])
        gradients[scale] = conv_gradient(model, EmotionSpeakerLoss(3))
    emotion_only = conv_gradient(core, lambda t, p: keras.losses.categorical_crossentropy(t[:, :3], p))
    np.testing.assert_allclose(gradients[0.0], emotion_only, atol=1e-6)
    speaker_part = gradients[1.0] - gradients[0.0]
    assert np.abs(speaker_part).max() > 1e-4
    np.testing.assert_allclose(gradients[2.0] - gradients[0.0], 2 * speaker_part, atol=1e-5)

    # Without the reversal (the head on the embedding directly), the speaker gradient has the other sign.
    head = model.get_layer(SPEAKER_HEAD_NAME)
    embedding = keras.Model(core.inputs, core.get_layer("predictions").input)
    with tf.GradientTape() as tape:
        probabilities = head(embedding(x, training=False))
        value = tf.reduce_mean(-tf.reduce_sum(y[:, 3:] * tf.math.log(probabilities), axis=-1))
    np.testing.assert_allclose(speaker_part, -tape.gradient(value, conv).numpy(), atol=1e-5)


def test_the_adversary_shares_the_classifier_and_needs_its_output_layer():
    core = _core()
    model = with_speaker_adversary(core, 4, 0.5)
    assert model.output_shape == (None, 7)
    core_weights = {id(w) for w in core.weights}
    assert core_weights < {id(w) for w in model.weights}
    inputs = keras.Input(TINY_INPUT)
    other = keras.Model(inputs, keras.layers.Softmax()(keras.layers.Dense(3)(keras.layers.Flatten()(inputs))))
    with pytest.raises(ValueError, match="ends in a Dense layer; .* ends in Softmax"):
        with_speaker_adversary(other, 4, 0.5)
    whisper_head = models.build("whisper", num_classes=3, input_shape=(20, 16), **TINY["whisper"])
    assert with_speaker_adversary(whisper_head, 4, 0.5).output_shape == (None, 7)  # its output layer is "probabilities"
    with pytest.raises(ValueError, match="at least 2 training speakers"):
        with_speaker_adversary(core, 1, 0.5)


def test_compiling_says_when_the_model_and_the_adversary_setting_disagree():
    config = TrainConfig(arch="small").with_recipe(recipe("small"))
    core = _core()
    compile_for_training(with_speaker_adversary(core, 4, 0.5), dataclasses.replace(config, speaker_adversary=0.5), 1, num_classes=3)
    with pytest.raises(ValueError, match="lacks the speaker head that --speaker_adversary=0.5 implies"):
        compile_for_training(core, dataclasses.replace(config, speaker_adversary=0.5), 1, num_classes=3)
    with pytest.raises(ValueError, match="has the speaker head"):
        compile_for_training(with_speaker_adversary(core, 4, 0.5), config, 1, num_classes=3)


@pytest.mark.parametrize("output", ["waveforms", "features"])
def test_both_pipelines_append_the_speaker_one_hot(records, output):  # noqa: F811
    info = read_records_info(records)
    present = speakers_of(info, "train")
    assert len(present) >= 4 and present == tuple(sorted(present))
    chosen = present[1:3]  # the head knows two speakers: the others' clips get zeros
    options = dict(batch_size=5, output=output, speakers=chosen, training=False)
    n = len(info.label_names)
    for split in ("train", "validation"):
        ours = list(RecordsDataset(records, split, **options))
        theirs = list(make_dataset(records, split, **options).as_numpy_iterator())
        for (_, y), (_, ty) in zip(ours, theirs):
            np.testing.assert_array_equal(y, ty)
        targets = np.concatenate([y for _, y in ours])
        speakers = read_clips(records, split).speakers
        expected = np.array([[speaker == name for name in chosen] for speaker in speakers], np.float32)
        assert targets.shape == (len(speakers), n + 2) and (targets[:, :n].sum(axis=1) == 1).all()
        np.testing.assert_array_equal(targets[:, n:], expected)
        assert expected.any() and not expected.all()


def test_kser_train_with_a_speaker_adversary_saves_the_plain_classifier(records, tmp_path):  # noqa: F811
    model_dir = tmp_path / "model"
    options = json.dumps(TINY["small"])
    trained = run_kser(
        "train", "--arch=small", f"--records_dir={records}", f"--model_dir={model_dir}", "--epochs=1", "--batch_size=8",
        "--speaker_adversary=0.5", f"--model_options={options}", timeout=600,
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    model = keras.saving.load_model(model_dir / "model.keras")
    assert model.output_shape[-1] == len(read_records_info(records).label_names)
    assert not [layer for layer in classifier_of(model).layers if layer.name == SPEAKER_HEAD_NAME]
    header = (model_dir / "history.csv").read_text().splitlines()[0].split(",")
    assert {"accuracy", "uar", "loss", "val_uar", "val_accuracy"} <= set(header)
    run = json.loads((model_dir / "train_config.json").read_text())
    assert run["train"]["speaker_adversary"] == 0.5
    refused = run_kser("train", f"--records_dir={records}", f"--model_dir={tmp_path / 'bad'}", "--speaker_adversary=-1")
    assert_one_line_error(refused, "--speaker_adversary must be at least 0")
