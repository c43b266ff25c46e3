"""Every `kser` flag's default is the library's: the CLI restates no constant (issue: one way through)."""

import json
import subprocess
import sys

import pytest

from kser.config import (
    DEFAULT_PREPROCESSING,
    EVAL_BATCH_SIZE,
    EVAL_SPLIT,
    WINDOW_HOP_SECONDS,
    BuildConfig,
    CrossValidationConfig,
    DistributionConfig,
    FeatureConfig,
    RecordsConfig,
    SplitConfig,
    TrainConfig,
)
from kser.demo_data import DEMO_ACTORS, DEMO_SAMPLE_RATE, DEMO_SEED, DEMO_SENTENCES
from tests.cli_runner import REPO, kser_env

_BUILD, _TRAIN, _CV = BuildConfig(data_dir="", output_dir=""), TrainConfig(), CrossValidationConfig()

# Flag module -> {flag: the library's default}. A flag left out here is required or has no
# library counterpart (such as --overwrite, False everywhere).
EXPECTED = {
    "kser_cli.build_records": {
        "layout": _BUILD.layout, "seed": _BUILD.seed, "decoder": _BUILD.decoder, "workers": _BUILD.workers,
        "strict": _BUILD.strict, "preprocessing": DEFAULT_PREPROCESSING, "split": SplitConfig().strategy,
        "split_fractions": [str(f) for f in SplitConfig().fractions], "shard_size_mb": RecordsConfig().shard_size_mb,
        "waveform_encoding": RecordsConfig().waveform_encoding, "num_shards": RecordsConfig().num_shards,
        "min_shards": RecordsConfig().min_shards,
        "also": list(_BUILD.also),
    },
    "kser_cli.training_flags": {
        "arch": _TRAIN.arch, "batch_size": _TRAIN.batch_size, "balance": _TRAIN.balance,
        "decay_steps": _TRAIN.decay_steps, "features_on": _TRAIN.features_on, "seed": _TRAIN.seed,
        "distribution": DistributionConfig().mode, "devices": list(DistributionConfig().devices),
        "prosody": FeatureConfig().prosody,
        # Recipe fields default to None: the architecture's registered recipe fills them in.
        **{name: None for name in ("recipe", "epochs", "learning_rate", "schedule", "decay_rate", "warmup_epochs",
                                   "weight_decay", "label_smoothing", "mixup_alpha", "patience", "monitor", "augment",
                                   "pitch_method")},
    },
    "kser_cli.cross_validate": {"folds": _CV.folds, "fold_seed": _CV.seed, "max_folds": _CV.max_folds},
    "kser_cli.evaluate": {"split": EVAL_SPLIT, "batch_size": EVAL_BATCH_SIZE},
    "kser_cli.export": {"window_hop_seconds": WINDOW_HOP_SECONDS},
    "kser_cli.demo_data": {"actors": DEMO_ACTORS, "sentences": DEMO_SENTENCES, "sample_rate": DEMO_SAMPLE_RATE, "seed": DEMO_SEED},
}


# training_flags before cross_validate, which imports it (a second import would define nothing).
ORDER = sorted(EXPECTED, key=lambda module: (module != "kser_cli.training_flags", module))


@pytest.fixture(scope="module")
def flag_defaults() -> dict:
    """Each module's own flags and defaults, read in one fresh process. absl's flags are global and
    the commands reuse names (--seed), so the flags each import adds are removed before the next."""
    code = (
        "import importlib, json; from absl import flags; out = {}\n"
        f"for module in {ORDER!r}:\n"
        "    before = set(flags.FLAGS)\n"
        "    importlib.import_module(module)\n"
        "    out[module] = {f.name: f.default for f in flags.FLAGS.get_flags_for_module(module)}\n"
        "    for name in set(flags.FLAGS) - before: delattr(flags.FLAGS, name)\n"
        "print(json.dumps(out))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=kser_env(), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


@pytest.mark.parametrize("module", sorted(EXPECTED))
def test_flag_defaults_are_the_library_s(module, flag_defaults):
    defaults = flag_defaults[module]
    for name, expected in EXPECTED[module].items():
        assert name in defaults, f"{module} has no --{name}"
        assert defaults[name] == expected, f"{module} --{name}: {defaults[name]!r} != library {expected!r}"


def test_train_and_cross_validate_default_to_the_recommended_small_model():
    """A new user's first `kser train` trains `small` (about 3% of `lstm`'s compute); `lstm` is the study's."""
    assert TrainConfig().arch == "small"
