import os
import re
import sys
from pathlib import Path

from snakemake.utils import min_version

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


from chemlm import layout
from chemlm.config import FEATURE_BASELINES, ConfigError, Study, task_params
from chemlm.io import is_url, url_filename

# The config, validated once (one line naming the offending key), with the schema's defaults, as typed specs.
# Everything below reads STUDY, never `config`; paths come from chemlm.layout.
try:
    STUDY = Study.from_config(config)
    # Each library's shards: its rows are counted now, so the plan (and a dry run) has every shard's jobs.
    LIBRARY_SHARDS = {
        library: range(STUDY.predict.shards(library))
        for library in (STUDY.predict.libraries if STUDY.predict else ())
    }
except ConfigError as error:
    sys.exit(f"Config error: {error}")

# ChemBERTa-2's config and tokenizer files, and the 199 descriptors its MTR model regresses: part of the workflow.
CHEMBERTA2_ARCHITECTURE = str(
    Path(workflow.basedir) / "resources" / "chemberta2-architecture"
)
MTR_DESCRIPTORS = str(
    Path(workflow.basedir) / "resources" / "chemberta2-mtr-descriptors.json"
)


def one_of(names):
    """A wildcard constraint that matches exactly these names (`v1.5` matches only itself, not `v1x5`)."""
    return "|".join(re.escape(str(name)) for name in names) or "(?!)"


# The baselines the `baseline` rule trains on a feature file; chemprop has its own rule.
FEATURE_BASELINE = one_of(
    [baseline for baseline in STUDY.baselines if baseline in FEATURE_BASELINES]
)


# The models whose embeddings are projected: the checkpoints and chemprop (the project and separation rules' `checkpoint`).
EMBEDDED_MODEL = one_of(STUDY.embedded_models)


# `checkpoint` is a Snakemake keyword, so that wildcard is named through a dict.
wildcard_constraints:
    **{
        "task": one_of(STUDY.tasks),
        "checkpoint": one_of(STUDY.checkpoints),
        "baseline": one_of(STUDY.baselines),
        "model": one_of(STUDY.models),
        "method": one_of(STUDY.projections),
        "split": one_of(STUDY.splits),
        "instance": one_of(STUDY.instance_names),
        "seed": r"\d+",
        "trial": r"\d+",
        "figure": one_of(layout.REPORT_FIGURES),
        "pretrained": one_of(STUDY.pretrained),
        "objective": one_of({spec.objective for spec in STUDY.pretrained.values()}),
        "size": one_of({spec.size for spec in STUDY.pretrained.values()}),
        "library": one_of(STUDY.predict.libraries if STUDY.predict else ()),
        "shard": r"\d+",
        # the configured ONNX engine alone (config predict.engine); none with torch
        "engine": one_of(
            (STUDY.predict.engine,)
            if STUDY.predict and STUDY.predict.engine != "torch"
            else ()
        ),
    },


# ---- What rules hand their scripts: specs as dicts with keys in a fixed order (canonical params)


def task_of(wildcards):
    return task_params(STUDY.tasks[wildcards.task])


def checkpoint_of(wildcards):
    """The checkpoint as fine-tuning loads it (`pretrained:<name>` becomes the pretrain rule's model folder),
    without its `finetune` overrides (the rules read those as `hyperparameters`).
    """
    return layout.checkpoint_to_load(STUDY, wildcards.checkpoint).to_dict()


def finetune_params(wildcards):
    return STUDY.finetune_params(wildcards.task, wildcards.checkpoint).to_dict()


def trial_params(wildcards):
    return STUDY.trial_params(
        wildcards.task, wildcards.checkpoint, int(wildcards.trial)
    ).to_dict()


def search_trial_results(wildcards):
    trials = len(STUDY.search_trials(wildcards.task, wildcards.checkpoint))
    return [
        layout.trial_file("json", trial=trial, seed=seed)
        for trial in range(trials)
        for seed in STUDY.search.seeds
    ]


def variant_inputs(wildcards):
    """The SMILES variants, where this checkpoint's fine-tuning (or a trial of its search) reads them."""
    if STUDY.uses_variants(wildcards.task, wildcards.checkpoint):
        return {"variants": layout.data_file("variants.csv")}
    return {}


def finetune_inputs(wildcards):
    """The folds and the checkpoint's files; with a search, the chosen trial (whose settings replace the config's)."""
    inputs = {
        **fold_inputs(wildcards),
        "checkpoint_files": checkpoint_files(wildcards),
        **variant_inputs(wildcards),
    }
    if STUDY.searched(wildcards.task, wildcards.checkpoint):
        inputs["search"] = layout.search_file("best.json")
    return inputs


def pretrain_spec(wildcards):
    spec = STUDY.pretrained[wildcards.pretrained]
    if (spec.objective, spec.size) != (wildcards.objective, wildcards.size):
        raise ValueError(
            f"pretrain.models.{spec.name} is {spec.objective}-{spec.size}: its results are in {spec.output_dir}"
        )
    return spec.to_dict()


# ---- Inputs


def task_source(wildcards):
    """A URL source is downloaded once into resources/; a path is read where it is."""
    source = STUDY.tasks[wildcards.task].source
    return (
        layout.download(wildcards.task, url_filename(source))
        if is_url(source)
        else source
    )


def folder_files(folder):
    """Every file in a local folder (none for a Hub id): replacing one reruns the jobs that read the folder."""
    path = Path(folder)
    if not path.is_dir():
        return []
    return sorted(
        str(item)
        for item in path.rglob("*")
        if item.is_file()
        and not any(part.startswith(".") for part in item.relative_to(path).parts)
    )


def checkpoint_files(wildcards):
    """What a checkpoint is built from: the pre-trained model folder, or every file of a local (or scratch
    architecture) folder, weights and tokenizer included."""
    model = STUDY.pretrained_model(wildcards.checkpoint)
    if model is not None:
        return [layout.pretrain_file("model", model.objective, model.size, model.name)]
    spec = STUDY.checkpoints[wildcards.checkpoint]
    return folder_files(spec.architecture if spec.is_scratch else spec.source)


def instance_of(wildcards):
    """The split instance a job reads: its own, or for a search trial that of its seed (searches run on single splits)."""
    return wildcards.instance if "instance" in wildcards.keys() else int(wildcards.seed)


def model_seed(wildcards):
    """The seed of the model trained on the job's split instance."""
    return STUDY.instance(wildcards.split, wildcards.instance).seed


def split_instance(wildcards):
    return STUDY.instance(wildcards.split, wildcards.instance).to_dict()


def instance_names(wildcards):
    return [instance.name for instance in STUDY.instances(wildcards.split)]


def baseline_search(wildcards):
    """(trials, Sobol seed) of the baseline's search on the validation fold, or None."""
    search = STUDY.baseline_search(wildcards["baseline"])
    return list(search) if search else None


def baseline_features(wildcards):
    return layout.baseline_features(wildcards.baseline)


def fold_inputs(wildcards):
    return {
        "molecules": layout.data_file("molecules.csv"),
        "split": layout.split_file("csv", instance=instance_of(wildcards)),
    }


def split_inputs(wildcards):
    """The molecules, and for a cluster cross-validation their Butina clusters, for a predefined split their folds."""
    inputs = {"molecules": layout.data_file("molecules.csv")}
    if wildcards.split == "cluster_cv":
        inputs["clusters"] = layout.data_file("clusters.csv")
    if wildcards.split == "predefined":
        inputs["predefined"] = layout.data_file("predefined_folds.csv")
        inputs["predefined_found"] = layout.data_file("predefined_folds.json")
    return inputs


def explained_models(wildcards):
    """The first split instance's fine-tuned model folders, stored fingerprint baselines and chemprop folder, and
    LightGBM's descriptor list: what explaining a task's split reads."""
    first = STUDY.instances(wildcards.split)[0]
    inputs = {"molecules": layout.data_file("molecules.csv")}
    for checkpoint in STUDY.checkpoints:
        inputs[f"transformer_{checkpoint}"] = layout.finetune_file(
            "model", wildcards.task, checkpoint, wildcards.split, first
        )
    for baseline in STUDY.feature_baselines:
        inputs[f"baseline_{baseline}"] = layout.baseline_file(
            "model.skops", wildcards.task, baseline, wildcards.split, first
        )
    if "chemprop" in STUDY.baselines:
        inputs["chemprop"] = layout.baseline_file(
            "model", wildcards.task, "chemprop", wildcards.split, first
        )
    if "lgbm" in STUDY.baselines:
        inputs["descriptor_names"] = MTR_DESCRIPTORS
    return inputs


def explain_inputs(wildcards):
    """The models to explain, every model's predictions of the first split instance and, where the study scores
    libraries, every model's library predictions (to choose the molecules)."""
    first = STUDY.instances(wildcards.split)[0]
    inputs = explained_models(wildcards)
    for model in STUDY.models:
        inputs[f"predictions_{model}"] = layout.predictions(
            wildcards.task, model, wildcards.split, first, STUDY.is_baseline(model)
        )
    tops = library_top_predictions(wildcards)
    if tops:
        inputs["libraries"] = list(tops.values())
    return inputs


def library_top_predictions(wildcards):
    """Where the study scores libraries for this task and split: each (library, model)'s predictions file, by
    "<library>/<model>" (the explain rule's candidates, beside the test molecules)."""
    predict = STUDY.predict
    if (
        not predict
        or wildcards.task not in predict.tasks
        or wildcards.split not in predict.splits
    ):
        return {}
    return {
        f"{library}/{model}": layout.library_predictions(
            wildcards.task, library, wildcards.split, model
        )
        for library in predict.libraries
        for model in predict.models
    }


def check_attribution_inputs(wildcards):
    """The models to explain, and the first split instance's folds (its positive test molecules are scored)."""
    return {
        **explained_models(wildcards),
        "split": layout.split_file(
            "csv", wildcards.task, wildcards.split, STUDY.instances(wildcards.split)[0]
        ),
    }


def predefined_fold_inputs(wildcards):
    """The molecules, the task's table (read for a fold column) and its fold files."""
    folds = STUDY.tasks[wildcards.task].folds
    return {
        "molecules": layout.data_file("molecules.csv"),
        "source": task_source(wildcards),
        **{f"fold_{fold}": path for fold, path in folds.files},
    }


def model_predictions(wildcards):
    """The predictions a model's metrics come from: a baseline's or a fine-tuned checkpoint's."""
    return layout.predictions(
        wildcards.task,
        wildcards.model,
        wildcards.split,
        wildcards.instance,
        STUDY.is_baseline(wildcards.model),
    )


def embed_inputs(wildcards):
    """What the checkpoint is built from (zero-shot) and the fine-tuned model folder."""
    return {
        **fold_inputs(wildcards),
        "checkpoint_files": checkpoint_files(wildcards),
        "model": layout.finetune_file("model"),
    }


def separation_inputs(wildcards):
    """Both stages' embeddings and the labels."""
    return {
        "zeroshot": layout.embeddings(stage="zeroshot"),
        "finetuned": layout.embeddings(stage="finetuned"),
        "molecules": layout.data_file("molecules.csv"),
    }


def projection_inputs(wildcards):
    """Both stages' embeddings and the labels; binary tasks also the predictions and threshold for TP/FP/TN/FN."""
    inputs = separation_inputs(wildcards)
    if STUDY.task_type(wildcards.task).value == "binary":
        inputs["predictions"] = layout.predictions(
            wildcards.task,
            wildcards.checkpoint,
            wildcards.split,
            wildcards.instance,
            STUDY.is_baseline(wildcards.checkpoint),
        )
        inputs["metrics"] = layout.metrics(model="{checkpoint}")
    return inputs


def metrics_files():
    return [
        layout.metrics(task, model, split, instance)
        for task in STUDY.tasks
        for model in STUDY.models
        for split in STUDY.splits
        for instance in STUDY.instances(split)
    ]


def pretrain_corpus_inputs(wildcards):
    """The corpus and every task's molecules, which are kept out of it (whatever the split methods and seeds)."""
    inputs = {"corpus": STUDY.corpus_path, "task_molecules": []}
    if STUDY.corpus.exclude_task_molecules:
        inputs["task_molecules"] = [
            layout.data_file("molecules.csv", task) for task in STUDY.tasks
        ]
    return inputs


def pretrain_inputs(wildcards):
    inputs = {
        "smiles": layout.CORPUS_SMILES,
        "architecture": CHEMBERTA2_ARCHITECTURE,
    }
    if STUDY.pretrained[wildcards.pretrained].objective == "mtr":
        inputs["descriptors"] = layout.CORPUS_DESCRIPTORS
    return inputs


def library_of(wildcards):
    return STUDY.predict.libraries[wildcards.library].to_dict()


def library_source(wildcards):
    return STUDY.predict.libraries[wildcards.library].source


def shard_rows_of(wildcards):
    """[start, stop) of the job's library shard (stop None: to the end of the file)."""
    return list(STUDY.predict.shard_rows(wildcards.library, int(wildcards.shard)))


def library_shard_qcs(wildcards):
    return [
        layout.library_shard_file("qc.json", shard=shard)
        for shard in LIBRARY_SHARDS[wildcards.library]
    ]


def library_similarity_inputs(wildcards):
    """The task's molecules, fingerprints and every split instance (their training folds), and the shard's bits."""
    return {
        "molecules": layout.data_file("molecules.csv"),
        "splits": [
            layout.split_file("csv", instance=instance)
            for instance in STUDY.instances(wildcards.split)
        ],
        "fingerprints": layout.data_file("ecfp4.npz"),
        "library": layout.library_shard_file("ecfp4.npy"),
    }


def predict_inputs(wildcards):
    """Every split instance's model folder of the checkpoint (or its export for `predict.engine`), the library shard
    and its similarity to the training fold."""
    return {
        "models": [
            layout.scoring_model(STUDY.predict.engine, instance=instance)
            for instance in STUDY.instances(wildcards.split)
        ],
        "library": layout.library_shard_file("molecules.csv.gz"),
        "similarity": layout.library_similarity(),
    }


def predict_baseline_inputs(wildcards):
    """The baseline's stored models and calibrations of every split instance, the library shard and its similarity."""
    instances = STUDY.instances(wildcards.split)
    return {
        "models": [
            layout.baseline_file("model.skops", instance=instance)
            for instance in instances
        ],
        "calibrations": [
            layout.baseline_file("calibration.json", instance=instance)
            for instance in instances
        ],
        "library": layout.library_shard_file("molecules.csv.gz"),
        "library_features": layout.library_features(wildcards.baseline),
        "similarity": layout.library_similarity(),
    }


def predict_chemprop_inputs(wildcards):
    """chemprop's model folders of every split instance (each with its calibration), the library shard and its
    similarity."""
    return {
        "models": [
            layout.baseline_file("model", baseline="chemprop", instance=instance)
            for instance in STUDY.instances(wildcards.split)
        ],
        "library": layout.library_shard_file("molecules.csv.gz"),
        "similarity": layout.library_similarity(),
    }


def shard_predictions(wildcards):
    """A model's scores of every shard of the library, in shard order."""
    return [
        layout.shard_predictions(shard=shard)
        for shard in LIBRARY_SHARDS[wildcards.library]
    ]


def report_calibration_inputs(wildcards):
    return layout.calibration_inputs(STUDY, wildcards.task, wildcards.split)


def report_uncertainty_inputs(wildcards):
    return layout.uncertainty_inputs(STUDY, wildcards.task, wildcards.split)


def report_figure_inputs(wildcards):
    return layout.report_figure_inputs(STUDY, wildcards.task, wildcards.split)


def report_inputs(wildcards):
    return layout.report_inputs(STUDY)


def all_targets():
    """The report: its rules declare every other result as input."""
    return [layout.REPORT_HTML, layout.REPORT_MARKDOWN]
