import os
import sys
from pathlib import Path

from snakemake.utils import min_version, validate

min_version("9.0")

# Scripts run in their own processes (and conda envs): they find the package through PYTHONPATH.
PACKAGE_DIR = str(Path(workflow.basedir) / "src")
sys.path.insert(0, PACKAGE_DIR)
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [PACKAGE_DIR, os.environ.get("PYTHONPATH")]))

from chemlm.config import CheckpointSpec, FinetuneParams, describe_config_error, load_schema
from chemlm.data.ingest import is_url, url_filename


def check_config():
    """Stop with one line naming the offending key; then let Snakemake fill in the schema's defaults."""
    problem = describe_config_error(config, load_schema())
    if problem:
        sys.exit(f"Config error: {problem}")
    validate(config, "../config/schema/config.schema.yaml")
    for name, entry in config["checkpoints"].items():
        try:
            CheckpointSpec.from_config(name, entry)
        except ValueError as error:
            sys.exit(f"Config error: {error}")


check_config()

TASKS = list(config["tasks"])
CHECKPOINTS = list(config["checkpoints"])
SPLITS = config["split"]["methods"]
SEEDS = config["seeds"]


# `checkpoint` is a Snakemake keyword, so that wildcard is named through dicts here and in expand().
wildcard_constraints:
    **{
        "task": "|".join(TASKS),
        "checkpoint": "|".join(CHECKPOINTS),
        "split": "|".join(SPLITS),
        "seed": r"\d+",
    },


def task_entry(wildcards):
    return config["tasks"][wildcards.task]


def task_table_source(wildcards):
    """A URL source is downloaded once into resources/; a path is read where it is."""
    source = task_entry(wildcards)["source"]
    if is_url(source):
        return f"resources/datasets/{wildcards.task}/{url_filename(source)}"
    return source


def checkpoint_entry(wildcards):
    return config["checkpoints"][wildcards.checkpoint]


def checkpoint_files(wildcards):
    """Local files a checkpoint is built from, so that replacing them reruns its fine-tuning."""
    spec = CheckpointSpec.from_config(wildcards.checkpoint, checkpoint_entry(wildcards))
    if spec.is_scratch:
        return [f"{spec.architecture}/config.json"]
    config_file = Path(spec.source) / "config.json"
    return [str(config_file)] if config_file.exists() else []


def finetune_params(wildcards):
    return FinetuneParams.resolve(config, wildcards.task, wildcards.checkpoint).to_dict()


def finetune_dir(pattern=""):
    return "results/{task}/finetune/{checkpoint}/{split}/seed{seed}/" + pattern


def metrics_files():
    return expand(
        "results/{task}/metrics/{checkpoint}/{split}/seed{seed}.json",
        **{"task": TASKS, "checkpoint": CHECKPOINTS, "split": SPLITS, "seed": SEEDS},
    )


def all_targets():
    return [
        "results/summary.csv",
        *expand("results/{task}/data/qc.json", task=TASKS),
        *expand("results/{task}/splits/{split}/seed{seed}.json", task=TASKS, split=SPLITS, seed=SEEDS),
    ]
