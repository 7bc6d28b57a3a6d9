"""The config schema: defaults, one-line errors naming the key, and hyper-parameter overrides."""

from __future__ import annotations

import copy

import pytest
import yaml
from snakemake.utils import validate

from chemlm.config import SCHEMA_PATH, CheckpointSpec, FinetuneParams, describe_config_error, load_schema
from helpers import REPO

SCHEMA = load_schema()


def shipped(name: str) -> dict:
    return yaml.safe_load((REPO / "config" / name).read_text())


@pytest.mark.parametrize("name", ["config.yaml", "demo.yaml"])
def test_shipped_configs_are_valid(name):
    config = shipped(name)
    assert describe_config_error(config, SCHEMA) is None
    validate(config, str(SCHEMA_PATH))
    for checkpoint, entry in config["checkpoints"].items():
        CheckpointSpec.from_config(checkpoint, entry)


def test_defaults_are_filled_in():
    config = {"tasks": shipped("demo.yaml")["tasks"], "checkpoints": {"m": {"source": "org/model"}}}
    validate(config, str(SCHEMA_PATH))
    assert config["seeds"] == [0, 1, 2]
    assert config["split"] == {"methods": ["scaffold"], "fractions": [0.8, 0.1, 0.1]}
    assert config["finetune"]["learning_rate"] == 1e-5 and config["finetune"]["patience"] == 15
    assert config["checkpoints"]["m"]["trust_remote_code"] is False


def test_study_hyperparameters():
    config = shipped("config.yaml")
    validate(config, str(SCHEMA_PATH))
    params = FinetuneParams.resolve(config, "hiv", "MLM")
    assert params == FinetuneParams(1e-5, (0.95, 0.999), 0.0, 256, 1024, 100, 15, 128, True)


def test_checkpoint_overrides_task_overrides_global():
    config = shipped("config.yaml")
    config["tasks"]["hiv"]["finetune"] = {"learning_rate": 2e-5, "batch_size": 64}
    config["checkpoints"]["MTR"]["finetune"] = {"learning_rate": 3e-5}
    validate(config, str(SCHEMA_PATH))
    assert FinetuneParams.resolve(config, "hiv", "MLM").learning_rate == 2e-5
    mtr = FinetuneParams.resolve(config, "hiv", "MTR")
    assert (mtr.learning_rate, mtr.batch_size, mtr.patience) == (3e-5, 64, 15)


def broken(mutate) -> str:
    config = copy.deepcopy(shipped("config.yaml"))
    mutate(config)
    message = describe_config_error(config, SCHEMA)
    assert message is not None and "\n" not in message
    return message


def test_unknown_top_level_key():
    assert broken(lambda c: c.update(seedz=[1])).startswith("config key 'seedz': unknown key")


def test_unknown_nested_key():
    message = broken(lambda c: c["finetune"].update(learning_rat=0.1))
    assert message.startswith("config key 'finetune.learning_rat': unknown key")


def test_wrong_type_names_the_key():
    message = broken(lambda c: c["finetune"].update(batch_size="big"))
    assert message == "config key 'finetune.batch_size': 'big' is not of type 'integer'"


def test_wrong_enum_names_the_key():
    assert broken(lambda c: c["tasks"]["hiv"].update(type="binar")).startswith("config key 'tasks.hiv.type': 'binar' is not one of")


def test_url_source_needs_a_checksum():
    message = broken(lambda c: c["tasks"]["hiv"].pop("sha256"))
    assert message == "config key 'tasks.hiv': 'sha256' is a required property"


def test_label_columns_must_name_something():
    assert broken(lambda c: c["tasks"]["hiv"].update(label_columns=[])).startswith("config key 'tasks.hiv.label_columns'")
