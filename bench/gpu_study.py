"""The MLM-vs-MTR study at full data size on one GPU, in one command, for a machine without RDKit or Snakemake.

It runs the workflow's own package functions in the workflow's file layout, with the settings of
config/offline-study.yaml (ChemBERTa-2's architecture; the study's fine-tuning: AdamW lr 1e-5, batch 256,
class-weighted loss, early stopping on validation AUROC with patience 15, at most 100 epochs):

  1. MTR targets: ChemBERTa-2's 199 RDKit descriptors of the corpus, on every core (RDKit from a carried wheel);
  2. pre-training: MLM and MTR side by side on the GPU, one process each;
  3. fine-tuning: 3 checkpoints (MLM, MTR, scratch) x 3 seeds side by side, one process per job, as Snakemake runs
     GPU jobs locally: that is how a 3.4M-parameter model fills a large GPU;
  4. test metrics of each run and their mean and sd over seeds.

  # here, on the CPU machine (RDKit): full HIV featurized and split by scaffold, the cleaned corpus (every HIV
  # molecule removed, a seeded sample), into --work (default bench/data/gpu-study)
  .venv/bin/python bench/gpu_study.py prepare [--corpus-molecules 200000]
  # on the GPU machine
  python bench/gpu_study.py run [--pretrain-epochs 5] [--parallel 9] [--json OUT.json]

`--size small --max-epochs 1` and a small `--corpus-molecules` make a CPU run of minutes (tests/test_gpu_study.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from chemlm import layout  # noqa: E402
from chemlm.config import Study  # noqa: E402
from chemlm.folds import SplitInstance  # noqa: E402
from chemlm.isolation import Isolation  # noqa: E402

CONFIG = REPO / "config" / "offline-study.yaml"
ARCHITECTURE = REPO / "resources" / "chemberta2-architecture"
DESCRIPTORS = REPO / "resources" / "chemberta2-mtr-descriptors.json"
SHARED = REPO.parent / "shared" / "data"
TASK = "hiv"
SPLIT = "scaffold"


def study(size: str | None, pretrain_epochs: int | None, max_epochs: int | None) -> Study:
    """config/offline-study.yaml, with the pre-training size and epochs and the fine-tuning epochs changed if asked."""
    config = yaml.safe_load(CONFIG.read_text())
    for entry in config["pretrain"]["models"].values():
        entry.update({key: value for key, value in (("size", size), ("epochs", pretrain_epochs)) if value is not None})
    if size == "small":
        from chemlm.models.pretraining import SIZE_PRESETS

        config["checkpoints"]["scratch"]["architecture_overrides"] = dict(SIZE_PRESETS["small"])
    if max_epochs is not None:
        config["finetune"]["max_epochs"] = max_epochs
    config["checkpoints"]["scratch"]["architecture"] = str(ARCHITECTURE)
    return Study.from_config(config)


def prepare(hiv_csv: Path, corpus: Path, corpus_molecules: int) -> None:
    """HIV's molecules and scaffold split and the cleaned corpus, with the workflow's own (RDKit) code."""
    from chemlm.corpus import build_corpus
    from chemlm.data.ingest import read_task_table
    from chemlm.featurize import featurize
    from chemlm.io import write_csv
    from chemlm.splits import assign_folds

    plan = study(None, None, None)
    task = plan.tasks[TASK]
    molecules = featurize(read_task_table(hiv_csv, task), task).molecules
    write_csv(molecules, layout.data_file("molecules.csv", TASK))
    for seed in plan.seeds:  # the scaffold split is the same for every seed, as the workflow writes it
        write_csv(assign_folds(molecules, task, SPLIT, plan.fractions, SplitInstance.of_seed(seed)), layout.split_file("csv", TASK, SPLIT, seed))
    settings = replace(plan.corpus, max_molecules=corpus_molecules)
    prepared = build_corpus(corpus, [layout.data_file("molecules.csv", TASK)], settings, isolation=Isolation(os.cpu_count() or 1))
    write_csv(prepared.table, layout.CORPUS_SMILES)
    print(f"molecules {len(molecules)}, corpus {prepared.qc['molecules']} (HIV molecules removed: {prepared.qc['task_molecules_removed']})")


def pretrain_job(plan: Study, name: str) -> float:
    import torch

    from chemlm.models.pretraining import pretrain

    torch.set_num_threads(1)
    spec = plan.pretrained[name]
    started = time.perf_counter()
    pretrain(
        layout.CORPUS_SMILES, layout.CORPUS_DESCRIPTORS if spec.objective == "mtr" else None, ARCHITECTURE, spec,
        plan.corpus.seed, *(layout.pretrain_file(part, spec.objective, spec.size, name) for part in ("model", "history.csv", "run.json", "resume-state")),
    )
    return time.perf_counter() - started


def finetune_job(plan: Study, checkpoint: str, seed: int) -> float:
    import torch

    from chemlm.evaluate import write_metrics
    from chemlm.models.finetuning import finetune

    torch.set_num_threads(1)
    started = time.perf_counter()
    files = [layout.finetune_file(part, TASK, checkpoint, SPLIT, seed)
             for part in ("model", "history.csv", "predictions.csv", "run.json", "resume-state", "calibration.json")]
    finetune(
        layout.data_file("molecules.csv", TASK), layout.split_file("csv", TASK, SPLIT, seed), plan.tasks[TASK],
        layout.checkpoint_to_load(plan, checkpoint), plan.finetune_params(TASK, checkpoint), seed, *files,
    )
    write_metrics(files[2], layout.metrics(TASK, checkpoint, SPLIT, seed), plan.tasks[TASK], checkpoint, SPLIT, f"seed{seed}", seed, plan.bootstrap_samples)
    return time.perf_counter() - started


def run(plan: Study, parallel: int, json_path: Path | None) -> None:
    from chemlm.descriptors import corpus_descriptor_targets, write_targets
    from chemlm.evaluate import write_summary

    stages: dict[str, float] = {}
    started = time.perf_counter()
    if plan.has_mtr:
        write_targets(corpus_descriptor_targets(layout.CORPUS_SMILES, DESCRIPTORS, isolation=Isolation(os.cpu_count() or 1)), layout.CORPUS_DESCRIPTORS)
    stages["mtr_descriptors_s"] = time.perf_counter() - started
    spawn = get_context("spawn")  # CUDA in every worker process
    started = time.perf_counter()
    with ProcessPoolExecutor(len(plan.pretrained), mp_context=spawn) as pool:
        pretraining = {name: pool.submit(pretrain_job, plan, name) for name in plan.pretrained}
        stages |= {f"pretrain_{name}_s": job.result() for name, job in pretraining.items()}
    stages["pretraining_s"] = time.perf_counter() - started
    runs = [(checkpoint, seed) for checkpoint in plan.checkpoints for seed in plan.seeds]
    started = time.perf_counter()
    with ProcessPoolExecutor(min(parallel, len(runs)), mp_context=spawn) as pool:
        seconds = [job.result() for job in [pool.submit(finetune_job, plan, *run_) for run_ in runs]]
    stages["finetuning_s"] = time.perf_counter() - started
    stages["finetune_job_mean_s"] = sum(seconds) / len(seconds)
    metrics = [layout.metrics(TASK, checkpoint, SPLIT, seed) for checkpoint, seed in runs]
    write_summary(metrics, layout.PER_INSTANCE, layout.SUMMARY)
    summary = pd.read_csv(layout.SUMMARY)
    auroc = summary[summary["metric"] == "auroc"].set_index("checkpoint")[["mean", "sd", "n_instances"]]
    epochs = {f"{checkpoint}/seed{seed}": json.loads(Path(layout.finetune_file("run.json", TASK, checkpoint, SPLIT, seed)).read_text())["epochs_run"]
              for checkpoint, seed in runs}
    result = {"stages": stages, "test_auroc": auroc.to_dict(orient="index"), "epochs_run": epochs, "parallel": parallel}
    for stage, value in stages.items():
        print(f"{stage:24s} {value:8.1f}")
    print(auroc.to_string())
    if json_path:
        json_path.write_text(json.dumps(result, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=REPO / "bench" / "data" / "gpu-study", help="the run's results folder")
    commands = parser.add_subparsers(dest="command", required=True)
    prepare_parser = commands.add_parser("prepare")
    prepare_parser.add_argument("--hiv", type=Path, default=SHARED / "moleculenet" / "HIV.csv")
    prepare_parser.add_argument("--corpus", type=Path, default=SHARED / "corpus" / "smiles_corpus.txt.gz")
    prepare_parser.add_argument("--corpus-molecules", type=int, default=200_000)
    run_parser = commands.add_parser("run")
    run_parser.add_argument("--size", choices=["chemberta2", "small"], default=None)
    run_parser.add_argument("--pretrain-epochs", type=int, default=None)
    run_parser.add_argument("--max-epochs", type=int, default=None)
    run_parser.add_argument("--parallel", type=int, default=9)
    run_parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    hiv, corpus = (args.hiv.resolve(), args.corpus.resolve()) if args.command == "prepare" else (None, None)
    json_path = args.json.resolve() if args.command == "run" and args.json else None
    args.work.mkdir(parents=True, exist_ok=True)
    os.chdir(args.work)  # the workflow's layout, relative to the run's folder
    if args.command == "prepare":
        prepare(hiv, corpus, args.corpus_molecules)
    else:
        run(study(args.size, args.pretrain_epochs, args.max_epochs), args.parallel, json_path)


if __name__ == "__main__":
    main()
