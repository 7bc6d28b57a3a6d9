"""The workflow config: one-line validation errors and the resolved settings each step receives."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "config" / "schema" / "config.schema.yaml"
SCRATCH = "scratch"
# A checkpoint source `pretrained:<name>` is the model this workflow pre-trains under pretrain.models.<name>.
PRETRAINED_PREFIX = "pretrained:"
# The fingerprint baselines, as the schema's `baselines` items list them; checkpoints may not take these names.
BASELINES = ("ecfp4_rf", "ecfp4_logreg")


class ConfigError(ValueError):
    """A config value the schema rejects; the message is one line naming the key."""


def load_schema(path: Path = SCHEMA_PATH) -> dict:
    return yaml.safe_load(path.read_text())


def _key_path(path: Any) -> str:
    return ".".join(str(part) for part in path) or "<top level>"


def describe_config_error(config: dict, schema: dict) -> str | None:
    """The most relevant schema violation in `config` as one line naming its key, or None if valid."""
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is None:
        return None
    key = _key_path(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        where = f"{key}." if error.absolute_path else ""
        hint = f" (allowed: {', '.join(allowed)})" if allowed else ""
        return f"config key '{where}{unknown[0]}': unknown key{hint}"
    if error.validator == "propertyNames":
        return f"config key '{key}.{error.instance}': invalid name (letters, digits, '_', '.', '-')"
    if error.validator == "contains" and "const" in error.validator_value:
        return f"config key '{key}': must include '{error.validator_value['const']}'"
    return f"config key '{key}': {error.message}"


def describe_name_clash(config: dict) -> str | None:
    """A checkpoint named like a baseline would share its metrics files; one line naming it, or None."""
    clash = sorted(set(config["checkpoints"]) & set(BASELINES))
    if clash:
        return f"config key 'checkpoints.{clash[0]}': the name of a baseline (reserved: {', '.join(BASELINES)})"
    return None


@dataclass(frozen=True)
class FinetuneParams:
    """Fine-tuning hyper-parameters after global < task < checkpoint overrides."""

    learning_rate: float
    betas: tuple[float, float]
    weight_decay: float
    batch_size: int
    eval_batch_size: int
    max_epochs: int
    patience: int
    max_length: int
    class_weighted: bool

    @classmethod
    def resolve(cls, config: dict, task: str, checkpoint: str) -> FinetuneParams:
        merged = {
            **config["finetune"],
            **config["tasks"][task].get("finetune", {}),
            **config["checkpoints"][checkpoint].get("finetune", {}),
        }
        missing = [field.name for field in fields(cls) if field.name not in merged]
        if missing:
            raise ConfigError(f"config key 'finetune.{missing[0]}': no value (the schema default is missing)")
        return cls.from_dict({field.name: merged[field.name] for field in fields(cls)})

    @classmethod
    def from_dict(cls, values: dict) -> FinetuneParams:
        """From `to_dict()` output, as rules pass it to scripts."""
        return cls(**{**values, "betas": tuple(values["betas"])})

    def to_dict(self) -> dict:
        values = asdict(self)
        values["betas"] = list(self.betas)
        return values


@dataclass(frozen=True)
class CheckpointSpec:
    """Where a model to fine-tune comes from: a hub id, a local folder, or `scratch`."""

    name: str
    source: str
    architecture: str | None = None
    architecture_overrides: dict | None = None
    revision: str | None = None
    trust_remote_code: bool = False

    def __post_init__(self) -> None:
        if self.is_scratch and not self.architecture:
            raise ConfigError(
                f"config key 'checkpoints.{self.name}.architecture': required when source is 'scratch'"
            )
        if not self.is_scratch and (self.architecture or self.architecture_overrides):
            raise ConfigError(
                f"config key 'checkpoints.{self.name}.architecture': only for source 'scratch'"
            )
        if self.pretrained_name == "":
            raise ConfigError(f"config key 'checkpoints.{self.name}.source': name the model: pretrained:<name>")

    @property
    def is_scratch(self) -> bool:
        return self.source == SCRATCH

    @property
    def pretrained_name(self) -> str | None:
        """The `pretrain.models` entry a `pretrained:<name>` source refers to; None for other sources."""
        return self.source.removeprefix(PRETRAINED_PREFIX) if self.source.startswith(PRETRAINED_PREFIX) else None

    @classmethod
    def from_config(cls, name: str, entry: dict) -> CheckpointSpec:
        return cls(
            name=name,
            source=entry["source"],
            architecture=entry.get("architecture"),
            architecture_overrides=entry.get("architecture_overrides"),
            revision=entry.get("revision"),
            trust_remote_code=bool(entry.get("trust_remote_code", False)),
        )

    def to_dict(self) -> dict:
        return {key: value for key, value in asdict(self).items() if value is not None}


@dataclass(frozen=True)
class PretrainSpec:
    """One model to pre-train (config `pretrain.models.<name>`), after the schema's defaults."""

    name: str
    objective: str  # mlm | mtr
    size: str  # chemberta2 | small: see chemlm.models.pretraining.SIZE_PRESETS
    tokenizer: str  # chemberta2 | regex
    epochs: int
    batch_size: int
    learning_rate: float
    max_length: int

    @classmethod
    def from_config(cls, name: str, entry: dict) -> PretrainSpec:
        return cls(name=name, **{field.name: entry[field.name] for field in fields(cls) if field.name != "name"})

    @property
    def output_dir(self) -> str:
        """Where the pretrain rule writes this model: objective and size are wildcards of its path."""
        return f"results/pretrain/{self.objective}-{self.size}/{self.name}"

    def to_dict(self) -> dict:
        return asdict(self)


def pretrained_model_dir(config: dict, checkpoint: CheckpointSpec) -> str:
    """The model folder a `pretrained:<name>` checkpoint fine-tunes from; ConfigError if no such model is configured."""
    name = checkpoint.pretrained_name
    models = config.get("pretrain", {}).get("models", {})
    if name not in models:
        raise ConfigError(
            f"config key 'checkpoints.{checkpoint.name}.source': no model '{name}' under pretrain.models"
        )
    return f"{PretrainSpec.from_config(name, models[name]).output_dir}/model"
