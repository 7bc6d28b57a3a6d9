"""The config: validated once into a Study with the schema's defaults, one-line errors naming the key, `--config`
strings, key order that changes nothing, and hyper-parameter overrides."""

from __future__ import annotations

import copy

import pytest
import yaml
from snakemake.utils import validate

from chemlm import layout
from chemlm.config import SCHEMA_PATH, ConfigError, FinetuneParams, Study, canonical, describe_config_error, load_schema
from helpers import REPO

SCHEMA = load_schema()


def shipped(name: str) -> dict:
    return yaml.safe_load((REPO / "config" / name).read_text())


SHIPPED = sorted(path.name for path in (REPO / "config").glob("*.yaml"))


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_configs_are_valid(name):
    config = shipped(name)
    assert describe_config_error(config, SCHEMA) is None
    study = Study.from_config(config)
    assert study.tasks and study.checkpoints


@pytest.mark.parametrize("name", SHIPPED)
def test_defaults_are_those_snakemake_validate_fills_in(name):
    config = shipped(name)
    study = Study.from_config(config)
    assert config == shipped(name)  # the raw config is left as it was
    validate(config, str(SCHEMA_PATH))
    assert study.config == canonical(config)


def test_defaults_are_filled_in():
    study = Study.from_config({"tasks": shipped("demo.yaml")["tasks"], "checkpoints": {"m": {"source": "org/model"}}})
    assert study.seeds == (0, 1, 2) and study.splits == ("scaffold",) and study.fractions == (0.8, 0.1, 0.1)
    params = study.finetune_params("hiv", "m")
    assert params.learning_rate == 1e-5 and params.patience == 15
    assert (params.max_grad_norm, params.schedule, params.warmup_fraction) == (None, "constant", 0.0)
    assert study.checkpoints["m"].trust_remote_code is False and study.corpus is None
    assert study.rdkit_time_limit == 30  # seconds, not minutes: a molecule RDKit hangs on costs little


def test_study_hyperparameters():
    params = Study.from_config(shipped("config.yaml")).finetune_params("hiv", "MLM")
    assert params == FinetuneParams(1e-5, (0.95, 0.999), 0.0, 256, 1024, 100, 15, 128, True)


def test_checkpoint_overrides_task_overrides_global():
    config = shipped("config.yaml")
    config["tasks"]["hiv"]["finetune"] = {"learning_rate": 2e-5, "batch_size": 64}
    config["checkpoints"]["MTR"]["finetune"] = {"learning_rate": 3e-5}
    study = Study.from_config(config)
    assert study.finetune_params("hiv", "MLM").learning_rate == 2e-5
    mtr = study.finetune_params("hiv", "MTR")
    assert (mtr.learning_rate, mtr.batch_size, mtr.patience) == (3e-5, 64, 15)


def test_a_named_protocol_replaces_global_and_task_settings_for_the_checkpoints_that_follow_it():
    """The seed study's protocol beside ours: 5 epochs, batch 16, lr 2e-5, weight decay 0.01 for one checkpoint."""
    config = shipped("config.yaml")
    config["tasks"]["hiv"]["finetune"] = {"learning_rate": 3e-5, "max_length": 96}
    config["protocols"] = {"seed_study": {"max_epochs": 5, "batch_size": 16, "learning_rate": 2e-5, "weight_decay": 0.01}}
    config["checkpoints"]["MTR"] = {**config["checkpoints"]["MTR"], "protocol": "seed_study", "finetune": {"weight_decay": 0.02}}
    study = Study.from_config(config)
    mtr, mlm = study.finetune_params("hiv", "MTR"), study.finetune_params("hiv", "MLM")
    assert (mtr.max_epochs, mtr.batch_size, mtr.learning_rate, mtr.weight_decay, mtr.max_length) == (5, 16, 2e-5, 0.02, 96)
    assert (mlm.max_epochs, mlm.batch_size, mlm.learning_rate) == (100, 256, 3e-5)
    config["checkpoints"]["MTR"]["protocol"] = "seed-study"
    with pytest.raises(ConfigError, match="config key 'checkpoints.MTR.protocol': no protocol 'seed-study' under protocols"):
        Study.from_config(config)


def test_command_line_strings_become_the_numbers_the_schema_asks_for():
    """`snakemake --config seeds=[0,1,2,3,4]` hands over ['0', '1', ...]: YAML strings (Snakemake's BaseLoader)."""
    config = shipped("demo.yaml")
    config["seeds"] = ["0", "1", "2", "3", "4"]
    config["finetune"] = {"learning_rate": "1e-4", "class_weighted": "false", "max_grad_norm": "null"}
    config["project"] = {"methods": ["pca", "umap"], "probe_folds": "3"}
    study = Study.from_config(config)
    assert study.seeds == (0, 1, 2, 3, 4) and study.probe_folds == 3 and study.projections == ("pca", "umap")
    params = study.finetune_params("hiv", "MLM")
    assert params.learning_rate == 1e-4 and params.class_weighted is False and params.max_grad_norm is None
    config["seeds"] = ["0", "one"]
    with pytest.raises(ConfigError, match=r"config key 'seeds.1': 'one' is not of type 'integer'"):
        Study.from_config(config)


def test_key_order_changes_no_spec():
    config = shipped("demo.yaml")
    reordered = yaml.safe_load(yaml.safe_dump(config, sort_keys=True))
    reversed_order = canonical(config)
    reversed_order = {key: reversed_order[key] for key in reversed(list(reversed_order))}
    studies = [Study.from_config(variant) for variant in (config, reordered, reversed_order)]
    assert studies[0] == studies[1] == studies[2]
    assert len({repr(study.config) for study in studies}) == 1
    assert len({repr(layout.checkpoint_to_load(study, "scratch").to_dict()) for study in studies}) == 1


def test_checkpoint_named_like_a_baseline():
    config = shipped("demo.yaml")
    config["checkpoints"]["ecfp4_rf"] = config["checkpoints"].pop("scratch")
    with pytest.raises(ConfigError, match=r"^config key 'checkpoints.ecfp4_rf': the name of a baseline"):
        Study.from_config(config)


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


def test_a_time_limit_must_be_positive():
    message = broken(lambda c: c.setdefault("featurize", {}).update(rdkit_time_limit=0))
    assert message.startswith("config key 'featurize.rdkit_time_limit': 0 is less than or equal to the minimum")


def test_wrong_enum_names_the_key():
    assert broken(lambda c: c["tasks"]["hiv"].update(type="binar")).startswith("config key 'tasks.hiv.type': 'binar' is not one of")


def test_url_source_needs_a_checksum():
    message = broken(lambda c: c["tasks"]["hiv"].pop("sha256"))
    assert message == "config key 'tasks.hiv': 'sha256' is a required property"


def test_label_columns_must_name_something():
    assert broken(lambda c: c["tasks"]["hiv"].update(label_columns=[])).startswith("config key 'tasks.hiv.label_columns'")


def test_cross_validation_splits_have_folds_times_repeats_instances():
    config = {"tasks": shipped("demo.yaml")["tasks"], "checkpoints": {"m": {"source": "org/model"}},
              "split": {"methods": ["scaffold", "scaffold_cv"], "folds": 3, "repeats": 2}, "seeds": [4, 7]}
    study = Study.from_config(config)
    assert [instance.name for instance in study.instances("scaffold")] == ["seed4", "seed7"]
    folds = study.instances("scaffold_cv")
    assert [instance.name for instance in folds] == [f"repeat{r}-fold{f}" for r in range(2) for f in range(3)]
    assert [instance.seed for instance in folds] == [0, 0, 0, 1, 1, 1]  # one model seed per repeat
    assert study.instance_names == ("seed4", "seed7", *(instance.name for instance in folds))
    assert study.instance("scaffold", "seed9").seed == 9  # a search trial's seed on a single split
    with pytest.raises(ConfigError, match="split 'scaffold_cv' has no instance 'seed0'"):
        study.instance("scaffold_cv", "seed0")
    assert layout.metrics("hiv", "m", "scaffold_cv", folds[4]) == "results/hiv/metrics/m/scaffold_cv/repeat1-fold1.json"
    assert layout.metrics("hiv", "m", "scaffold", 4) == "results/hiv/metrics/m/scaffold/seed4.json"
    assert Study.from_config({**config, "embed": {"instances": 2}}).embedded_instances("scaffold_cv") == folds[:2]


def test_a_search_on_a_cross_validation_is_refused():
    config = {"tasks": shipped("demo.yaml")["tasks"], "checkpoints": {"m": {"source": "org/model"}},
              "split": {"methods": ["cluster_cv"]}, "search": {"trials": 2}}
    with pytest.raises(ConfigError, match="config key 'search': not with the cross-validation split 'cluster_cv'"):
        Study.from_config(config)


def test_compare_thresholds_replace_the_guidelines_one_by_one():
    config = {"tasks": shipped("demo.yaml")["tasks"], "checkpoints": {"m": {"source": "org/model"}},
              "compare": {"min_difference": {"auroc": 0.05}}}
    settings = Study.from_config(config).compare
    assert settings.min_difference["auroc"] == 0.05 and settings.min_difference["mae"] == 0.2
    assert (settings.alpha, settings.not_learned_spread) == (0.05, 0.1)
    with pytest.raises(ConfigError, match="config key 'compare.min_difference.auroc'"):
        Study.from_config({**config, "compare": {"min_difference": {"auroc": -1}}})


def test_a_library_is_cut_into_shards_of_its_rows_counted_when_planned(tmp_path):
    import gzip

    config = shipped("demo.yaml")
    (tmp_path / "library.smi").write_text("CCO\n" * 250)
    (tmp_path / "broken.smi.gz").write_bytes(gzip.compress(b"CCO\n")[:-6])
    config["predict"] = {"libraries": {name: {"source": str(tmp_path / f"{name}.smi{suffix}")}
                                       for name, suffix in (("library", ""), ("missing", ""), ("broken", ".gz"))}, "shard_size": 100}
    predict = Study.from_config(config).predict
    assert predict.shards("library") == 3
    assert [predict.shard_rows("library", shard) for shard in range(3)] == [(0, 100), (100, 200), (200, None)]
    assert predict.shards("missing") == 1  # Snakemake names it as the library rule's missing input
    with pytest.raises(ConfigError, match=r"^config key 'predict.libraries.broken.source': .*broken.smi.gz: not a readable file"):
        predict.shards("broken")
    assert Study.from_config(shipped("demo.yaml")).predict.shard_size == 100_000
