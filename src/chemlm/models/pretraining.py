"""Pre-training ChemBERTa-style encoders on a SMILES corpus: masked language modelling (MLM) or multi-task
regression (MTR) of RDKit descriptors.

It imports no rdkit: the corpus and the descriptor targets arrive as files (docs/design.md, pre-training).
The saved folder loads with `AutoModel` (the encoder) and `AutoModelForSequenceClassification` (fine-tuning).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from transformers import (
    AutoConfig,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    RobertaForMaskedLM,
    RobertaForSequenceClassification,
)

from chemlm.config import PretrainSpec
from chemlm.io import InputError, atomic_path, read_csv, write_csv, write_json
from chemlm.models.batching import TokenStore, collate, evaluation_batches, pad, sequence_lengths, tokenize
from chemlm.models.loop import (
    Batch,
    HeldOutScore,
    LoopSettings,
    LoopState,
    ResumeState,
    history_table,
    inputs_fingerprint,
    pick_device,
    set_seed,
    train,
)
from chemlm.models.tokenizers import pretraining_tokenizer

logger = logging.getLogger(__name__)

# Config values replaced in ChemBERTa-2's config.json (resources/chemberta2-architecture); `chemberta2` is it unchanged.
SIZE_PRESETS: dict[str, dict[str, int]] = {
    "chemberta2": {},
    # ChemBERTa-2's depth at a sixth of its width (177k parameters), for CPU demos and tests.
    "small": {"hidden_size": 64, "num_hidden_layers": 3, "num_attention_heads": 4, "intermediate_size": 128},
}
MASK_FRACTION = 0.15
MASK_TOKEN_SHARE = 0.8  # of the selected positions; RANDOM_TOKEN_SHARE get a random token, the rest stay as they are
RANDOM_TOKEN_SHARE = 0.1
IGNORED = -100
# RoBERTa's pre-training optimiser (Liu et al. 2019); warm-up, schedule and clipping are settings of each model.
BETAS = (0.9, 0.98)
WEIGHT_DECAY = 0.01


def model_config(architecture_dir: str | Path, size: str, tokenizer: PreTrainedTokenizerBase, tokenizer_kind: str) -> PretrainedConfig:
    """ChemBERTa-2's config at `size`; a corpus-built tokenizer sets the vocabulary size and special ids."""
    config = AutoConfig.from_pretrained(architecture_dir)
    config.update(dict(SIZE_PRESETS[size]))
    if tokenizer_kind != "chemberta2":
        config.update(
            {
                "vocab_size": len(tokenizer),
                "pad_token_id": tokenizer.pad_token_id,
                "bos_token_id": tokenizer.bos_token_id,
                "eos_token_id": tokenizer.eos_token_id,
            }
        )
    if len(tokenizer) > config.vocab_size:
        raise InputError(f"{architecture_dir}: vocab_size {config.vocab_size} is smaller than its tokenizer ({len(tokenizer)})")
    return config


def mask_tokens(
    input_ids: torch.Tensor, maskable: torch.Tensor, mask_id: int, replacement_ids: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking: 15% of the maskable positions become targets (at least one per sequence, so that short
    SMILES also teach something); of those 80% read [MASK], 10% a random token, 10% stay. Returns (inputs, labels)."""
    draws = torch.rand(input_ids.shape, generator=generator)
    selected = (draws < MASK_FRACTION) & maskable
    unselected = ~selected.any(dim=1) & maskable.any(dim=1)
    lowest = torch.where(maskable, draws, 2.0).argmin(dim=1)
    selected[unselected, lowest[unselected]] = True
    action = torch.rand(input_ids.shape, generator=generator)
    masked = input_ids.clone()
    masked[selected & (action < MASK_TOKEN_SHARE)] = mask_id
    randomised = selected & (action >= MASK_TOKEN_SHARE) & (action < MASK_TOKEN_SHARE + RANDOM_TOKEN_SHARE)
    picks = torch.randint(len(replacement_ids), (int(randomised.sum()),), generator=generator)
    masked[randomised] = replacement_ids[picks]
    return masked, torch.where(selected, input_ids, IGNORED)


class MaskedLanguageModelling:
    """MLM with RobertaForMaskedLM. Held-out masks are drawn once, so epochs are scored on the same positions."""

    held_out = "holdout"
    metric = "masked_accuracy"
    maximise = True

    def __init__(
        self, tokenizer: PreTrainedTokenizerBase, train_ids: list[list[int]], holdout_ids: list[list[int]], batch_size: int, seed: int
    ):
        self.train_ids = train_ids
        self.train_lengths = sequence_lengths(train_ids)
        self.pad_id = tokenizer.pad_token_id
        self.mask_id = tokenizer.mask_token_id
        self.special_ids = torch.tensor(sorted(set(tokenizer.all_special_ids)))
        # random replacements come from tokens the corpus uses, not from never-produced vocabulary entries
        seen = np.unique(np.concatenate([np.asarray(ids, dtype=np.int64) for ids in train_ids]))
        self.replacement_ids = torch.as_tensor(np.setdiff1d(seen, self.special_ids.numpy()))
        self.generator = torch.Generator().manual_seed(seed)
        holdout_generator = torch.Generator().manual_seed(seed + 1)
        self.holdout = [
            self.masked_batch(holdout_ids, batch, holdout_generator)
            for batch in evaluation_batches(sequence_lengths(holdout_ids), batch_size)
        ]

    def build(self, config: PretrainedConfig) -> PreTrainedModel:
        return RobertaForMaskedLM(config)

    def random_state(self) -> dict[str, torch.Tensor]:
        """The masking generator's state, saved with each epoch so a resumed run draws the same masks."""
        return {"masking": self.generator.get_state()}

    def set_random_state(self, state: dict[str, torch.Tensor]) -> None:
        self.generator.set_state(state["masking"])

    def masked_batch(self, input_ids: list[list[int]], indices: np.ndarray, generator: torch.Generator) -> Batch:
        """Inputs with 15% of their tokens masked; the targets are the original tokens there and IGNORED elsewhere."""
        inputs = pad(input_ids, indices, self.pad_id)
        maskable = ~torch.isin(inputs["input_ids"], self.special_ids)
        masked, labels = mask_tokens(inputs["input_ids"], maskable, self.mask_id, self.replacement_ids, generator)
        return Batch({"input_ids": masked, "attention_mask": inputs["attention_mask"]}, labels)

    def build_batch(self, indices: np.ndarray) -> Batch:
        return self.masked_batch(self.train_ids, indices, self.generator)

    @staticmethod
    def logits_and_labels(model: PreTrainedModel, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Vocabulary logits at the masked positions only: the LM head never runs on the other 85%."""
        hidden = model.roberta(**batch.inputs).last_hidden_state
        selected = batch.targets != IGNORED
        return model.lm_head(hidden[selected]).float(), batch.targets[selected]

    def loss_sum(self, model: PreTrainedModel, batch: Batch) -> torch.Tensor:
        logits, labels = self.logits_and_labels(model, batch)
        return F.cross_entropy(logits, labels, reduction="sum")

    def normaliser(self, batch: Batch) -> torch.Tensor:
        return (batch.targets != IGNORED).sum().float()

    def evaluate(self, model: PreTrainedModel, device: torch.device) -> HeldOutScore:
        """Held-out cross-entropy and accuracy over the masked positions."""
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device)
        count = 0
        for batch in self.holdout:
            logits, labels = self.logits_and_labels(model, batch.to(device))
            loss_sum += F.cross_entropy(logits, labels, reduction="sum")
            correct += (logits.argmax(dim=-1) == labels).sum()
            count += len(labels)
        return HeldOutScore(float(loss_sum) / count, float(correct) / count, {"holdout_masked_tokens": count})


@dataclass
class DescriptorFile:
    """The pretrain_descriptors output: names, normalised targets (NaN = missing), training mean and sd."""

    names: tuple[str, ...]
    targets: np.ndarray
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def load(cls, path: str | Path, rows: int) -> DescriptorFile:
        with np.load(path) as data:
            loaded = cls(tuple(str(name) for name in data["names"]), data["targets"], data["mean"], data["std"])
        if loaded.targets.shape != (rows, len(loaded.names)):
            raise InputError(f"{path}: {loaded.targets.shape[0]} rows for a corpus of {rows}; rerun pretrain_descriptors")
        return loaded


def squared_errors(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Squared errors over the present (non-NaN) targets, summed."""
    present = ~torch.isnan(targets)
    return (((predictions - torch.nan_to_num(targets)) ** 2) * present).sum()


def present_targets(targets: torch.Tensor) -> torch.Tensor:
    return (~torch.isnan(targets)).sum().float()


def r2_by_column(predictions: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """R2 of each column over its present targets; NaN where the targets do not vary."""
    present = ~np.isnan(targets)
    filled = np.where(present, targets, 0.0)
    counts = present.sum(axis=0)
    means = filled.sum(axis=0) / np.maximum(counts, 1)
    total = (np.where(present, targets - means, 0.0) ** 2).sum(axis=0)
    residual = (np.where(present, targets - predictions, 0.0) ** 2).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, 1.0 - residual / total, np.nan)


class DescriptorRegression:
    """MTR: RobertaForSequenceClassification with one regression output per descriptor, masked MSE loss.

    Saved that way, its encoder weights are named `roberta.*` as in ChemBERTa-77M-MTR, and fine-tuning swaps
    the 199-output projection for the task's head.
    """

    held_out = "holdout"
    metric = "r2"
    maximise = True

    def __init__(
        self,
        descriptors: DescriptorFile,
        train_ids: list[list[int]],
        holdout_ids: list[list[int]],
        train_rows: np.ndarray,
        holdout_rows: np.ndarray,
        pad_id: int,
        batch_size: int,
        device: torch.device,
    ):
        self.descriptors = descriptors
        self.train_ids, self.holdout_ids = train_ids, holdout_ids
        self.train_lengths = sequence_lengths(train_ids)
        self.train_tokens = TokenStore(train_ids, pad_id, device)
        self.train_targets = torch.from_numpy(np.ascontiguousarray(descriptors.targets[train_rows])).to(device)
        self.holdout_targets = descriptors.targets[holdout_rows]
        self.pad_id = pad_id
        self.batch_size = batch_size

    def build(self, config: PretrainedConfig) -> PreTrainedModel:
        names = self.descriptors.names
        config.update({"num_labels": len(names), "problem_type": "regression"})
        config.id2label = dict(enumerate(names))
        config.label2id = {name: index for index, name in enumerate(names)}
        return RobertaForSequenceClassification(config)

    def random_state(self) -> dict[str, torch.Tensor]:
        return {}  # the targets are fixed: only the batch order is random, and that is the loop's generator

    def set_random_state(self, state: dict[str, torch.Tensor]) -> None:
        pass

    def build_batch(self, indices: np.ndarray) -> Batch:
        return Batch(self.train_tokens.batch(indices), self.train_targets[torch.as_tensor(indices).to(self.train_targets.device)])

    def loss_sum(self, model: PreTrainedModel, batch: Batch) -> torch.Tensor:
        return squared_errors(model(**batch.inputs).logits.float(), batch.targets)

    def normaliser(self, batch: Batch) -> torch.Tensor:
        return present_targets(batch.targets)

    def evaluate(self, model: PreTrainedModel, device: torch.device) -> HeldOutScore:
        """Held-out masked MSE and mean R2 over the descriptors that vary in the holdout."""
        predictions = torch.empty(self.holdout_targets.shape, dtype=torch.float32, device=device)
        for batch in evaluation_batches(sequence_lengths(self.holdout_ids), self.batch_size):
            logits = model(**collate(self.holdout_ids, batch, self.pad_id, device)).logits
            predictions[torch.as_tensor(batch, device=device)] = logits.float()
        targets = torch.from_numpy(self.holdout_targets).to(device)
        loss = float(squared_errors(predictions, targets) / present_targets(targets).clamp(min=1))
        r2 = r2_by_column(predictions.cpu().numpy().astype(np.float64), self.holdout_targets.astype(np.float64))
        scored = ~np.isnan(r2)
        details = {
            "descriptors_scored": int(scored.sum()),
            "holdout_r2_by_descriptor": {name: round(float(value), 4) for name, value, ok in zip(self.descriptors.names, r2, scored) if ok},
        }
        return HeldOutScore(loss, float(np.mean(r2[scored])) if scored.any() else float("nan"), details)


def loop_settings(spec: PretrainSpec) -> LoopSettings:
    return LoopSettings(
        batch_size=spec.batch_size,
        max_epochs=spec.epochs,
        learning_rate=spec.learning_rate,
        betas=BETAS,
        weight_decay=WEIGHT_DECAY,
        max_grad_norm=spec.max_grad_norm,
        schedule=spec.schedule,
        warmup_fraction=spec.warmup_fraction,
        patience=spec.patience,
    )


def load_corpus(smiles_csv: str | Path) -> pd.DataFrame:
    corpus = read_csv(smiles_csv, dtype={"smiles": str, "fold": str}, keep_default_na=False)
    for column in ("smiles", "fold"):
        if column not in corpus.columns:
            raise InputError(f"{smiles_csv}: no column '{column}'")
    for fold in ("train", "holdout"):
        if not (corpus["fold"] == fold).any():
            raise InputError(f"{smiles_csv}: no molecules in the {fold} part")
    return corpus


def pretrain(
    smiles_csv: str | Path,
    descriptors_npz: str | Path | None,
    architecture_dir: str | Path,
    spec: PretrainSpec,
    seed: int,
    model_dir: str | Path,
    history_csv: str | Path,
    run_json: str | Path,
    state_dir: str | Path,
) -> LoopState:
    """Pre-train `spec` on the corpus's training part; write the model folder, the per-epoch history and a run record.

    Training state goes to `state_dir` after each epoch (removed at the end); a rerun after a kill resumes there.
    """
    started = time.perf_counter()
    set_seed(seed)
    device = pick_device()
    corpus = load_corpus(smiles_csv)
    holdout = (corpus["fold"] == "holdout").to_numpy()
    train_smiles, holdout_smiles = corpus["smiles"][~holdout].tolist(), corpus["smiles"][holdout].tolist()
    tokenizer = pretraining_tokenizer(spec.tokenizer, architecture_dir, train_smiles)
    train_ids, train_truncated = tokenize(tokenizer, train_smiles, spec.max_length)
    holdout_ids, holdout_truncated = tokenize(tokenizer, holdout_smiles, spec.max_length)
    truncated = {"train": train_truncated, "holdout": holdout_truncated}
    if train_truncated or holdout_truncated:
        logger.warning("SMILES longer than %d tokens were truncated: %s", spec.max_length, truncated)
    config = model_config(architecture_dir, spec.size, tokenizer, spec.tokenizer)
    if spec.objective == "mlm":
        objective = MaskedLanguageModelling(tokenizer, train_ids, holdout_ids, spec.batch_size, seed)
    else:
        if descriptors_npz is None:
            raise InputError(f"pretrain.models.{spec.name}: objective 'mtr' needs the descriptors file")
        descriptors = DescriptorFile.load(descriptors_npz, len(corpus))
        objective = DescriptorRegression(
            descriptors, train_ids, holdout_ids, np.flatnonzero(~holdout), np.flatnonzero(holdout), tokenizer.pad_token_id,
            spec.batch_size, device,
        )
    torch.manual_seed(seed)
    model = objective.build(config)
    parameters = sum(parameter.numel() for parameter in model.parameters())
    logger.info(
        "pre-training '%s': %s, size %s (%d parameters), tokenizer %s (%d tokens), device %s: train %d, holdout %d",
        spec.name, spec.objective, spec.size, parameters, spec.tokenizer, len(tokenizer), device.type,
        len(train_ids), len(holdout_ids),
    )
    inputs = [Path(smiles_csv), Path(architecture_dir) / "config.json"] + ([Path(descriptors_npz)] if descriptors_npz else [])
    resume = ResumeState(Path(state_dir), inputs_fingerprint(inputs, {"spec": spec.to_dict(), "seed": seed}))
    result = train(model, objective, loop_settings(spec), seed, device, resume)

    record = {"name": spec.name, "objective": spec.objective, "size": spec.size, "tokenizer": spec.tokenizer, "epochs": spec.epochs}
    if spec.objective == "mtr":
        record.update(
            descriptors=list(descriptors.names), norm_mean=descriptors.mean.tolist(), norm_std=descriptors.std.tolist()
        )
    model.config.update({"chemlm_pretraining": record})
    with atomic_path(model_dir) as temporary:
        model.to("cpu").save_pretrained(temporary)
        tokenizer.save_pretrained(temporary)
    write_csv(history_table(result, objective), history_csv)
    last = result.history[result.best_epoch - 1] if spec.patience is not None else result.history[-1]
    write_json(
        {
            "pretrain": spec.to_dict(),
            "seed": seed,
            "device": device.type,
            "parameters": parameters,
            "tokenizer_tokens": len(tokenizer),
            "corpus": {"train": len(train_ids), "holdout": len(holdout_ids)},
            "truncated_smiles": truncated,
            "epochs_run": len(result.history),
            "epoch_kept": last.epoch,
            "holdout_loss": last.held_out_loss,
            f"holdout_{objective.metric}": last.held_out_metric,
            **result.details,
            "seconds": round(time.perf_counter() - started, 2),
        },
        run_json,
    )
    resume.remove()
    return result
