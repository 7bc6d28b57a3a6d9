"""What the workflow config means: validated once, with the schema's defaults, into a typed `Study`.

`Study.from_config` is the only reader of a raw config. It turns `--config` strings into the numbers and booleans
the schema asks for, stops on the first invalid key with one line naming it, fills in the schema's defaults (as
snakemake.utils.validate does) and builds the specs every rule and the report use. The specs' `to_params()` give
what rules hand to their scripts: plain dicts with their keys in one fixed order, so that writing the config's keys
in another order changes no params and reruns nothing.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from chemlm.folds import SplitInstance
from chemlm.tasks import RULE_TASK_TABLE, TaskSpec, TaskType

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "config" / "schema" / "config.schema.yaml"
SCRATCH = "scratch"
# A checkpoint source `pretrained:<name>` is the model this workflow pre-trains under pretrain.models.<name>.
PRETRAINED_PREFIX = "pretrained:"
# The split methods that are repeated cross-validations (chemlm.splits.CV_METHODS): folds x repeats split instances.
CV_METHODS = ("scaffold_cv", "cluster_cv", "random_cv")
# The baselines, as the schema's `baselines` items list them; checkpoints may not take these names. The feature
# baselines (chemlm.baselines) train on a feature file of each molecule.
FEATURE_BASELINES = ("ecfp4_rf", "ecfp4_logreg", "lgbm")
BASELINES = (*FEATURE_BASELINES, "chemprop")


class ConfigError(ValueError):
    """A config value the schema rejects; the message is one line naming the key."""


def load_schema(path: Path = SCHEMA_PATH) -> dict:
    return yaml.safe_load(path.read_text())


def canonical(value: Any) -> Any:
    """`value` with every dict's keys sorted, recursively: the same settings always give the same params."""
    if isinstance(value, Mapping):
        return {str(key): canonical(value[key]) for key in sorted(value, key=str)}
    if isinstance(value, (list, tuple)):
        return [canonical(item) for item in value]
    return value


# ---------------------------------------------------------------------------------------------------
# Raw config: command-line strings, one-line errors, defaults


def _resolve(schema: dict, root: dict) -> dict:
    reference = schema.get("$ref")
    if not reference:
        return schema
    target: Any = root
    for part in reference.removeprefix("#/").split("/"):
        target = target[part]
    return {**target, **{key: value for key, value in schema.items() if key != "$ref"}}


def _subschemas(schema: dict, root: dict) -> Iterator[dict]:
    schema = _resolve(schema, root)
    yield schema
    for part in schema.get("allOf", []):
        yield from _subschemas(part, root)


def _parse_scalar(text: str, types: set[str]) -> Any:
    """A command-line string as the number or boolean the schema asks for; the string itself if it is none of them."""
    if "integer" in types:
        try:
            return int(text)
        except ValueError:
            pass
    if "number" in types:
        try:
            return float(text)
        except ValueError:
            pass
    if "boolean" in types and text.lower() in ("true", "false"):
        return text.lower() == "true"
    if "null" in types and text.lower() in ("null", "none", "~"):
        return None
    return text


def coerce_strings(value: Any, schema: dict, root: dict) -> Any:
    """Strings where the schema wants numbers or booleans, parsed.

    `snakemake --config seeds=[0,1,2,3,4]` hands the values over as YAML strings ('0', '1', ...), and a
    `--config finetune='{learning_rate: 1e-4}'` the rate as '1e-4': both mean numbers.
    """
    for part in _subschemas(schema, root):
        if isinstance(value, dict):
            for key in list(value):
                properties = part.get("properties", {})
                sub = properties.get(key, part.get("additionalProperties"))
                if isinstance(sub, dict):
                    value[key] = coerce_strings(value[key], sub, root)
        elif isinstance(value, list) and isinstance(part.get("items"), dict):
            value[:] = [coerce_strings(item, part["items"], root) for item in value]
        elif isinstance(value, str) and "type" in part:
            types = {part["type"]} if isinstance(part["type"], str) else set(part["type"])
            if "string" not in types:
                value = _parse_scalar(value, types)
    return value


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


def fill_defaults(config: dict, schema: dict) -> None:
    """The schema's defaults for every absent key, in place, as snakemake.utils.validate(set_default=True) fills them."""
    properties_keyword = jsonschema.Draft202012Validator.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema:
                    instance.setdefault(name, copy.deepcopy(subschema["default"]))
        yield from properties_keyword(validator, properties, instance, schema)

    filling = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"properties": set_defaults})
    for _ in filling(schema).iter_errors(config):
        pass


# ---------------------------------------------------------------------------------------------------
# Specs


@dataclass(frozen=True)
class FinetuneParams:
    """Fine-tuning hyper-parameters after global < task < the checkpoint's protocol < checkpoint overrides."""

    learning_rate: float
    betas: tuple[float, float]
    weight_decay: float
    batch_size: int
    eval_batch_size: int
    max_epochs: int
    patience: int
    max_length: int
    class_weighted: bool
    max_grad_norm: float | None = None
    schedule: str = "constant"
    warmup_fraction: float = 0.0
    dropout: float | None = None  # None: the checkpoint's own hidden and attention dropout
    head_initializer_range: float | None = None  # None: the checkpoint config's initializer_range
    augment: int = 0  # SMILES variants per training molecule (0 or 1: the canonical SMILES alone)
    augment_mode: str = "one"  # one: a random variant of each molecule per epoch; all: every variant every epoch
    test_time_augment: int = 0  # variants per validation and test molecule, their predictions averaged

    @classmethod
    def resolve(cls, config: dict, task: str, checkpoint: str) -> FinetuneParams:
        merged = {
            **config["finetune"],
            **config["tasks"][task].get("finetune", {}),
            **config["protocols"].get(config["checkpoints"][checkpoint].get("protocol"), {}),
            **config["checkpoints"][checkpoint].get("finetune", {}),
            # evaluation's averaging over variants decides early stopping and calibration too
            "test_time_augment": config["evaluate"]["test_time_augment"],
        }
        return cls.from_dict({field.name: merged[field.name] for field in fields(cls) if field.name in merged})

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
        return canonical({key: value for key, value in asdict(self).items() if value is not None})


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
    max_grad_norm: float | None = 1.0
    schedule: str = "linear"
    warmup_fraction: float = 0.05
    patience: int | None = None

    @classmethod
    def from_config(cls, name: str, entry: dict) -> PretrainSpec:
        return cls(name=name, **{field.name: entry[field.name] for field in fields(cls) if field.name != "name" and field.name in entry})

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class CorpusSettings:
    """Config `pretrain` keys that decide which molecules pre-training sees (shared by all pre-trained models)."""

    exclude_task_molecules: bool
    holdout_fraction: float
    max_molecules: int  # 0: all
    seed: int
    isomeric_smiles: bool

    @classmethod
    def from_config(cls, pretrain: dict, isomeric_smiles: bool) -> CorpusSettings:
        return cls(
            exclude_task_molecules=bool(pretrain["exclude_task_molecules"]),
            holdout_fraction=float(pretrain["holdout_fraction"]),
            max_molecules=int(pretrain["max_molecules"]),
            seed=int(pretrain["seed"]),
            isomeric_smiles=bool(isomeric_smiles),
        )

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ExplainSettings:
    """The `explain` block: test molecules per reason, integrated gradients' steps and baseline."""

    molecules: int
    steps: int
    baseline: str
    checked_molecules: int


@dataclass(frozen=True)
class ClassReference:
    """A published per-class result of a multi-class task (`report.published_by_class`): by class, each class against
    the rest, its accuracy, f1 and auroc."""

    model: str
    source: str
    task: str
    split: str
    values: dict[str, dict[str, float]]


@dataclass(frozen=True)
class ReportSettings:
    """The `report` config block: the headline metric, the published references and the paired checkpoints."""

    metric: str
    published: dict[str, float]
    published_task: str
    published_split: str
    paired: tuple[str, str] | None
    published_sources: dict[str, str]  # where a published value comes from, where the config says
    published_by_class: tuple[ClassReference, ...] = ()

    @classmethod
    def from_config(cls, report: Mapping[str, Any]) -> ReportSettings:
        paired = report["paired"]
        entries = {str(name): entry if isinstance(entry, Mapping) else {"value": entry} for name, entry in report["published"].items()}
        return cls(
            metric=report["metric"],
            published_sources={name: entry["source"] for name, entry in entries.items() if entry.get("source")},
            published={name: float(entry["value"]) for name, entry in entries.items()},
            published_task=report["published_task"],
            published_split=report["published_split"],
            paired=(paired[0], paired[1]) if paired else None,
            published_by_class=tuple(
                ClassReference(entry["model"], entry["source"], entry["task"], entry["split"],
                               {name: {metric: float(value) for metric, value in by_metric.items()} for name, by_metric in entry["values"].items()})
                for entry in report["published_by_class"]
            ),
        )


@dataclass(frozen=True)
class CompareSettings:
    """The `compare` block: family-wise alpha, practical-significance thresholds by metric (the guidelines' values,
    replaced key by key by the config's) and the spread below which a model has not learned."""

    alpha: float
    min_difference: dict[str, float]
    not_learned_spread: float

    @classmethod
    def from_config(cls, compare: Mapping[str, Any]) -> CompareSettings:
        from chemlm.comparison import DEFAULT_MIN_DIFFERENCE

        thresholds = {**DEFAULT_MIN_DIFFERENCE, **{str(key): float(value) for key, value in compare["min_difference"].items()}}
        return cls(float(compare["alpha"]), canonical(thresholds), float(compare["not_learned_spread"]))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SearchSettings:
    """The `search` block: trials, the Sobol seed, the fine-tuning seeds of each trial, the global space."""

    trials: int
    seed: int
    seeds: tuple[int, ...]
    space: dict
    baselines: bool | tuple[str, ...]  # true: every baseline; or the searched baselines' names

    @classmethod
    def from_config(cls, search: dict) -> SearchSettings:
        baselines = search["baselines"] if isinstance(search["baselines"], bool) else tuple(search["baselines"])
        return cls(search["trials"], search["seed"], tuple(search["seeds"]), dict(search["space"]), baselines)


@dataclass(frozen=True)
class LibrarySpec:
    """A library of molecules to score (config `predict.libraries.<name>`)."""

    name: str
    source: str
    smiles_column: str
    id_column: str | None

    def to_dict(self) -> dict:
        return canonical({key: value for key, value in asdict(self).items() if value is not None})


def library_rows(source: str) -> int:
    """The rows of a library file (chemlm.io.count_rows), counted once per process for each version of it."""
    path = Path(source)
    stat = path.stat()
    return _counted_rows(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@functools.cache
def _counted_rows(path: str, size: int, mtime_ns: int) -> int:
    from chemlm.io import count_rows

    return count_rows(path)


def shard_count(rows: int, shard_size: int) -> int:
    """Shards of `shard_size` rows that cover `rows` (one for an empty file, whose job then says it is empty)."""
    return max(-(-rows // shard_size), 1)


@dataclass(frozen=True)
class PredictSettings:
    """What scores which libraries (config `predict`): names resolved, every one checked to exist."""

    libraries: dict[str, LibrarySpec]
    tasks: tuple[str, ...]
    checkpoints: tuple[str, ...]
    splits: tuple[str, ...]
    baselines: tuple[str, ...]
    top: int
    shard_size: int
    engine: str  # torch | onnx | onnx-int8 (chemlm.export)

    @classmethod
    def from_config(cls, predict: dict, config: dict) -> PredictSettings:
        chosen = {}
        for key, available in (("tasks", config["tasks"]), ("checkpoints", config["checkpoints"]), ("splits", config["split"]["methods"])):
            names = predict.get(key, list(available))
            unknown = [name for name in names if name not in available]
            if unknown:
                raise ConfigError(f"config key 'predict.{key}': '{unknown[0]}' is not one of the study's {key} ({', '.join(available)})")
            chosen[key] = tuple(names)
        libraries = {
            name: LibrarySpec(name, entry["source"], entry["smiles_column"], entry.get("id_column"))
            for name, entry in predict["libraries"].items()
        }
        baselines = tuple(config["baselines"]) if predict["baselines"] else ()
        return cls(libraries, chosen["tasks"], chosen["checkpoints"], chosen["splits"], baselines, predict["top"], predict["shard_size"],
                   predict["engine"])

    @property
    def models(self) -> tuple[str, ...]:
        return (*self.checkpoints, *self.baselines)

    def shards(self, library: str) -> int:
        """How many shards the library is cut into: its rows counted now, when the workflow is planned. A file that is
        not there is one shard, so that Snakemake names it as the library rule's missing input (and `--lint`, which
        plans nothing, does not need it)."""
        from chemlm.io import InputError

        if not Path(self.libraries[library].source).is_file():
            return 1
        try:
            return shard_count(library_rows(self.libraries[library].source), self.shard_size)
        except InputError as error:
            raise ConfigError(f"config key 'predict.libraries.{library}.source': {error}") from None

    def shard_rows(self, library: str, shard: int) -> tuple[int, int | None]:
        """The rows [start, stop) of a library's shard; the last one runs to the end of the file (stop None)."""
        start = shard * self.shard_size
        return start, (None if shard == self.shards(library) - 1 else start + self.shard_size)


def task_params(task: TaskSpec) -> dict:
    """A task as its config entry (what TaskSpec.from_config reads), keys sorted; without its predefined folds, a
    parameter of the fold matching alone (so that naming them reruns no other job)."""
    entry = {
        "source": task.source,
        "smiles_column": task.smiles_column,
        "label_columns": list(task.label_columns),
        "type": task.type.value,
        "id_column": task.id_column,
        "sha256": task.sha256,
    }
    return canonical({key: value for key, value in entry.items() if value is not None})


# ---------------------------------------------------------------------------------------------------
# The study


@dataclass(frozen=True)
class Study:
    """A validated config with its defaults, as typed specs. Names keep the config's order."""

    config: dict  # the validated config, defaults filled in, keys sorted
    tasks: dict[str, TaskSpec]
    checkpoints: dict[str, CheckpointSpec]
    pretrained: dict[str, PretrainSpec]
    corpus_path: str | None
    corpus: CorpusSettings | None
    splits: tuple[str, ...]
    fractions: tuple[float, float, float]
    seeds: tuple[int, ...]
    cv_folds: int
    cv_repeats: int
    baselines: tuple[str, ...]
    baseline_trees: int
    chemprop: dict  # chemprop's settings (chemlm.models.mpnn.MpnnSettings), defaults filled in
    projections: tuple[str, ...]
    probe_folds: int
    pooling: str
    embed_batch_size: int
    embed_instances: int | None
    bootstrap_samples: int
    isomeric_smiles: bool
    rdkit_time_limit: float
    calibration: str
    predict: PredictSettings | None
    search: SearchSettings | None
    report: ReportSettings
    compare: CompareSettings
    explain: ExplainSettings | None = None
    rule_tasks: dict = field(default_factory=dict)  # name -> {corpus, molecules, seed, present, absent}, defaults filled in

    @property
    def feature_baselines(self) -> tuple[str, ...]:
        """The baselines fitted on fingerprints and descriptors (stored as model.skops): every one but chemprop."""
        return tuple(baseline for baseline in self.baselines if baseline != "chemprop")

    @classmethod
    def from_config(cls, raw: Mapping[str, Any], schema: dict | None = None) -> Study:
        """Validate `raw` (left unchanged) and build the study; ConfigError names the first offending key."""
        schema = schema if schema is not None else load_schema()
        config = coerce_strings(copy.deepcopy(dict(raw)), schema, schema)
        problem = describe_config_error(config, schema)
        if problem:
            raise ConfigError(problem)
        fill_defaults(config, schema)
        clash = sorted(set(config["checkpoints"]) & set(BASELINES))
        if clash:
            raise ConfigError(f"config key 'checkpoints.{clash[0]}': the name of a baseline (reserved: {', '.join(BASELINES)})")
        pretrain = config.get("pretrain")
        pretrained = {name: PretrainSpec.from_config(name, entry) for name, entry in (pretrain or {}).get("models", {}).items()}
        checkpoints = {name: CheckpointSpec.from_config(name, entry) for name, entry in config["checkpoints"].items()}
        for name, entry in config["checkpoints"].items():
            if "protocol" in entry and entry["protocol"] not in config["protocols"]:
                raise ConfigError(f"config key 'checkpoints.{name}.protocol': no protocol '{entry['protocol']}' under protocols")
        for spec in checkpoints.values():
            if spec.pretrained_name is not None and spec.pretrained_name not in pretrained:
                raise ConfigError(f"config key 'checkpoints.{spec.name}.source': no model '{spec.pretrained_name}' under pretrain.models")
        searched = config.get("search", {}).get("baselines")
        unknown = [name for name in searched if name not in config["baselines"]] if isinstance(searched, list) else []
        if unknown:
            raise ConfigError(f"config key 'search.baselines': '{unknown[0]}' is not one of the study's baselines ({', '.join(config['baselines'])})")
        cross_validated = [method for method in config["split"]["methods"] if method in CV_METHODS]
        if cross_validated and "search" in config:
            # one search for every instance would have seen the other instances' test folds; a search per instance
            # (nested cross-validation) is not built
            raise ConfigError(f"config key 'search': not with the cross-validation split '{cross_validated[0]}' (its trials "
                              "would see other split instances' test folds); search on a single split")
        try:
            tasks = {name: TaskSpec.from_config(name, entry) for name, entry in config["tasks"].items()}
        except ValueError as error:
            raise ConfigError(f"config key 'tasks': {error}") from None
        for name in config["rule_tasks"]:
            expected = {"source": RULE_TASK_TABLE.format(name=name), "smiles_column": "smiles", "label_columns": ["label"], "type": "binary"}
            entry = config["tasks"].get(name, {})
            if {key: entry.get(key) for key in expected} != expected:
                raise ConfigError(f"config key 'tasks.{name}': the rule task '{name}' needs a task that reads it: {expected}")
        without_folds = [name for name, task in tasks.items() if task.folds is None]
        if "predefined" in config["split"]["methods"] and without_folds:
            raise ConfigError(f"config key 'tasks.{without_folds[0]}.folds': needed by the split 'predefined' (split.methods)")
        return cls(
            config=canonical(config),
            tasks=tasks,
            checkpoints=checkpoints,
            pretrained=pretrained,
            corpus_path=pretrain["corpus"] if pretrain else None,
            corpus=CorpusSettings.from_config(pretrain, config["featurize"]["isomeric_smiles"]) if pretrain else None,
            splits=tuple(config["split"]["methods"]),
            fractions=tuple(config["split"]["fractions"]),
            seeds=tuple(config["seeds"]),
            cv_folds=config["split"]["folds"],
            cv_repeats=config["split"]["repeats"],
            baselines=tuple(config["baselines"]),
            baseline_trees=config["baseline_trees"],
            chemprop=dict(config["chemprop"]),
            projections=tuple(config["project"]["methods"]),
            probe_folds=config["project"]["probe_folds"],
            pooling=config["embed"]["pooling"],
            embed_batch_size=config["embed"]["batch_size"],
            embed_instances=config["embed"]["instances"],
            bootstrap_samples=config["evaluate"]["bootstrap_samples"],
            isomeric_smiles=config["featurize"]["isomeric_smiles"],
            rdkit_time_limit=float(config["featurize"]["rdkit_time_limit"]),
            calibration=config["evaluate"]["calibration"],
            predict=PredictSettings.from_config(config["predict"], config) if "predict" in config else None,
            explain=ExplainSettings(**config["explain"]) if "explain" in config else None,
            rule_tasks=dict(config["rule_tasks"]),
            search=SearchSettings.from_config(config["search"]) if "search" in config else None,
            report=ReportSettings.from_config(config["report"]),
            compare=CompareSettings.from_config(config["compare"]),
        )

    def instances(self, split: str) -> tuple[SplitInstance, ...]:
        """The split instances of a split method: one per seed, or for a cross-validation every (repeat, fold)."""
        if split in CV_METHODS:
            return tuple(SplitInstance.of_fold(self.cv_folds, repeat, fold)
                         for repeat in range(self.cv_repeats) for fold in range(self.cv_folds))
        return tuple(SplitInstance.of_seed(seed) for seed in self.seeds)

    def instance(self, split: str, name: str) -> SplitInstance:
        """A split instance by name; a single split has one for any seed (a search trial's seed need not be a study seed)."""
        found = {instance.name: instance for instance in self.instances(split)}
        if name in found:
            return found[name]
        if split not in CV_METHODS and name.startswith("seed") and name[4:].isdigit():
            return SplitInstance.of_seed(int(name[4:]))
        raise ConfigError(f"split '{split}' has no instance '{name}' (it has {', '.join(found)})")

    def embedded_instances(self, split: str) -> tuple[SplitInstance, ...]:
        """The split instances whose models are embedded, projected and scored for separation (`embed.instances`)."""
        return self.instances(split)[: self.embed_instances]

    @property
    def instance_names(self) -> tuple[str, ...]:
        """Every split instance's name over the study's splits and its search trials' seeds (a wildcard's values)."""
        names = [instance.name for split in self.splits for instance in self.instances(split)]
        names += [SplitInstance.of_seed(seed).name for seed in (self.search.seeds if self.search else ())]
        return tuple(dict.fromkeys(names))

    @property
    def models(self) -> tuple[str, ...]:
        """What has metrics files: fine-tuned checkpoints, then fingerprint baselines (their names never clash)."""
        return (*self.checkpoints, *self.baselines)

    @property
    def embedded_models(self) -> tuple[str, ...]:
        """The models whose test-fold embeddings before and after training are projected and scored: every
        checkpoint, and chemprop (its learned molecule vector) where it is a baseline."""
        return (*self.checkpoints, *(("chemprop",) if "chemprop" in self.baselines else ()))

    def is_baseline(self, model: str) -> bool:
        return model in self.baselines

    def task_type(self, task: str) -> TaskType:
        return self.tasks[task].type

    def finetune_params(self, task: str, checkpoint: str) -> FinetuneParams:
        return FinetuneParams.resolve(self.config, task, checkpoint)

    def pretrained_model(self, checkpoint: str) -> PretrainSpec | None:
        """The pre-trained model a `pretrained:<name>` checkpoint fine-tunes; None for other sources."""
        name = self.checkpoints[checkpoint].pretrained_name
        return self.pretrained[name] if name is not None else None

    def search_trials(self, task: str, checkpoint: str) -> list[dict]:
        """The settings of each trial of `checkpoint` on `task` (empty without a search): the global space and number
        of trials, replaced key by key by the task's, then the checkpoint's."""
        from chemlm.search import merged_space

        if self.search is None:
            return []
        overrides = [self.config["tasks"][task].get("search", {}), self.config["checkpoints"][checkpoint].get("search", {})]
        space = merged_space(self.search.space, *(override.get("space") for override in overrides))
        trials = next((override["trials"] for override in reversed(overrides) if "trials" in override), self.search.trials)
        return space.trials(trials, self.search.seed)

    def baseline_search(self, baseline: str) -> tuple[int, int] | None:
        """(trials, Sobol seed) of a baseline's search on the validation fold, or None: a baseline searches only where
        `search.baselines` names it (true: every one) and global `search.trials` is above 0 (a checkpoint's own trials
        are its own)."""
        if self.search is None or not self.search.trials:
            return None
        searched = self.search.baselines
        if searched is True or (isinstance(searched, tuple) and baseline in searched):
            return self.search.trials, self.search.seed
        return None

    def searched(self, task: str, checkpoint: str) -> bool:
        """Whether `checkpoint`'s settings on `task` come from a search."""
        return bool(self.search_trials(task, checkpoint))

    def smiles_variants(self, task: str) -> int:
        """SMILES per molecule the task's fine-tuning and search can read (chemlm.augment makes them); 0 or 1: none."""
        counts = [self.finetune_params(task, checkpoint).augment for checkpoint in self.checkpoints]
        counts += [trial.get("augment", 0) for checkpoint in self.checkpoints for trial in self.search_trials(task, checkpoint)]
        return max([*counts, self.config["evaluate"]["test_time_augment"]])

    def test_time_random_smiles(self, task: str) -> int:
        """Seeded random SMILES per molecule that the task's variants were made from, where evaluation averages over
        variants (a model folder records it, so scoring new molecules makes the same variants); else 0."""
        return self.smiles_variants(task) - 1 if self.config["evaluate"]["test_time_augment"] > 1 else 0

    @property
    def library_random_smiles(self) -> int:
        """Seeded random SMILES per library molecule that scoring needs: the most any scored task's models read."""
        return max((self.test_time_random_smiles(task) for task in self.predict.tasks), default=0) if self.predict else 0

    def uses_variants(self, task: str, checkpoint: str) -> bool:
        """Whether fine-tuning `checkpoint` on `task`, or a trial of its search, reads SMILES variants."""
        params = self.finetune_params(task, checkpoint)
        searched = [trial.get("augment", 0) for trial in self.search_trials(task, checkpoint)]
        return max([params.augment, params.test_time_augment, *searched]) > 1

    def trial_params(self, task: str, checkpoint: str, trial: int) -> FinetuneParams:
        return replace(self.finetune_params(task, checkpoint), **self.search_trials(task, checkpoint)[trial])

    @property
    def has_mtr(self) -> bool:
        return any(spec.objective == "mtr" for spec in self.pretrained.values())
