"""Builders shared by the tests: tiny models and tables with known contents."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
ARCHITECTURE = REPO / "resources" / "chemberta2-architecture"
DEMO_HIV = REPO / "resources" / "demo" / "hiv_sample.csv.gz"
DATA = REPO / "tests" / "data"
TINY_ARCHITECTURE = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64}


def tiny_scratch_entry() -> dict:
    return {"source": "scratch", "architecture": str(ARCHITECTURE), "architecture_overrides": dict(TINY_ARCHITECTURE)}


def demo_molecules(n: int = 240, seed: int = 0) -> pd.DataFrame:
    """`n` valid molecules of the demo HIV sample in molecules.csv layout (scaffold column not used by training),
    with the binary label, the three-class activity, two multi-label columns with gaps, and a regression target."""
    table = pd.read_csv(DEMO_HIV)
    positives = table[table["HIV_active"] == 1].head(n // 4)
    rest = table[table["HIV_active"] == 0].head(n - len(positives))
    table = pd.concat([positives, rest]).sort_index().reset_index(drop=True)
    rng = np.random.default_rng(seed)
    length = table["smiles"].str.len().to_numpy(dtype=float)
    return pd.DataFrame(
        {
            "mol_id": [f"m{i}" for i in range(len(table))],
            "smiles": table["smiles"],
            "scaffold": "",
            "HIV_active": table["HIV_active"].astype(float),
            "activity": table["activity"],
            "long": (length > np.median(length)).astype(float),
            "ring_rich": np.where(rng.random(len(table)) < 0.2, np.nan, (table["smiles"].str.count("1") > 2).astype(float)),
            "length": length / 10.0 + rng.normal(0, 0.1, len(table)),
        }
    )


def write_fold_files(molecules: pd.DataFrame, directory: Path) -> tuple[Path, Path]:
    """molecules.csv and a split file: every 5th molecule valid, every 5th+1 test, the rest train."""
    molecules_csv, split_csv = directory / "molecules.csv", directory / "split.csv"
    molecules.to_csv(molecules_csv, index=False)
    position = np.arange(len(molecules)) % 5
    folds = np.where(position == 0, "valid", np.where(position == 1, "test", "train"))
    pd.DataFrame({"mol_id": molecules["mol_id"], "fold": folds}).to_csv(split_csv, index=False)
    return molecules_csv, split_csv


# The workflow in a test's own directory (never the repository's results/), with the local profile.
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--profile", str(REPO / "profiles" / "default")]


def tiny_config() -> dict:
    """Every task type on small tables, one tiny scratch model, one seed: the whole workflow in minutes on CPU.
    (Jobs here are mostly Python start-up; aggregation over seeds is tested in test_evaluate.py.)"""
    return {
        "tasks": {
            "hiv": {"source": str(DATA / "hiv_small.csv"), "smiles_column": "smiles", "label_columns": ["HIV_active"], "type": "binary"},
            "activity": {"source": str(DATA / "hiv_small.csv"), "smiles_column": "smiles", "label_columns": ["activity"], "type": "multiclass"},
            "tox21": {
                "source": str(DATA / "tox21_sample.csv"),
                "smiles_column": "smiles",
                "id_column": "mol_id",
                "label_columns": ["NR-AR", "NR-AhR", "SR-ARE", "SR-p53"],
                "type": "multilabel",
            },
            "esol": {
                "source": str(DATA / "esol_sample.csv"),
                "smiles_column": "smiles",
                "label_columns": ["measured log solubility in mols per litre"],
                "type": "regression",
            },
        },
        "checkpoints": {"tiny": tiny_scratch_entry()},
        "split": {"methods": ["scaffold"]},
        "seeds": [0],
        "finetune": {"learning_rate": 1e-3, "batch_size": 32, "max_epochs": 2, "patience": 2, "max_length": 96},
        "evaluate": {"bootstrap_samples": 50},
        "project": {"methods": ["pca"]},  # UMAP's first call alone takes ~13 s
        "baseline_trees": 10,
        # every baseline kind, chemprop's tiny (a few seconds a fit)
        "baselines": ["ecfp4_rf", "ecfp4_logreg", "lgbm", "chemprop"],
        "chemprop": {"hidden_size": 16, "ffn_hidden_size": 16, "depth": 2, "max_epochs": 3},
        # 199 rows in 2 shards: each scored by its own jobs, then merged; by the models exported to ONNX with int8 weights.
        # One task: the other task types' scores are tested in test_predict.py and test_export.py
        "predict": {"libraries": {"candidates": {"source": str(REPO / "resources" / "demo" / "library.smi")}}, "tasks": ["hiv"],
                    "shard_size": 100, "engine": "onnx-int8"},
    }


LOCAL_CHECKPOINT = "checkpoints/tinyB"  # relative to the workflow's working directory, as a user would write it
STUDY_CORPUS = "corpus.txt"


def study_config() -> dict:
    """One task, one seed (as in `tiny_config`) and a checkpoint of each kind: `tinyA` from scratch, `tinyB` a local
    model folder, `tinyM` pre-trained here by MLM: the smallest config where a change can touch only some jobs.
    `write_study` puts the files it names in a working directory."""
    config = tiny_config()
    del config["predict"]  # scoring libraries is tested in test_workflow.py; here it would only add jobs
    del config["baselines"], config["chemprop"]  # the default ECFP4 baselines; the others are tested in test_workflow.py
    config["tasks"] = {"hiv": config["tasks"]["hiv"]}
    config["checkpoints"] = {
        "tinyA": tiny_scratch_entry(),
        "tinyB": {"source": LOCAL_CHECKPOINT},
        "tinyM": {"source": "pretrained:tinymlm"},
    }
    config["pretrain"] = {
        "corpus": STUDY_CORPUS,
        "holdout_fraction": 0.2,
        "models": {"tinymlm": {"objective": "mlm", "size": "small", "epochs": 1, "batch_size": 32, "learning_rate": 1e-3, "max_length": 96}},
    }
    return config


def save_tiny_model(folder: Path, seed: int = 0) -> None:
    """A tiny RoBERTa masked-language model with ChemBERTa-2's tokenizer, as `save_pretrained` writes it."""
    import torch
    from transformers import AutoConfig, AutoModelForMaskedLM, AutoTokenizer

    config = AutoConfig.from_pretrained(ARCHITECTURE)
    config.update(dict(TINY_ARCHITECTURE))
    torch.manual_seed(seed)
    AutoModelForMaskedLM.from_config(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(ARCHITECTURE).save_pretrained(folder)


def write_study(workdir: Path, config: dict | None = None) -> None:
    """`config` (default: study_config()) as workdir/config.yaml, with the local checkpoint folder and the corpus it names."""
    (workdir / "config.yaml").write_text(yaml.safe_dump(config or study_config()))
    save_tiny_model(workdir / LOCAL_CHECKPOINT)
    with gzip.open(REPO / "resources" / "demo" / "pretrain_corpus.txt.gz", "rt") as handle:
        (workdir / STUDY_CORPUS).write_text("".join(next(handle) for _ in range(300)))


# A tiny model's job is mostly Python start-up: one thread each lets two of them run side by side on 2 cores.
# (--set-threads takes every value up to the next option, so an option must follow it, not targets.)
SINGLE_THREADED = ["--set-threads", "finetune=1", "embed=1", "pretrain=1"]


def snakemake(workdir: Path, *args: str, configfile: str = "config.yaml") -> subprocess.CompletedProcess:
    """Snakemake on `workdir` with the config file `configfile` found in it."""
    return subprocess.run(
        [*SNAKEMAKE, "--directory", str(workdir), "--configfile", str(workdir / configfile), *SINGLE_THREADED, "--cores", "2", *args],
        # the test workflow (tests/test_workflow.py: 4 tasks, a transformer and 4 baselines) took 7.5 minutes on 2
        # cores beside another run; the limit only stops a run that hangs
        capture_output=True, text=True, timeout=1200,
    )


def simulate_gpu_memory_limit(monkeypatch, molecules: int) -> None:
    """Make every training forward pass of the RoBERTa encoder over more than `molecules` sequences raise CUDA's
    out-of-memory error, as a GPU would for too large a batch (fine-tuning and pre-training models both run it)."""
    import torch
    from transformers.models.roberta import modeling_roberta

    forward = modeling_roberta.RobertaModel.forward

    def limited(self, input_ids=None, *args, **kwargs):
        if torch.is_grad_enabled() and input_ids is not None and input_ids.shape[0] > molecules:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return forward(self, input_ids, *args, **kwargs)

    monkeypatch.setattr(modeling_roberta.RobertaModel, "forward", limited)
