"""Where every file of a workflow run lives, relative to the working directory: the one place that says so.

Each function takes the wildcard values of a path; called without them, it returns the Snakemake pattern with
`{task}`, `{checkpoint}`, ... in their places, which is how rules/common.smk uses it. The report and the tests call
the same functions with values. `workflow_jobs` lists every job a study runs, with its wildcards, so that the files
each job leaves (its log and benchmark) can be named before they exist.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

from chemlm.folds import SplitInstance
from chemlm.io import is_url, url_filename
from chemlm.tasks import RULE_TASK_TABLE

if TYPE_CHECKING:
    from chemlm.config import CheckpointSpec, Study

TASK, CHECKPOINT, BASELINE, MODEL = "{task}", "{checkpoint}", "{baseline}", "{model}"
SPLIT, INSTANCE, SEED, METHOD = "{split}", "{instance}", "{seed}", "{method}"
OBJECTIVE, SIZE, PRETRAINED, FIGURE, LIBRARY = "{objective}", "{size}", "{pretrained}", "{figure}", "{library}"
SHARD = "{shard}"

REPORT_FIGURES = ("test_curves", "learning_curves")
CALIBRATED_TYPES = ("binary", "multilabel")

SUMMARY = "results/summary.csv"
PER_INSTANCE = "results/metrics.csv"
# Every pair of models compared over the split instances, per task, split and metric (chemlm.comparison).
COMPARISON = "results/comparison.csv"
# The models' ranks over tasks and splits, with their critical-difference diagram.
RANKS = "results/report/figures/ranks.png"
REPORT_HTML = "results/report/index.html"
REPORT_MARKDOWN = "results/report/summary.md"
CORPUS_SMILES = "results/pretrain/corpus/smiles.csv"
CORPUS_QC = "results/pretrain/corpus/qc.json"
CORPUS_DESCRIPTORS = "results/pretrain/corpus/descriptors.npz"
CORPUS_DESCRIPTORS_QC = "results/pretrain/corpus/descriptors.json"
# What makes a folder a chemprop model folder (chemlm.models.mpnn): its description beside the weights.
CHEMPROP_DESCRIPTION = "chemprop.json"

# The wildcards that name one job of each rule: its log is logs/<rule>/<name>.log and its benchmark
# benchmarks/<rule>/<name>.tsv; rules with one job have logs/<rule>.log and benchmarks/<rule>.tsv.
JOB_NAMES: dict[str, str | None] = {
    "download_dataset": "{task}/{filename}",
    "ingest": "{task}",
    "featurize": "{task}",
    "augment": "{task}",
    "split": "{task}/{split}/{instance}",
    "fingerprints": "{task}",
    "descriptors": "{task}",
    "cluster": "{task}",
    "predefined_folds": "{task}",
    "baseline": "{task}/{baseline}/{split}/{instance}",
    "baseline_model": "{task}/{baseline}/{split}/{instance}",
    "chemprop": "{task}/{split}/{instance}",
    "pretrain_corpus": None,
    "pretrain_descriptors": None,
    "pretrain": "{objective}-{size}/{pretrained}",
    "search_trial": "{task}/{checkpoint}/{split}/trial{trial}/seed{seed}",
    "search_select": "{task}/{checkpoint}/{split}",
    "report_search": "{task}/{split}",
    "finetune": "{task}/{checkpoint}/{split}/{instance}",
    "export_onnx": "{task}/{checkpoint}/{split}/{instance}/{engine}",
    "evaluate": "{task}/{model}/{split}/{instance}",
    "summarize": None,
    "compare": None,
    "embed": "{task}/{checkpoint}/{split}/{instance}",
    "embed_chemprop": "{task}/{split}/{instance}",
    "project": "{task}/{checkpoint}/{split}/{instance}/{method}",
    "separation": "{task}/{checkpoint}/{split}/{instance}",
    "test_similarity": "{task}/{split}/{instance}",
    "library": "{library}/{shard}",
    "library_descriptors": "{library}/{shard}",
    "library_qc": "{library}",
    "library_similarity": "{task}/{library}/{split}/{shard}",
    "predict": "{task}/{library}/{split}/{checkpoint}/{shard}",
    "predict_baseline": "{task}/{library}/{split}/{baseline}/{shard}",
    "predict_chemprop": "{task}/{library}/{split}/{shard}",
    "merge_predictions": "{task}/{library}/{split}/{model}",
    "depict_predictions": "{task}/{library}/{split}/{model}",
    "explain": "{task}/{split}",
    "check_attributions": "{task}/{split}",
    "rule_task": "{name}",
    "report_figures": "{task}/{split}",
    "report_calibration": "{task}/{split}",
    "report_uncertainty": "{task}/{split}",
    "report": None,
}


def _job_file(folder: str, extension: str, rule: str, wildcards: dict[str, object]) -> str:
    name = JOB_NAMES[rule]
    if name is None:
        return f"{folder}/{rule}.{extension}"
    return f"{folder}/{rule}/{name.format_map(wildcards) if wildcards else name}.{extension}"


def log(rule: str, **wildcards: object) -> str:
    return _job_file("logs", "log", rule, wildcards)


def benchmark(rule: str, **wildcards: object) -> str:
    return _job_file("benchmarks", "tsv", rule, wildcards)


def instance_name(instance: object) -> str:
    """A split instance's path segment: a seed number is a single split's `seed<n>`; a name (`repeat0-fold1`,
    `seed0`) or the `{instance}` wildcard stays as it is; a SplitInstance gives its name."""
    if isinstance(instance, SplitInstance):
        return instance.name
    return f"seed{instance}" if isinstance(instance, int) else str(instance)


# ---- data

def download(task: str = TASK, filename: str = "{filename}") -> str:
    """A task's CSV downloaded from its URL (tasks with a local path are read where they are)."""
    return f"resources/datasets/{task}/{filename}"


def data_file(name: str, task: str = TASK) -> str:
    """results/{task}/data/: table.csv, molecules.csv, qc.json, invalid.csv, duplicates.csv, ecfp4.npz."""
    return f"results/{task}/data/{name}"


def baseline_features(baseline: str = BASELINE, task: str = TASK) -> str:
    """The features a baseline trains on: ECFP4 counts and RDKit descriptors for LightGBM, else ECFP4 bits."""
    return data_file("descriptors.npz" if baseline == "lgbm" else "ecfp4.npz", task)


def split_file(extension: str, task: str = TASK, split: str = SPLIT, instance: object = INSTANCE) -> str:
    """The fold of every molecule (csv) or the split's sizes and label balance (json)."""
    return f"results/{task}/splits/{split}/{instance_name(instance)}.{extension}"


# ---- pre-training

def pretrain_dir(objective: str = OBJECTIVE, size: str = SIZE, pretrained: str = PRETRAINED) -> str:
    return f"results/pretrain/{objective}-{size}/{pretrained}"


def pretrain_file(name: str, objective: str = OBJECTIVE, size: str = SIZE, pretrained: str = PRETRAINED) -> str:
    """model (the folder), history.csv, run.json; resume-state is not an output, so a killed job keeps it."""
    return f"{pretrain_dir(objective, size, pretrained)}/{name}"


# ---- models and their results

def finetune_file(name: str, task: str = TASK, checkpoint: str = CHECKPOINT, split: str = SPLIT, instance: object = INSTANCE) -> str:
    """model (the folder), history.csv, predictions.csv, run.json, resume-state."""
    return f"results/{task}/finetune/{checkpoint}/{split}/{instance_name(instance)}/{name}"


def exported_model(engine: str = "{engine}", task: str = TASK, checkpoint: str = CHECKPOINT, split: str = SPLIT,
                   instance: object = INSTANCE) -> str:
    """The model folder exported for an ONNX engine (onnx, onnx-int8; chemlm.export): beside the model folder, which
    is the fine-tuning job's output and so cannot hold another job's files."""
    return finetune_file(engine, task, checkpoint, split, instance)


def scoring_model(engine: str, task: str = TASK, checkpoint: str = CHECKPOINT, split: str = SPLIT, instance: object = INSTANCE) -> str:
    """The folder that scores libraries with `engine` (config `predict.engine`): the model folder, or its export."""
    if engine == "torch":
        return finetune_file("model", task, checkpoint, split, instance)
    return exported_model(engine, task, checkpoint, split, instance)


def search_file(name: str, task: str = TASK, checkpoint: str = CHECKPOINT, split: str = SPLIT) -> str:
    """best.json: the trial whose settings every seed is fine-tuned with."""
    return f"results/{task}/search/{checkpoint}/{split}/{name}"


def trial_file(extension: str, task: str = TASK, checkpoint: str = CHECKPOINT, split: str = SPLIT, trial: object = "{trial}",
               seed: object = SEED) -> str:
    """One search trial fine-tuned with one seed: its validation score (json), or its training state while it runs
    (resume-state, not an output, so a killed trial resumes)."""
    return f"results/{task}/search/{checkpoint}/{split}/trial{trial}/seed{seed}.{extension}"


def baseline_file(name: str, task: str = TASK, baseline: str = BASELINE, split: str = SPLIT, instance: object = INSTANCE) -> str:
    """predictions.csv, calibration.json, settings.json; model.skops (a feature baseline stored to score libraries);
    chemprop's model (the folder) and history.csv."""
    return f"results/{task}/baselines/{baseline}/{split}/{instance_name(instance)}/{name}"


def baseline_predictions(task: str = TASK, baseline: str = BASELINE, split: str = SPLIT, instance: object = INSTANCE) -> str:
    return baseline_file("predictions.csv", task, baseline, split, instance)


def run_file(name: str, task: str, model: str, split: str, instance: object, is_baseline: bool) -> str:
    """A model's run file (predictions.csv, calibration.json): a baseline's or a fine-tuned checkpoint's."""
    if is_baseline:
        return baseline_file(name, task, model, split, instance)
    return finetune_file(name, task, model, split, instance)


def predictions(task: str, model: str, split: str, instance: object, is_baseline: bool) -> str:
    """The predictions a model's metrics come from."""
    return run_file("predictions.csv", task, model, split, instance, is_baseline)


def metrics(task: str = TASK, model: str = MODEL, split: str = SPLIT, instance: object = INSTANCE) -> str:
    return f"results/{task}/metrics/{model}/{split}/{instance_name(instance)}.json"


def embeddings(task: str = TASK, checkpoint: str = CHECKPOINT, split: str = SPLIT, instance: object = INSTANCE, *, stage: str) -> str:
    """A model's test-set embeddings before (`zeroshot`) or after (`finetuned`) fine-tuning."""
    return f"results/{task}/embeddings/{checkpoint}/{split}/{instance_name(instance)}/{stage}.npz"


def projection(
    extension: str, task: str = TASK, checkpoint: str = CHECKPOINT, split: str = SPLIT, instance: object = INSTANCE, method: str = METHOD
) -> str:
    """A projection's coordinates (csv) or figure (png)."""
    return f"results/{task}/projections/{checkpoint}/{split}/{instance_name(instance)}/{method}.{extension}"


def separation(task: str = TASK, checkpoint: str = CHECKPOINT, split: str = SPLIT, instance: object = INSTANCE) -> str:
    return f"results/{task}/projections/{checkpoint}/{split}/{instance_name(instance)}/separation.json"


def test_similarity(task: str = TASK, split: str = SPLIT, instance: object = INSTANCE) -> str:
    """Each test molecule's highest Tanimoto similarity to that seed's training fold, and its neighbour."""
    return f"results/{task}/similarity/{split}/{instance_name(instance)}.csv"


def library_qc(library: str = LIBRARY) -> str:
    """A library's counts of rows, valid and invalid ones, over all its shards."""
    return f"results/libraries/{library}/qc.json"


def library_shard_file(name: str, library: str = LIBRARY, shard: object = SHARD) -> str:
    """A library shard's rows (molecules.csv.gz), packed ECFP4 bits (ecfp4.npy) and counts (qc.json)."""
    return f"results/libraries/{library}/shards/{shard}/{name}"


def library_features(baseline: str = BASELINE, library: str = LIBRARY, shard: object = SHARD) -> str:
    """The features a baseline scores a library shard with (as `baseline_features` for its task's molecules)."""
    return library_shard_file("descriptors.npz" if baseline == "lgbm" else "ecfp4.npy", library, shard)


def library_similarity(task: str = TASK, library: str = LIBRARY, split: str = SPLIT, shard: object = SHARD) -> str:
    """A library shard's similarity to the task's training folds."""
    return f"results/{task}/predictions/{library}/{split}/shards/{shard}/similarity.csv.gz"


def shard_predictions(task: str = TASK, library: str = LIBRARY, split: str = SPLIT, model: str = MODEL, shard: object = SHARD) -> str:
    """A library shard's scores by one model; merged in shard order into `library_predictions`."""
    return f"results/{task}/predictions/{library}/{split}/shards/{shard}/{model}.csv.gz"


def library_predictions(task: str = TASK, library: str = LIBRARY, split: str = SPLIT, model: str = MODEL) -> str:
    """A library's scores by one model, one row per input row, in input order."""
    return f"results/{task}/predictions/{library}/{split}/{model}.csv.gz"


def rule_task(name: str = "{name}") -> str:
    """The table a `rule_tasks` entry writes (chemlm.explain.ground_truth), which the task of its name reads."""
    return RULE_TASK_TABLE.format(name=name)


def explain_file(name: str, task: str = TASK, split: str = SPLIT) -> str:
    """selected.csv, atoms.csv, explanations.csv and explanations.png of a task's split (chemlm.explain); for a rule
    task, atom_auroc.csv and attribution_check.csv."""
    return f"results/{task}/explain/{split}/{name}"


def report_figure(task: str = TASK, split: str = SPLIT, figure: str = FIGURE, extension: str = "png") -> str:
    """A report figure (png) or the table drawn in it (csv): test_curves, learning_curves, calibration, uncertainty."""
    return f"results/report/figures/{task}/{split}/{figure}.{extension}"


def prediction_figure(task: str = TASK, split: str = SPLIT, library: str = LIBRARY, model: str = MODEL) -> str:
    """The top-ranked molecules of a library, drawn."""
    return f"results/report/figures/{task}/{split}/predictions/{library}/{model}.png"


def comparison_figures(study: Study) -> dict[tuple[str, str], str]:
    """The comparison figure of each task and split: pairs' intervals, mean differences, each model over the instances."""
    return {(task, split): report_figure(task, split, "comparison") for task in study.tasks for split in study.splits}


def checkpoint_to_load(study: Study, checkpoint: str) -> CheckpointSpec:
    """The checkpoint as fine-tuning loads it: a `pretrained:<name>` source becomes the folder pretrain writes."""
    spec = study.checkpoints[checkpoint]
    model = study.pretrained_model(checkpoint)
    return replace(spec, source=pretrain_file("model", model.objective, model.size, model.name)) if model else spec


# ---- every job of a study

def workflow_jobs(study: Study) -> Iterator[tuple[str, dict[str, object]]]:
    """(rule, wildcards) of every job the workflow runs for `study`, as rules/*.smk define them."""
    for task, spec in study.tasks.items():
        if is_url(spec.source):
            yield "download_dataset", {"task": task, "filename": url_filename(spec.source)}
        if task in study.rule_tasks:
            yield "rule_task", {"name": task}
        yield "ingest", {"task": task}
        yield "featurize", {"task": task}
        if any(study.uses_variants(task, checkpoint) for checkpoint in study.checkpoints):
            yield "augment", {"task": task}
        yield "fingerprints", {"task": task}
        if "lgbm" in study.baselines:
            yield "descriptors", {"task": task}
        if "cluster_cv" in study.splits:
            yield "cluster", {"task": task}
        if "predefined" in study.splits:
            yield "predefined_folds", {"task": task}
        for split in study.splits:
            yield "report_figures", {"task": task, "split": split}
            yield "report_uncertainty", {"task": task, "split": split}
            if spec.type.value in CALIBRATED_TYPES:
                yield "report_calibration", {"task": task, "split": split}
            for instance in study.instances(split):
                run = {"task": task, "split": split, "instance": instance.name}
                yield "split", run
                yield "test_similarity", run
                for baseline in study.baselines:
                    yield ("chemprop", run) if baseline == "chemprop" else ("baseline", {**run, "baseline": baseline})
                for model in study.models:
                    yield "evaluate", {**run, "model": model}
                for checkpoint in study.checkpoints:
                    yield "finetune", {**run, "checkpoint": checkpoint}
                if instance not in study.embedded_instances(split):
                    continue
                for model in study.embedded_models:
                    yield "separation", {**run, "checkpoint": model}
                    yield ("embed_chemprop", run) if model == "chemprop" else ("embed", {**run, "checkpoint": model})
                    for method in study.projections:
                        yield "project", {**run, "checkpoint": model, "method": method}
    yield from search_jobs(study)
    yield from prediction_jobs(study)
    yield from explain_jobs(study)
    if study.corpus is not None:
        yield "pretrain_corpus", {}
        if study.has_mtr:
            yield "pretrain_descriptors", {}
        for name, spec in study.pretrained.items():
            yield "pretrain", {"objective": spec.objective, "size": spec.size, "pretrained": name}
    yield "summarize", {}
    yield "compare", {}
    yield "report", {}


def searched_checkpoints(study: Study, task: str) -> list[str]:
    return [checkpoint for checkpoint in study.checkpoints if study.searched(task, checkpoint)]


def search_jobs(study: Study) -> Iterator[tuple[str, dict[str, object]]]:
    if study.search is None:
        return
    for task in study.tasks:
        if searched_checkpoints(study, task):
            for split in study.splits:
                yield "report_search", {"task": task, "split": split}
        for checkpoint in searched_checkpoints(study, task):
            for split in study.splits:
                run = {"task": task, "checkpoint": checkpoint, "split": split}
                yield "search_select", run
                for trial in range(len(study.search_trials(task, checkpoint))):
                    for seed in study.search.seeds:
                        yield "search_trial", {**run, "trial": trial, "seed": seed}


def prediction_jobs(study: Study) -> Iterator[tuple[str, dict[str, object]]]:
    predict = study.predict
    if predict is None:
        return
    for task in predict.tasks:
        for split in predict.splits:
            for baseline in predict.baselines:
                if baseline == "chemprop":
                    continue  # the chemprop rule keeps its model folders
                for instance in study.instances(split):
                    yield "baseline_model", {"task": task, "baseline": baseline, "split": split, "instance": instance.name}
            if predict.engine != "torch":
                for checkpoint in predict.checkpoints:
                    for instance in study.instances(split):
                        yield "export_onnx", {"task": task, "checkpoint": checkpoint, "split": split, "instance": instance.name,
                                              "engine": predict.engine}
    for library in predict.libraries:
        shards = range(predict.shards(library))
        yield "library_qc", {"library": library}
        yield from (("library", {"library": library, "shard": shard}) for shard in shards)
        if "lgbm" in predict.baselines:
            yield from (("library_descriptors", {"library": library, "shard": shard}) for shard in shards)
        for task in predict.tasks:
            for split in predict.splits:
                run = {"task": task, "library": library, "split": split}
                yield from (("library_similarity", {**run, "shard": shard}) for shard in shards)
                for model in predict.models:
                    if model == "chemprop":
                        scoring = ("predict_chemprop", run)
                    elif study.is_baseline(model):
                        scoring = ("predict_baseline", {**run, "baseline": model})
                    else:
                        scoring = ("predict", {**run, "checkpoint": model})
                    yield from ((scoring[0], {**scoring[1], "shard": shard}) for shard in shards)
                    yield "merge_predictions", {**run, "model": model}
                    yield "depict_predictions", {**run, "model": model}


def explain_jobs(study: Study) -> Iterator[tuple[str, dict[str, object]]]:
    """One explanation per task and split, and the stored fingerprint baselines of its first split instance that
    scoring libraries does not store already."""
    if study.explain is None:
        return
    predict = study.predict
    for task in study.tasks:
        for split in study.splits:
            yield "explain", {"task": task, "split": split}
            if task in study.rule_tasks:
                yield "check_attributions", {"task": task, "split": split}
            for baseline in study.feature_baselines:
                if predict is None or task not in predict.tasks or split not in predict.splits or baseline not in predict.baselines:
                    yield "baseline_model", {"task": task, "baseline": baseline, "split": split, "instance": study.instances(split)[0].name}


def search_report_inputs(study: Study) -> list[str]:
    """With a search: each checkpoint's best.json, each baseline's settings where the baselines searched, and the
    figures."""
    if study.search is None:
        return []
    runs = [(task, split) for task in study.tasks for split in study.splits]
    return [
        *(report_figure(task, split, "search") for task, split in runs if searched_checkpoints(study, task)),
        *(search_file("best.json", task, checkpoint, split) for task, split in runs for checkpoint in searched_checkpoints(study, task)),
        *(baseline_file("settings.json", task, baseline, split, instance) for task, split in runs for baseline in study.baselines
          for instance in study.instances(split) if study.baseline_search(baseline)),
    ]


def prediction_report_inputs(study: Study) -> list[str]:
    predict = study.predict
    if predict is None:
        return []
    files = [library_qc(library) for library in predict.libraries]
    for task in predict.tasks:
        for library in predict.libraries:
            for split in predict.splits:
                for model in predict.models:
                    files += [library_predictions(task, library, split, model), prediction_figure(task, split, library, model)]
    return files


# ---- what the report reads, all of it declared as inputs of its rules

def report_figure_inputs(study: Study, task: str, split: str) -> dict[str, list[str]]:
    """The files the report_figures job of one task and split reads: every model's predictions, every fine-tuning
    history and run record."""
    runs = [(model, instance) for model in study.models for instance in study.instances(split)]
    return {
        "predictions": [predictions(task, model, split, instance, study.is_baseline(model)) for model, instance in runs],
        "histories": [finetune_file("history.csv", task, model, split, instance) for model, instance in runs if not study.is_baseline(model)],
        "runs": [finetune_file("run.json", task, model, split, instance) for model, instance in runs if not study.is_baseline(model)],
    }


def calibration_inputs(study: Study, task: str, split: str) -> dict[str, list[str]]:
    """The files the report_calibration job reads: every model's predictions and calibration, instance by instance."""
    runs = [(model, instance) for model in study.models for instance in study.instances(split)]
    return {
        "predictions": [predictions(task, model, split, instance, study.is_baseline(model)) for model, instance in runs],
        "calibrations": [run_file("calibration.json", task, model, split, instance, study.is_baseline(model)) for model, instance in runs],
    }


def uncertainty_inputs(study: Study, task: str, split: str) -> dict[str, list[str]]:
    """The files the report_uncertainty job reads: every model's predictions (and calibrations, for a task whose
    probabilities are calibrated), and each seed's test similarity."""
    files = calibration_inputs(study, task, split)
    if study.tasks[task].type.value not in CALIBRATED_TYPES:
        files["calibrations"] = []
    return {**files, "similarity": [test_similarity(task, split, instance) for instance in study.instances(split)]}


def report_inputs(study: Study) -> dict[str, list[str]]:
    """Every file the report reads, by kind; the report refuses to read any other."""
    checkpoint_runs = [
        (task, checkpoint, split, instance)
        for task in study.tasks for checkpoint in study.checkpoints for split in study.splits for instance in study.instances(split)
    ]
    embedded_runs = [(task, model, split, instance) for task in study.tasks for model in study.embedded_models
                     for split in study.splits for instance in study.embedded_instances(split)]
    return {
        "summary": [SUMMARY, PER_INSTANCE],
        "comparison": [COMPARISON, RANKS, *comparison_figures(study).values()],
        "figures": [report_figure(task, split, figure) for task in study.tasks for split in study.splits for figure in REPORT_FIGURES],
        "data": [
            data_file(name, task) for task in study.tasks for name in ("qc.json", "molecules.csv", "invalid.csv", "duplicates.csv")
        ],
        "splits": [split_file("json", task, split, instance) for task in study.tasks for split in study.splits
                   for instance in study.instances(split)],
        "runs": [finetune_file("run.json", *run) for run in checkpoint_runs],
        # the confusion matrices of multi-class tasks
        "confusion": [metrics(task, model, split, instance) for task, spec in study.tasks.items() if spec.type.value == "multiclass"
                      for model in study.models for split in study.splits for instance in study.instances(split)],
        "projections": [
            *(separation(*run) for run in embedded_runs),
            *(projection("png", *run, method) for run in embedded_runs for method in study.projections),
        ],
        "pretraining": [pretrain_file(name, spec.objective, spec.size, spec.name) for spec in study.pretrained.values()
                        for name in ("history.csv", "run.json")],
        "calibration": [report_figure(task, split, "calibration", extension) for task, spec in study.tasks.items()
                        if spec.type.value in CALIBRATED_TYPES for split in study.splits for extension in ("png", "csv")],
        "uncertainty": [report_figure(task, split, "uncertainty", extension) for task in study.tasks for split in study.splits
                        for extension in ("png", "csv")],
        "predictions": prediction_report_inputs(study),
        "explanations": [explain_file(name, task, split) for task in study.tasks for split in study.splits
                         for name in ("selected.csv", "explanations.csv", "explanations.png",
                                      *(("attribution_check.csv",) if task in study.rule_tasks else ()))] if study.explain else [],
        "search": search_report_inputs(study),
        "benchmarks": [benchmark(rule, **wildcards) for rule, wildcards in workflow_jobs(study) if rule != "report"],
    }
