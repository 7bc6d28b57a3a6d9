import os
import sys
from pathlib import Path

from snakemake.utils import min_version, validate

min_version("9.0")

# Scripts run in their own processes (and conda envs): they find the package through PYTHONPATH, which
# `envvars` also hands to jobs that Snakemake starts on other machines.
PACKAGE_DIR = str(Path(workflow.basedir) / "src")
sys.path.insert(0, PACKAGE_DIR)
os.environ["PYTHONPATH"] = os.pathsep.join(
    filter(None, [PACKAGE_DIR, os.environ.get("PYTHONPATH")])
)


envvars:
    "PYTHONPATH",


from chemlm.config import (
    CheckpointSpec,
    FinetuneParams,
    PretrainSpec,
    describe_config_error,
    describe_name_clash,
    load_schema,
    pretrained_model_dir,
)
from chemlm.data.ingest import is_url, url_filename


def check_config():
    """Stop with one line naming the offending key; then let Snakemake fill in the schema's defaults."""
    problem = describe_config_error(config, load_schema())
    if problem:
        sys.exit(f"Config error: {problem}")
    validate(config, "../config/schema/config.schema.yaml")
    for name, entry in config["checkpoints"].items():
        try:
            spec = CheckpointSpec.from_config(name, entry)
            if spec.pretrained_name:
                pretrained_model_dir(config, spec)
        except ValueError as error:
            sys.exit(f"Config error: {error}")
    clash = describe_name_clash(config)
    if clash:
        sys.exit(f"Config error: {clash}")


check_config()

TASKS = list(config["tasks"])
CHECKPOINTS = list(config["checkpoints"])
SPLITS = config["split"]["methods"]
SEEDS = config["seeds"]
BASELINES = config["baselines"]
# What has metrics files: fine-tuned checkpoints and fingerprint baselines (their names never clash).
MODELS = CHECKPOINTS + BASELINES
PROJECTIONS = config["project"]["methods"]


# `checkpoint` is a Snakemake keyword, so that wildcard is named through dicts here and in expand().
wildcard_constraints:
    **{
        "task": "|".join(TASKS),
        "checkpoint": "|".join(CHECKPOINTS),
        "baseline": "|".join(BASELINES),
        "model": "|".join(MODELS),
        "stage": "zeroshot|finetuned",
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
    """The checkpoint's config entry; a `pretrained:<name>` source becomes the folder the pretrain rule writes.
    Without its `finetune` overrides (they reach fine-tuning through finetune_params), so that changing them does not
    rerun the checkpoint's zero-shot embeddings."""
    entry = {
        key: value
        for key, value in config["checkpoints"][wildcards.checkpoint].items()
        if key != "finetune"
    }
    spec = CheckpointSpec.from_config(wildcards.checkpoint, entry)
    if spec.pretrained_name:
        return {**entry, "source": pretrained_model_dir(config, spec)}
    return entry


def checkpoint_files(wildcards):
    """Local files a checkpoint is built from: replacing them (or pre-training it again) reruns its fine-tuning."""
    entry = config["checkpoints"][wildcards.checkpoint]
    spec = CheckpointSpec.from_config(wildcards.checkpoint, entry)
    if spec.pretrained_name:
        return [pretrained_model_dir(config, spec)]
    if spec.is_scratch:
        return [f"{spec.architecture}/config.json"]
    config_file = Path(spec.source) / "config.json"
    return [str(config_file)] if config_file.exists() else []


def finetune_params(wildcards):
    return FinetuneParams.resolve(
        config, wildcards.task, wildcards.checkpoint
    ).to_dict()


def finetune_dir(pattern=""):
    return os.path.join(
        "results/{task}/finetune/{checkpoint}/{split}/seed{seed}", pattern
    )


def baseline_dir(pattern=""):
    return os.path.join(
        "results/{task}/baselines/{baseline}/{split}/seed{seed}", pattern
    )


def embeddings_dir(pattern=""):
    return os.path.join(
        "results/{task}/embeddings/{checkpoint}/{split}/seed{seed}", pattern
    )


def projection_dir(pattern=""):
    return os.path.join(
        "results/{task}/projections/{checkpoint}/{split}/seed{seed}", pattern
    )


def model_predictions(wildcards):
    """The predictions a model's metrics come from: a baseline's or a fine-tuned checkpoint's."""
    run = {"task": wildcards.task, "split": wildcards.split, "seed": wildcards.seed}
    if wildcards.model in BASELINES:
        return baseline_dir("predictions.csv").format(baseline=wildcards.model, **run)
    return finetune_dir("predictions.csv").format(checkpoint=wildcards.model, **run)


def embed_inputs(wildcards):
    """Zero-shot: what the checkpoint is built from; fine-tuned: the fine-tuned model folder."""
    inputs = {
        "molecules": "results/{task}/data/molecules.csv",
        "split": "results/{task}/splits/{split}/seed{seed}.csv",
    }
    if wildcards.stage == "finetuned":
        return {**inputs, "model": finetune_dir("model")}
    return {**inputs, "checkpoint_files": checkpoint_files(wildcards)}


def projection_inputs(wildcards):
    """Both stages' embeddings and the labels; binary tasks also the predictions and threshold for TP/FP/TN/FN."""
    inputs = {
        "zeroshot": embeddings_dir("zeroshot.npz"),
        "finetuned": embeddings_dir("finetuned.npz"),
        "molecules": "results/{task}/data/molecules.csv",
    }
    if task_entry(wildcards)["type"] == "binary":
        inputs["predictions"] = finetune_dir("predictions.csv")
        inputs["metrics"] = (
            "results/{task}/metrics/{checkpoint}/{split}/seed{seed}.json"
        )
    return inputs


def metrics_files():
    return expand(
        "results/{task}/metrics/{model}/{split}/seed{seed}.json",
        task=TASKS,
        model=MODELS,
        split=SPLITS,
        seed=SEEDS,
    )


def projection_files():
    return expand(
        projection_dir("separation.json"),
        **{"task": TASKS, "checkpoint": CHECKPOINTS, "split": SPLITS, "seed": SEEDS},
    )


def report_figures():
    return expand(
        "results/report/figures/{task}/{split}/{figure}.png",
        task=TASKS,
        split=SPLITS,
        figure=["test_curves", "learning_curves"],
    )


def report_inputs(wildcards):
    """Everything else the workflow makes, so that the report comes last and shows all of it."""
    return {
        "summary": "results/summary.csv",
        "per_seed": "results/metrics.csv",
        "figures": report_figures(),
        "results": [
            target
            for target in all_targets()
            if not target.startswith("results/report/")
        ],
    }


def all_targets():
    return [
        "results/summary.csv",
        *metrics_files(),
        *projection_files(),
        *expand("results/{task}/data/qc.json", task=TASKS),
        *expand(
            "results/{task}/splits/{split}/seed{seed}.json",
            task=TASKS,
            split=SPLITS,
            seed=SEEDS,
        ),
        *pretrain_targets(),
        "results/report/index.html",
        "results/report/summary.md",
    ]


# ---- Pre-training (rules/pretrain.smk)

# ChemBERTa-2's config and tokenizer files, and the 199 descriptors its MTR model regresses: part of the workflow.
CHEMBERTA2_ARCHITECTURE = str(
    Path(workflow.basedir) / "resources" / "chemberta2-architecture"
)
MTR_DESCRIPTORS = str(
    Path(workflow.basedir) / "resources" / "chemberta2-mtr-descriptors.json"
)
PRETRAIN = config.get("pretrain", {})
PRETRAIN_MODELS = PRETRAIN.get("models", {})


def pretrain_spec(wildcards):
    return PretrainSpec.from_config(
        wildcards.pretrained, PRETRAIN_MODELS[wildcards.pretrained]
    )


def pretrain_corpus_inputs(wildcards):
    """The corpus and, to keep their test molecules out of it, every task's (molecules, split) pairs in matching order."""
    folds = [
        (task, split, seed) for task in TASKS for split in SPLITS for seed in SEEDS
    ]
    if not PRETRAIN["remove_test_overlap"]:
        folds = []
    return {
        "corpus": PRETRAIN["corpus"],
        "test_molecules": [
            f"results/{task}/data/molecules.csv" for task, _, _ in folds
        ],
        "test_splits": [
            f"results/{task}/splits/{split}/seed{seed}.csv"
            for task, split, seed in folds
        ],
    }


def pretrain_inputs(wildcards):
    spec = pretrain_spec(wildcards)
    if (spec.objective, spec.size) != (wildcards.objective, wildcards.size):
        raise ValueError(
            f"pretrain.models.{spec.name} is {spec.objective}-{spec.size}: its results are in {spec.output_dir}"
        )
    inputs = {
        "smiles": "results/pretrain/corpus/smiles.csv",
        "architecture": CHEMBERTA2_ARCHITECTURE,
    }
    if spec.objective == "mtr":
        inputs["descriptors"] = "results/pretrain/corpus/descriptors.npz"
    return inputs


def pretrain_targets():
    return [
        f"{PretrainSpec.from_config(name, entry).output_dir}/history.csv"
        for name, entry in PRETRAIN_MODELS.items()
    ]
