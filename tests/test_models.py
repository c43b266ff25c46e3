"""Tests for kser.models: the study's exact parameter counts, shapes, serialisation, training, backends.

Full-size models are only built (fast), never run; everything that runs uses tiny widths and inputs.
"""

from __future__ import annotations

import importlib.util
import json
import textwrap

import keras
import numpy as np
import pytest

from tests.cli_runner import run_under_jax
from kser import models
from kser.config import AugmentConfig, Recipe, TrainConfig
from kser.models import AttentionPooling

# Keras' own weight saving under TF + NumPy 2 warns about __array__(copy=...); not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")

TINY_INPUT = (20, 16, 3)
TINY_ENCODER_INPUT = (20, 16)  # a pretrained encoder's frames x width (models.input_rank 2)

# Tiny widths per architecture, so that forward passes, saving and fitting take milliseconds.
TINY: dict[str, dict] = {
    "gru": dict(conv_filters=(4, 8), proj_units=16, rnn_units=8, num_heads=2, key_dim=4, head_units=8),
    "lstm": dict(conv_filters=(4, 8), rnn_units=8, num_heads=2, key_dim=4, head_units=8),
    "lstm_ft": dict(conv_filters=(4, 8), rnn_units=8, num_heads=2, key_dim=4, head_units=8),
    "attn_pool": dict(conv_filters=(4, 8), rnn_units=8, head_units=8),
    "small": dict(conv_filters=(4, 8, 8), proj_units=8, rnn_units=4),
    "whisper": dict(hidden_units=8),
}

# (total, trainable, non-trainable) from the study's Keras summaries; attn_pool is the lstm trunk with
# MHSA (131,968) replaced by attention pooling (128 + 1).
STUDY_COUNTS = {
    "gru": (4_030_982, 4_030_982, 0),
    "lstm": (2_803_014, 2_802_246, 768),
    "lstm_ft": (1_283_334, 1_282_950, 384),
    "attn_pool": (2_803_014 - 131_968 + 129, 2_802_246 - 131_968 + 129, 768),
}

STUDY_LAYERS = {
    "gru": {"conv1": 5_888, "conv2": 491_776, "proj_dense": 3_146_496, "gru": 344_832, "mhsa": 33_088,
            "layer_norm": 256, "head_dense": 8_256, "predictions": 390},
    "lstm": {"conv1": 5_888, "bn1": 512, "conv2": 491_776, "bn2": 1_024, "lstm": 2_163_200,
             "mhsa": 131_968, "head_dense": 8_256, "predictions": 390},
    "lstm_ft": {"conv1": 2_944, "bn1": 256, "conv2": 123_008, "bn2": 512, "lstm": 1_114_624,
                "mhsa": 33_088, "layer_norm": 256, "head_dense": 8_256, "predictions": 390},
    "attn_pool": {"lstm": 2_163_200, "attention_pooling": 129},
}

_FULL: dict[str, keras.Model] = {}


def full_size(arch: str) -> keras.Model:
    """Default-size model, built once per test session (building is cheap, running is not)."""
    if arch not in _FULL:
        _FULL[arch] = models.build(arch)
    return _FULL[arch]


def _weight_count(weights) -> int:
    return sum(int(np.prod(w.shape)) for w in weights)


def _tiny_input(arch: str) -> tuple[int, ...]:
    return TINY_INPUT if models.input_rank(arch) == 3 else TINY_ENCODER_INPUT


def _tiny(arch: str, num_classes: int = 4, **extra) -> keras.Model:
    return models.build(arch, num_classes=num_classes, input_shape=_tiny_input(arch), **{**TINY.get(arch, {}), **extra})


def _batch(n: int = 2, seed: int = 0, arch: str = "small") -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, *_tiny_input(arch))).astype("float32")


def test_registry_lists_every_architecture():
    assert set(models.available_architectures()) >= {"gru", "lstm", "lstm_ft", "attn_pool", "small"}
    # The Keras-free catalog that `kser train --arch` lists is exactly what the builders register.
    assert models.builtin_architectures() == models.available_architectures()


def test_unknown_architecture_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown architecture 'transformer'") as info:
        models.build("transformer")
    for name in ("gru", "lstm", "lstm_ft", "attn_pool", "small"):
        assert name in str(info.value)


def test_unknown_override_is_rejected():
    with pytest.raises(ValueError, match="num_head"):
        models.build("gru", input_shape=TINY_INPUT, num_head=2)


def test_register_refuses_a_second_builder_under_the_same_name():
    with pytest.raises(ValueError, match="already registered"):
        models.register("gru", Recipe())(lambda num_classes, input_shape: None)


def test_an_architecture_cannot_register_without_a_recipe():
    with pytest.raises(TypeError, match="needs a kser.config.Recipe"):
        models.register("no_recipe", None)
    assert "no_recipe" not in models.available_architectures()


def test_every_architecture_has_its_recipe_and_the_study_ones_are_the_study_s():
    for arch in models.available_architectures():
        assert isinstance(models.recipe(arch), Recipe)
    for arch in ("gru", "lstm", "attn_pool"):
        recipe = models.recipe(arch)
        assert (recipe.learning_rate, recipe.decay_rate, recipe.schedule, recipe.augment) == (1e-4, 0.95, "exponential", False)
        assert (recipe.epochs, recipe.patience, recipe.monitor, recipe.label_smoothing, recipe.mixup_alpha) == (50, 15, "val_loss", 0, 0)
    fine_tuned = models.recipe("lstm_ft")
    assert (fine_tuned.learning_rate, fine_tuned.decay_rate, fine_tuned.augment) == (5e-4, 0.9, True)


def test_train_config_fills_only_its_unset_fields_from_the_recipe():
    config = TrainConfig(arch="lstm_ft", learning_rate=1e-3, augment=False).with_recipe(models.recipe("lstm_ft"))
    assert config.resolved and config.learning_rate == 1e-3 and config.augment is False
    assert config.decay_rate == 0.9 and config.epochs == 50 and config.monitor == "val_loss"
    assert config.augmentation == models.recipe("lstm_ft").augmentation == AugmentConfig()
    with pytest.raises(ValueError, match="label_smoothing"):
        TrainConfig(arch="gru", label_smoothing=1.5).with_recipe(models.recipe("gru"))


def test_a_resolved_train_config_round_trips_through_json():
    import json

    from kser.config import to_dict

    config = TrainConfig(arch="small", augmentation=AugmentConfig(pitch_method="resample")).with_recipe(models.recipe("small"))
    assert TrainConfig.from_dict(json.loads(json.dumps(to_dict(config)))) == config


@pytest.mark.parametrize("arch", sorted(STUDY_COUNTS))
def test_study_parameter_counts_are_exact(arch):
    model = full_size(arch)
    total, trainable, non_trainable = STUDY_COUNTS[arch]
    assert model.count_params() == total
    assert _weight_count(model.trainable_weights) == trainable
    assert _weight_count(model.non_trainable_weights) == non_trainable
    assert model.input_shape == (None, 300, 64, 3)
    assert model.output_shape == (None, 6)
    for layer_name, params in STUDY_LAYERS[arch].items():
        assert model.get_layer(layer_name).count_params() == params, layer_name


def test_study_layer_choices():
    gru = full_size("gru")
    assert gru.get_layer("gru").cell.reset_after
    assert gru.get_layer("seq_dropout").rate == 0.3
    assert gru.get_layer("to_sequence").output.shape[1:] == (75, 4096)
    lstm = full_size("lstm")
    assert lstm.get_layer("to_sequence").output.shape[1:] == (300, 4096)
    layer_names = {layer.name for layer in lstm.layers}
    assert "residual_add" not in layer_names and "layer_norm" not in layer_names
    ft = full_size("lstm_ft")
    assert ft.get_layer("seq_dropout").rate == 0.5 and ft.get_layer("head_dropout").rate == 0.5
    assert len(ft.losses) == 2  # L2 on both convolutions
    assert full_size("gru").get_layer("predictions").activation is keras.activations.softmax


def test_small_costs_under_a_tenth_of_lstm():
    small, lstm = full_size("small"), full_size("lstm")
    assert models.estimate_flops(small) * 10 <= models.estimate_flops(lstm)
    assert small.count_params() < 500_000
    assert small.output_shape == (None, 6)


def test_flop_estimate_of_attention_matches_hand_count():
    query, value = keras.Input((10, 8)), keras.Input((7, 8))
    out = keras.layers.MultiHeadAttention(2, 4)(query, value)
    # projections 8*8*(10 + 7 + 7 + 10) + scores and weighted sum 10*7*2*(4 + 4)
    assert models.estimate_macs(keras.Model([query, value], out)) == 2176 + 1120


@pytest.mark.parametrize("arch", models.available_architectures())
def test_tiny_forward_gives_probabilities(arch):
    model = _tiny(arch, num_classes=4)
    probabilities = keras.ops.convert_to_numpy(model(_batch(3, arch=arch), training=False))
    assert probabilities.shape == (3, 4)
    assert np.all(probabilities >= 0)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, atol=1e-5)


def test_attention_pooling_ignores_masked_steps():
    layer = AttentionPooling()
    x = _batch(2)[:, :, 0, :]  # (2, 20, 3)
    mask = np.zeros((2, 20), dtype=bool)
    mask[:, :12] = True
    masked = keras.ops.convert_to_numpy(layer(x, mask=mask))
    truncated = keras.ops.convert_to_numpy(layer(x[:, :12]))
    np.testing.assert_allclose(masked, truncated, rtol=1e-5, atol=1e-6)


def test_utterance_normalization_centres_and_scales_each_band_over_time():
    x = np.random.default_rng(0).normal(5.0, 3.0, size=(2, 50, 4, 3)).astype("float32")
    out = keras.ops.convert_to_numpy(models.UtteranceNormalization()(x))
    np.testing.assert_allclose(out.mean(axis=1), 0.0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=1), 1.0, atol=1e-3)
    centred = keras.ops.convert_to_numpy(models.UtteranceNormalization(scale=False)(x))
    np.testing.assert_allclose(centred, x - x.mean(axis=1, keepdims=True), atol=1e-5)


def test_small_options_stem_and_utterance_norm_change_only_what_they_say():
    plain = models.build("small")
    assert plain.count_params() == 249_959  # the defaults are unchanged by the options
    stem = models.build("small", stem_filters=16, pool_sizes=((2, 2), (1, 2), (1, 2)), utterance_norm="meanvar")
    assert stem.get_layer("stem").strides == (2, 2) and stem.get_layer("utterance_norm").scale
    assert stem.get_layer("to_sequence").output.shape[1] == 75  # the same 75 steps for the GRU
    assert models.estimate_flops(stem) < 0.5 * models.estimate_flops(plain)
    with pytest.raises(ValueError, match="utterance_norm"):
        models.build("small", utterance_norm="bogus")


@pytest.mark.parametrize(
    "arch, extra",
    [(arch, {}) for arch in models.available_architectures()]
    + [("small", {"stem_filters": 4, "pool_sizes": ((1, 2), (1, 2), (1, 1)), "utterance_norm": "mean"})],
)
def test_save_load_round_trip(arch, extra, tmp_path):
    """Every architecture (MultiHeadAttention and kser's own layers included) survives ``.keras``:
    same outputs, and a JSON-serialisable configuration that reloads unchanged."""
    model = _tiny(arch, **extra)
    x = _batch(2, arch=arch)
    expected = keras.ops.convert_to_numpy(model(x, training=False))
    path = tmp_path / f"{arch}.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    actual = keras.ops.convert_to_numpy(loaded(x, training=False))
    np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-7)
    config = json.dumps(model.get_config(), sort_keys=True)
    assert json.dumps(loaded.get_config(), sort_keys=True) == config
    if arch in ("small", "attn_pool"):
        assert isinstance(loaded.get_layer("attention_pooling"), AttentionPooling)


def test_small_fit_lowers_the_loss():
    keras.utils.set_random_seed(0)
    model = _tiny("small", num_classes=3, block_dropout=0.0, seq_dropout=0.0, head_dropout=0.0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    x = _batch(16, seed=1)
    y = np.random.default_rng(2).integers(0, 3, size=16)
    history = model.fit(x, y, batch_size=16, epochs=8, shuffle=False, verbose=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses))
    assert losses[-1] < losses[0]


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_every_architecture_runs_under_jax(tmp_path):
    script = textwrap.dedent(
        f"""
        import numpy as np, keras
        assert keras.backend.backend() == "jax"
        from kser import models
        tiny = {TINY!r}
        x = np.random.default_rng(0).normal(size=(2, *{TINY_INPUT!r})).astype("float32")
        for arch in models.available_architectures():
            shape = {TINY_INPUT!r} if models.input_rank(arch) == 3 else {TINY_ENCODER_INPUT!r}
            model = models.build(arch, num_classes=4, input_shape=shape, **tiny.get(arch, {{}}))
            p = keras.ops.convert_to_numpy(model(x.reshape(2, *shape) if len(shape) == 3 else x[..., 0], training=False))
            assert p.shape == (2, 4) and np.allclose(p.sum(-1), 1.0, atol=1e-5), arch
        for arch in ("small", "attn_pool"):
            model = models.build(arch, num_classes=4, input_shape={TINY_INPUT!r}, **tiny[arch])
            path = {str(tmp_path)!r} + "/" + arch + ".keras"
            model.save(path)
            loaded = keras.models.load_model(path)
            before = keras.ops.convert_to_numpy(model(x))
            after = keras.ops.convert_to_numpy(loaded(x))
            np.testing.assert_allclose(after, before, rtol=1e-6, atol=1e-7)
        model = models.build("small", num_classes=4, input_shape={TINY_INPUT!r}, **tiny["small"])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(x, np.array([0, 1]), epochs=1, verbose=0)
        print("ok")
        """
    )
    result = run_under_jax(script)
    assert result.stdout.strip().endswith("ok")
