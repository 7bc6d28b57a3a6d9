"""Scoring new molecules: speed against the Hugging Face pipeline, the similarity search, and flat memory.

  .venv/bin/python bench/predict_speed.py speed [--molecules 2000]
      ChemBERTa-2's architecture (random weights: speed does not depend on them) scoring the same SMILES of the
      shared corpus with chemlm (ModelEnsemble: length-sorted batches, dynamic padding) on each engine of
      `predict.engine` (torch; ONNX Runtime on the model exported to ONNX, fp32 and int8 weights, each export checked
      as the workflow checks it) and with transformers.pipeline("text-classification") at its default batch size and
      at ours; molecules per second, and each engine's largest difference from torch's scores.
  .venv/bin/python bench/predict_speed.py similarity [--library 100000]
      chemlm.similarity (blockwise matrix product) against RDKit's BulkTanimotoSimilarity (on a sample of the
      queries, scaled up), for a library of the shared corpus against the full HIV scaffold training fold.
  .venv/bin/python bench/predict_speed.py memory [--sizes 100000 1000000]
      Peak memory (maximum resident set) of the predict step scoring libraries of each size (the shared corpus,
      repeated as needed) with a small model, each in a fresh process: flat if nothing grows with the library.

The HIV training fold comes from bench/finetune_speed.py prepare (bench/data/hiv_scaffold.csv.gz).
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import subprocess
import sys
import tempfile
import time
from itertools import cycle, islice
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

CORPUS = REPO.parent / "shared" / "data" / "corpus" / "smiles_corpus.txt.gz"
HIV = REPO / "bench" / "data" / "hiv_scaffold.csv.gz"
ARCHITECTURE = REPO / "resources" / "chemberta2-architecture"


def corpus_smiles(count: int, offset: int = 0) -> list[str]:
    with gzip.open(CORPUS, "rt") as handle:
        lines = [line.strip() for line in islice(handle, offset, offset + count)]
    return list(islice(cycle(lines), count))


def model_folder(directory: Path, size: str) -> Path:
    """A model folder as fine-tuning writes it, with ChemBERTa-2's architecture (or the small one) and random weights."""
    import torch

    from chemlm.config import CheckpointSpec
    from chemlm.models.checkpoints import load_for_finetuning
    from chemlm.models.labels import LabelEncoding
    from chemlm.models.pretraining import SIZE_PRESETS
    from chemlm.tasks import TaskType

    encoding = LabelEncoding(TaskType.BINARY, ("HIV_active",))
    spec = CheckpointSpec("bench", "scratch", architecture=str(ARCHITECTURE), architecture_overrides=dict(SIZE_PRESETS[size]) or None)
    torch.manual_seed(0)
    model, tokenizer = load_for_finetuning(spec, encoding.head(), seed=0)
    model.config.update({
        "chemlm_task": {"task_type": "binary", "labels": ["HIV_active"], "classes": [], "mean": [], "std": [], "task": "hiv"},
        "chemlm_inputs": {"max_length": 128, "isomeric_smiles": True},
        "chemlm_calibration": None,
    })
    folder = directory / f"model-{size}"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def check_folds(directory: Path, count: int) -> tuple[Path, Path]:
    """Molecules of the corpus in train, valid and test folds: the export's check scores the test fold."""
    smiles = corpus_smiles(count, offset=400_000)
    molecules = pd.DataFrame({"mol_id": [f"m{i}" for i in range(count)], "smiles": smiles, "HIV_active": 0})
    molecules.to_csv(directory / "molecules.csv", index=False)
    folds = np.array(["train", "valid", "test"])[np.arange(count) % 3]
    pd.DataFrame({"mol_id": molecules["mol_id"], "fold": folds}).to_csv(directory / "split.csv", index=False)
    return directory / "molecules.csv", directory / "split.csv"


def timed_scores(ensemble, rows: pd.DataFrame) -> tuple[float, np.ndarray]:
    ensemble.score(rows.head(64))  # warm-up
    started = time.perf_counter()
    scores = ensemble.score(rows).mean[:, 0]
    return time.perf_counter() - started, scores


def speed(molecules: int) -> dict:
    """Each engine of chemlm (torch; ONNX Runtime on the export, fp32 and int8) and the pipeline on the same SMILES."""
    import torch
    from transformers import pipeline

    from chemlm.export import export_onnx
    from chemlm.predict import ModelEnsemble

    smiles = corpus_smiles(molecules, offset=500_000)
    rows = pd.DataFrame({"smiles": smiles})
    with tempfile.TemporaryDirectory() as directory:
        directory = Path(directory)
        folder = model_folder(directory, "chemberta2")
        molecules_csv, split_csv = check_folds(directory, 600)
        result = {"molecules": molecules, "threads": torch.get_num_threads()}
        torch_s, torch_scores = timed_scores(ModelEnsemble([folder]), rows)
        result |= {"torch_s": torch_s, "torch_per_s": molecules / torch_s}
        for engine in ("onnx", "onnx-int8"):
            started = time.perf_counter()
            check = export_onnx(folder, molecules_csv, split_csv, engine, directory / engine)
            result[f"{engine}_export_and_check_s"] = time.perf_counter() - started
            seconds, scores = timed_scores(ModelEnsemble([directory / engine]), rows)
            result |= {f"{engine}_s": seconds, f"{engine}_per_s": molecules / seconds,
                       f"{engine}_check_max_difference": check["max_abs_difference"],
                       f"{engine}_max_difference": float(np.abs(scores - torch_scores).max())}
        for name, batch_size in (("pipeline_default", None), ("pipeline_batch256", 256)):
            classifier = pipeline("text-classification", model=str(folder), device=-1, top_k=None, truncation=True, max_length=128)
            options = {"batch_size": batch_size} if batch_size else {}
            classifier(smiles[:8], **options)  # warm-up
            started = time.perf_counter()
            outputs = classifier(smiles, **options)
            seconds = time.perf_counter() - started
            positive = np.array([next(item["score"] for item in output if item["label"].endswith("=1")) for output in outputs])
            result |= {f"{name}_s": seconds, f"{name}_per_s": molecules / seconds, f"{name}_max_difference": float(np.abs(positive - torch_scores).max())}
    for engine in ("torch", "onnx", "onnx-int8"):
        result[f"{engine}_speedup_vs_pipeline_default"] = result["pipeline_default_s"] / result[f"{engine}_s"]
        result[f"{engine}_speedup_vs_pipeline_batch256"] = result["pipeline_batch256_s"] / result[f"{engine}_s"]
    return result


def similarity(library: int) -> dict:
    from rdkit import Chem, DataStructs
    from rdkit.Chem import rdFingerprintGenerator

    from chemlm.fingerprints import ecfp4
    from chemlm.isolation import Isolation
    from chemlm.similarity import Reference, nearest

    table = pd.read_csv(HIV)
    train = table[table["fold"] == "train"]
    train_bits, _ = ecfp4(train["smiles"].tolist(), train.index.astype(str).tolist(), isolation=Isolation(2))
    queries = corpus_smiles(library, offset=300_000)
    query_bits, _ = ecfp4(queries, [str(i) for i in range(library)], isolation=Isolation(2))
    reference = Reference.from_packed(np.packbits(train_bits, axis=1), train.index.astype(str).to_numpy())
    started = time.perf_counter()
    ours, _ = nearest(reference, np.packbits(query_bits, axis=1))
    ours_s = time.perf_counter() - started
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    train_fps = [generator.GetFingerprint(Chem.MolFromSmiles(text)) for text in train["smiles"]]
    sample = min(2000, library)
    sample_fps = [generator.GetFingerprint(Chem.MolFromSmiles(text)) for text in queries[:sample]]
    started = time.perf_counter()
    rdkit_best = np.array([max(DataStructs.BulkTanimotoSimilarity(fp, train_fps)) for fp in sample_fps])
    rdkit_s = (time.perf_counter() - started) * library / sample
    return {"library": library, "training_molecules": len(train), "ours_s": ours_s, "rdkit_bulk_s_scaled": rdkit_s,
            "speedup": rdkit_s / ours_s, "max_difference_on_sample": float(np.abs(rdkit_best - ours[:sample]).max())}


MEMORY_CHILD = """
import resource, sys, time
sys.path.insert(0, {src!r})
from chemlm.predict import score_library
started = time.perf_counter()
rows = score_library([{model!r}], "platt", {library!r}, None, {out!r})
print(rows, time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def memory(sizes: list[int]) -> dict:
    """Each library prepared once (canonicalised, fingerprinted), then scored in a fresh process whose peak memory
    is read from the kernel (ru_maxrss)."""
    from chemlm.isolation import Isolation
    from chemlm.library import write_library

    results = {}
    with tempfile.TemporaryDirectory() as directory:
        directory = Path(directory)
        folder = model_folder(directory, "small")
        base = corpus_smiles(100_000, offset=200_000)
        for size in sizes:
            source = directory / f"library-{size}.smi"
            with open(source, "w") as handle:
                for position, text in enumerate(islice(cycle(base), size)):
                    handle.write(f"{text} m{position}\n")
            started = time.perf_counter()
            write_library(source, "smiles", None, True, directory / f"{size}.csv.gz", directory / f"{size}.npy", isolation=Isolation(2))
            prepare_s = time.perf_counter() - started
            code = MEMORY_CHILD.format(src=str(REPO / "src"), model=str(folder), library=str(directory / f"{size}.csv.gz"),
                                       out=str(directory / f"scored-{size}.csv.gz"))
            run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
            rows, seconds, peak_kb = run.stdout.split()
            results[size] = {"rows": int(rows), "prepare_s": prepare_s, "score_s": float(seconds), "peak_memory_mb": int(peak_kb) / 1024}
            print(size, results[size], flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("speed").add_argument("--molecules", type=int, default=2000)
    commands.add_parser("similarity").add_argument("--library", type=int, default=100_000)
    commands.add_parser("memory").add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args()
    result = {"speed": lambda: speed(args.molecules), "similarity": lambda: similarity(args.library), "memory": lambda: memory(args.sizes)}[args.command]()
    print(json.dumps(result, indent=2))
    print(f"peak memory of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB", file=sys.stderr)


if __name__ == "__main__":
    main()
