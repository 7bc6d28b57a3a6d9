"""Fine-tuning speed: the project's training loop against the Hugging Face Trainer, in the same run.

All three train ChemBERTa-2's exact architecture (resources/chemberta2-architecture, the config and tokenizer of
DeepChem/ChemBERTa-77M-MLM; random weights are fine for speed) from the same initial weights on the scaffold
train fold of full MoleculeNet HIV with the published study's batch of 256:

- `trainer_published`: the Trainer as the published study ran it: fp32, every SMILES padded to 128 tokens.
- `trainer_tuned`: the Trainer configured well: bf16 on a GPU, dynamic padding (DataCollatorWithPadding) and
  grouping by length (`train_sampling_strategy="group_by_length"`, transformers 5's name for `group_by_length`),
  so that batches hold SMILES of similar length.
- `ours`: chemlm.models.loop: length-bucketed batches sliced from one padded tensor on the device, bf16
  autocast and fused AdamW on a GPU.

  # on the CPU machine (needs RDKit): featurize full HIV and split it by scaffold, once
  .venv/bin/python bench/finetune_speed.py prepare --hiv ../shared/data/moleculenet/HIV.csv
  # anywhere with torch and transformers (no RDKit): time the second epoch of each (the first warms up)
  python bench/finetune_speed.py run [--max-train 2048] [--json out.json] [--profile out.txt]

`--max-train` subsamples the training fold so that a CPU finishes in minutes; the ratios are what to compare.
`--profile` writes torch.profiler's table of our epoch (where the time goes).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from chemlm.config import CheckpointSpec, FinetuneParams  # noqa: E402
from chemlm.folds import SplitInstance  # noqa: E402
from chemlm.models.batching import tokenize  # noqa: E402
from chemlm.models.checkpoints import load_for_finetuning  # noqa: E402
from chemlm.models.finetuning import EncodedFold, TaskObjective, loop_settings, predict_logits  # noqa: E402
from chemlm.models.labels import LabelEncoding  # noqa: E402
from chemlm.models.loop import LoopState, make_optimizer, make_scheduler, pick_device, train_epoch  # noqa: E402
from chemlm.tasks import TaskSpec, TaskType  # noqa: E402

DATA = REPO / "bench" / "data"
INPUTS = DATA / "hiv_scaffold.csv.gz"
TASK = TaskSpec("hiv", "-", "smiles", ("HIV_active",), TaskType.BINARY)
ARCHITECTURE = CheckpointSpec("chemberta2", "scratch", architecture=str(REPO / "resources" / "chemberta2-architecture"))
STUDY = FinetuneParams(1e-5, (0.95, 0.999), 0.0, 256, 1024, 1, 15, 128, True)


def prepare(hiv_csv: Path) -> None:
    """Featurize and scaffold-split full HIV with the workflow's own code; write smiles, label and fold."""
    from chemlm.data.ingest import read_task_table
    from chemlm.featurize import featurize
    from chemlm.splits import assign_folds

    molecules = featurize(read_task_table(hiv_csv, TASK), TASK).molecules
    folds = assign_folds(molecules, TASK, "scaffold", (0.8, 0.1, 0.1), SplitInstance.of_seed(0))
    table = pd.DataFrame({"smiles": molecules["smiles"], "HIV_active": molecules["HIV_active"], "fold": folds["fold"]})
    DATA.mkdir(parents=True, exist_ok=True)
    table.to_csv(INPUTS, index=False)
    print(f"wrote {INPUTS}: {table['fold'].value_counts().to_dict()}")


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()


def peak_memory_mb(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None


def fresh_model(device: torch.device):
    encoding = LabelEncoding(TaskType.BINARY, TASK.label_columns)
    model, tokenizer = load_for_finetuning(ARCHITECTURE, encoding.head(), seed=0)
    return model.to(device), tokenizer, encoding


def time_ours(train: pd.DataFrame, valid: pd.DataFrame, device: torch.device, profile_path: Path | None) -> dict:
    model, tokenizer, encoding = fresh_model(device)
    folds = {}
    for name, rows in (("train", train), ("valid", valid)):
        ids, _ = tokenize(tokenizer, rows["smiles"].tolist(), STUDY.max_length)
        folds[name] = EncodedFold(rows.index.to_numpy(), ids, encoding.targets(rows))
    objective = TaskObjective(folds, encoding, STUDY, tokenizer.pad_token_id, device)
    settings = loop_settings(STUDY)
    optimizer = make_optimizer(model, settings, device)
    scheduler = make_scheduler(optimizer, settings, total_steps=1)
    rng = np.random.default_rng(0)
    # one warm-up epoch (CUDA context, kernel selection, allocator), as every epoch after the first of a real run
    train_epoch(model, objective, optimizer, scheduler, settings, LoopState(), rng, device)
    reset_peak_memory(device)
    synchronize(device)
    started = time.perf_counter()
    if profile_path:
        activities = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA] if device.type == "cuda" else [])
        with torch.profiler.profile(activities=activities) as profiler:
            loss = train_epoch(model, objective, optimizer, scheduler, settings, LoopState(), rng, device)
            synchronize(device)
        sort = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
        profile_path.write_text(profiler.key_averages().table(sort_by=sort, row_limit=40))
    else:
        loss = train_epoch(model, objective, optimizer, scheduler, settings, LoopState(), rng, device)
    synchronize(device)
    epoch_s = time.perf_counter() - started
    started = time.perf_counter()
    predict_logits(model, folds["valid"], STUDY.eval_batch_size, tokenizer.pad_token_id, device)
    synchronize(device)
    return {"epoch_s": epoch_s, "eval_s": time.perf_counter() - started, "train_loss": loss, "peak_memory_mb": peak_memory_mb(device)}


def time_trainer(train: pd.DataFrame, valid: pd.DataFrame, device: torch.device, tuned: bool) -> dict:
    """One epoch of the Trainer: as published (fp32, padded to 128) or tuned (bf16, dynamic padding, by length)."""
    from transformers import DataCollatorWithPadding, Trainer, TrainerCallback, TrainingArguments

    class EpochClock(TrainerCallback):
        def on_epoch_begin(self, args, state, control, **kwargs):
            synchronize(device)
            self.started = time.perf_counter()

        def on_epoch_end(self, args, state, control, **kwargs):
            synchronize(device)
            self.seconds = time.perf_counter() - self.started

    model, tokenizer, _ = fresh_model(device)

    def dataset(rows: pd.DataFrame) -> list[dict]:
        padding = "do_not_pad" if tuned else "max_length"
        encoded = tokenizer(rows["smiles"].tolist(), padding=padding, truncation=True, max_length=STUDY.max_length)
        labels = rows["HIV_active"].astype(int).tolist()
        return [
            {"input_ids": ids, "attention_mask": mask, "labels": label}
            for ids, mask, label in zip(encoded["input_ids"], encoded["attention_mask"], labels)
        ]

    clock = EpochClock()
    with tempfile.TemporaryDirectory() as output_dir:
        arguments = TrainingArguments(
            output_dir=output_dir,
            per_device_train_batch_size=STUDY.batch_size,
            per_device_eval_batch_size=STUDY.batch_size,
            num_train_epochs=2,  # the second epoch is timed, after a warm-up one
            learning_rate=STUDY.learning_rate,
            adam_beta1=STUDY.betas[0],
            adam_beta2=STUDY.betas[1],
            bf16=tuned and device.type == "cuda",
            train_sampling_strategy="group_by_length" if tuned else "random",
            save_strategy="no",
            logging_strategy="no",
            report_to=[],
            use_cpu=device.type == "cpu",
            disable_tqdm=True,
        )
        collator = DataCollatorWithPadding(tokenizer) if tuned else None
        trainer = Trainer(model=model, args=arguments, train_dataset=dataset(train), data_collator=collator, callbacks=[clock])
        reset_peak_memory(device)
        trainer.train()
        started = time.perf_counter()
        trainer.predict(dataset(valid))
        synchronize(device)
    return {"epoch_s": clock.seconds, "eval_s": time.perf_counter() - started, "peak_memory_mb": peak_memory_mb(device)}


def run(max_train: int | None, json_path: Path | None, profile_path: Path | None) -> None:
    table = pd.read_csv(INPUTS)
    train = table[table["fold"] == "train"].reset_index(drop=True)
    valid = table[table["fold"] == "valid"].reset_index(drop=True)
    if max_train:
        train = train.sample(n=min(max_train, len(train)), random_state=0).reset_index(drop=True)
        valid = valid.head(max(max_train // 8, 1))
    device = pick_device()
    torch.manual_seed(0)
    timings = {
        "trainer_published": time_trainer(train, valid, device, tuned=False),
        "trainer_tuned": time_trainer(train, valid, device, tuned=True),
        "ours": time_ours(train, valid, device, profile_path),
    }
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    result = {
        "device": name,
        "train_molecules": len(train),
        "valid_molecules": len(valid),
        **timings,
        "speedup_vs_published": timings["trainer_published"]["epoch_s"] / timings["ours"]["epoch_s"],
        "speedup_vs_tuned": timings["trainer_tuned"]["epoch_s"] / timings["ours"]["epoch_s"],
    }
    labels = {
        "trainer_published": "HF Trainer (fp32, padded to 128)",
        "trainer_tuned": "HF Trainer (bf16, dynamic, by length)",
        "ours": "ours (chemlm.models.loop)",
    }
    for key, label in labels.items():
        timing = timings[key]
        print(
            f"{label:38s} epoch {timing['epoch_s']:8.2f} s  {len(train) / timing['epoch_s']:9.1f} molecules/s  "
            f"eval {timing['eval_s']:7.2f} s  peak GPU memory {timing['peak_memory_mb'] or 0:8.0f} MB"
        )
    print(f"device {name}: {len(train)} training molecules; ours is {result['speedup_vs_published']:.1f}x the published "
          f"Trainer and {result['speedup_vs_tuned']:.1f}x the tuned Trainer per epoch")
    if json_path:
        json_path.write_text(json.dumps(result, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    prepare_parser = commands.add_parser("prepare")
    prepare_parser.add_argument("--hiv", type=Path, default=REPO.parent / "shared" / "data" / "moleculenet" / "HIV.csv")
    run_parser = commands.add_parser("run")
    run_parser.add_argument("--max-train", type=int, default=None)
    run_parser.add_argument("--json", type=Path, default=None)
    run_parser.add_argument("--profile", type=Path, default=None)
    args = parser.parse_args()
    if args.command == "prepare":
        prepare(args.hiv)
    else:
        run(args.max_train, args.json, args.profile)


if __name__ == "__main__":
    main()
