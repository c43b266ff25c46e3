"""kser.run_config: one typed run definition, written once, read back exactly."""

import dataclasses
import json

import pytest

from kser.config import AugmentConfig, FeatureConfig, TrainConfig
from kser.data import Subset
from kser.errors import KserError
from kser.models import recipe
from kser.run_config import RUN_CONFIG_FILE, RunConfig, read_run_config, write_run_config


def _run() -> RunConfig:
    train = TrainConfig(
        arch="small", epochs=7, batch_size=16, seed=3, monitor="val_uar", augment=True,
        augmentation=AugmentConfig(pitch_method="resample", specaugment_prob=0.5),
    ).with_recipe(recipe("small"))
    return RunConfig(
        train=train,
        features=dataclasses.replace(FeatureConfig(), n_mels=40),
        model_options={"rnn_units": 8, "pool_sizes": [[2, 2], [1, 2]]},
        records_dir="/data/records",
        label_names=("ANG", "HAP", "SAD"),
        train_on=Subset(("train", "validation"), frozenset({"03", "01"}), "fold 1 train"),
        validate_on=Subset.of("validation"),
    )


def test_round_trip_through_the_file_is_exact(tmp_path):
    run = _run()
    write_run_config(tmp_path, run)
    assert read_run_config(tmp_path) == run
    stored = json.loads((tmp_path / RUN_CONFIG_FILE).read_text())
    assert stored == run.to_json()
    assert stored["train_on"] == {"name": "fold 1 train", "splits": ["train", "validation"], "speakers": ["01", "03"]}
    assert stored["train"]["augmentation"]["pitch_method"] == "resample"
    assert RunConfig.from_json(stored).to_json() == stored


def test_no_run_is_none_and_a_damaged_one_is_one_error(tmp_path):
    assert read_run_config(tmp_path) is None
    (tmp_path / RUN_CONFIG_FILE).write_text("{not json")
    with pytest.raises(KserError, match=f"{RUN_CONFIG_FILE} is damaged"):
        read_run_config(tmp_path)
    for damaged in ([1, 2], {"train": {}}, {**_run().to_json(), "train_on": "train"}):
        (tmp_path / RUN_CONFIG_FILE).write_text(json.dumps(damaged))
        with pytest.raises(KserError, match=f"{RUN_CONFIG_FILE} is damaged"):
            read_run_config(tmp_path)
