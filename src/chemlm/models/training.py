"""Fine-tuning: our own training loop with length-bucketed dynamic padding and early stopping.

It imports no rdkit: a GPU machine runs it on molecules.csv and a split file alone.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from chemlm.config import CheckpointSpec, FinetuneParams
from chemlm.io import InputError, atomic_path, read_csv, write_csv, write_json
from chemlm.metrics import HIGHER_IS_BETTER, validation_score
from chemlm.models.checkpoints import HeadSpec, load_for_finetuning
from chemlm.tasks import TaskSpec, TaskType, label_header, prediction_header

logger = logging.getLogger(__name__)

FOLDS = ("train", "valid", "test")
# Batches are sorted by length within windows of this many batches: padding shrinks to almost nothing
# while the order stays random from epoch to epoch.
BUCKET_WINDOW_BATCHES = 50
PROGRESS_EVERY_S = 30.0


@dataclass(frozen=True)
class LabelEncoding:
    """How a task's labels become training targets, and back. Saved in the model's config."""

    task_type: TaskType
    labels: tuple[str, ...]
    classes: tuple[str, ...] = ()  # multi-class: class names in head order
    mean: tuple[float, ...] = ()  # regression: training-fold mean and sd per label
    std: tuple[float, ...] = ()

    @classmethod
    def fit(cls, task: TaskSpec, molecules: pd.DataFrame, train_mask: np.ndarray) -> LabelEncoding:
        labels = task.label_columns
        if task.type is TaskType.MULTICLASS:
            classes = tuple(sorted(molecules[labels[0]].dropna().astype(str).unique()))
            return cls(task.type, labels, classes=classes)
        if task.type is TaskType.REGRESSION:
            values = molecules.loc[train_mask, list(labels)].to_numpy(dtype=float)
            mean = np.nanmean(values, axis=0)
            std = np.nanstd(values, axis=0)
            std = np.where(std > 0, std, 1.0)
            return cls(task.type, labels, mean=tuple(map(float, mean)), std=tuple(map(float, std)))
        return cls(task.type, labels)

    def head(self) -> HeadSpec:
        if self.task_type is TaskType.BINARY:
            names = {0: f"{self.labels[0]}=0", 1: f"{self.labels[0]}=1"}
            return HeadSpec(2, "single_label_classification", names)
        if self.task_type is TaskType.MULTICLASS:
            return HeadSpec(len(self.classes), "single_label_classification", dict(enumerate(self.classes)))
        problem = "multi_label_classification" if self.task_type is TaskType.MULTILABEL else "regression"
        return HeadSpec(len(self.labels), problem, dict(enumerate(self.labels)))

    def targets(self, molecules: pd.DataFrame) -> np.ndarray:
        """Float targets (n, labels) with NaN for missing; multi-class: class indices (n,)."""
        if self.task_type is TaskType.MULTICLASS:
            index = {name: position for position, name in enumerate(self.classes)}
            return molecules[self.labels[0]].astype(str).map(index).to_numpy(dtype=np.int64)
        values = molecules[list(self.labels)].to_numpy(dtype=np.float32)
        if self.task_type is TaskType.REGRESSION:
            values = (values - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return values

    def predictions(self, logits: torch.Tensor) -> np.ndarray:
        """Probabilities (classification) or values in the labels' units (regression); never logits."""
        logits = logits.float()
        if self.task_type is TaskType.BINARY:
            return torch.softmax(logits, dim=-1)[:, 1:].cpu().numpy()
        if self.task_type is TaskType.MULTICLASS:
            return torch.softmax(logits, dim=-1).cpu().numpy()
        if self.task_type is TaskType.MULTILABEL:
            return torch.sigmoid(logits).cpu().numpy()
        return logits.cpu().numpy() * np.asarray(self.std) + np.asarray(self.mean)

    def prediction_columns(self) -> list[str]:
        names = self.classes if self.task_type is TaskType.MULTICLASS else self.labels
        return [prediction_header(name) for name in names]

    def metric_targets(self, targets: np.ndarray) -> np.ndarray:
        """Targets in the units `chemlm.metrics.validation_score` expects."""
        if self.task_type is TaskType.REGRESSION:
            return targets * np.asarray(self.std) + np.asarray(self.mean)
        return targets


@dataclass
class EncodedFold:
    mol_ids: np.ndarray
    input_ids: list[list[int]]
    targets: np.ndarray

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(ids) for ids in self.input_ids), dtype=np.int64, count=len(self.input_ids))


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    valid_loss: float
    valid_metric: float
    seconds: float


@dataclass
class FinetuneResult:
    history: list[EpochRecord]
    best_epoch: int
    monitored: str
    truncated: dict[str, int] = field(default_factory=dict)


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def tokenize(tokenizer: PreTrainedTokenizerBase, smiles: list[str], max_length: int) -> tuple[list[list[int]], int]:
    """Token ids truncated to `max_length`, and how many SMILES were truncated."""
    full = tokenizer(smiles, add_special_tokens=True)["input_ids"]
    truncated = sum(len(ids) > max_length for ids in full)
    if not truncated:
        return full, 0
    return tokenizer(smiles, truncation=True, max_length=max_length)["input_ids"], truncated


def training_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    order = rng.permutation(len(lengths))
    window = batch_size * BUCKET_WINDOW_BATCHES
    batches: list[np.ndarray] = []
    for start in range(0, len(order), window):
        chunk = order[start : start + window]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def evaluation_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    order = np.argsort(lengths, kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def collate(input_ids: list[list[int]], batch: np.ndarray, pad_id: int, device: torch.device) -> dict[str, torch.Tensor]:
    longest = max(len(input_ids[i]) for i in batch)
    ids = torch.full((len(batch), longest), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), longest), dtype=torch.long)
    for row, index in enumerate(batch):
        sequence = input_ids[index]
        ids[row, : len(sequence)] = torch.as_tensor(sequence)
        mask[row, : len(sequence)] = 1
    pin = device.type == "cuda"
    if pin:
        ids, mask = ids.pin_memory(), mask.pin_memory()
    return {"input_ids": ids.to(device, non_blocking=pin), "attention_mask": mask.to(device, non_blocking=pin)}


class TaskLoss:
    """The task's loss on logits, with missing labels masked and optional class weights."""

    def __init__(self, encoding: LabelEncoding, train_targets: np.ndarray, class_weighted: bool, device: torch.device):
        self.task_type = encoding.task_type
        self.class_weights: torch.Tensor | None = None
        self.pos_weight: torch.Tensor | None = None
        if not class_weighted or not self.task_type.is_classification:
            return
        if self.task_type is TaskType.MULTILABEL:
            positives = np.nansum(train_targets, axis=0)
            negatives = np.sum(~np.isnan(train_targets), axis=0) - positives
            self.pos_weight = torch.tensor(negatives / np.maximum(positives, 1), dtype=torch.float32, device=device)
            return
        indices = self.class_indices(train_targets)
        classes = encoding.head().num_labels
        counts = np.bincount(indices, minlength=classes).astype(np.float64)
        # sklearn's "balanced" weights; a class absent from training gets weight 0 instead of infinity
        weights = np.where(counts > 0, len(indices) / (classes * np.maximum(counts, 1)), 0.0)
        self.class_weights = torch.tensor(weights, dtype=torch.float32, device=device)

    def class_indices(self, targets: np.ndarray) -> np.ndarray:
        return targets.astype(np.int64) if targets.ndim == 1 else targets[:, 0].astype(np.int64)

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        if self.task_type in (TaskType.BINARY, TaskType.MULTICLASS):
            classes = targets.long() if targets.ndim == 1 else targets[:, 0].long()
            return F.cross_entropy(logits, classes, weight=self.class_weights)
        present = ~torch.isnan(targets)
        filled = torch.nan_to_num(targets)
        if self.task_type is TaskType.MULTILABEL:
            losses = F.binary_cross_entropy_with_logits(logits, filled, pos_weight=self.pos_weight, reduction="none")
        else:
            losses = (logits - filled) ** 2
        return (losses * present).sum() / present.sum().clamp(min=1)


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def predict_logits(
    model: PreTrainedModel, fold: EncodedFold, batch_size: int, pad_id: int, device: torch.device
) -> torch.Tensor:
    model.eval()
    outputs = torch.empty((len(fold.input_ids), model.config.num_labels), dtype=torch.float32, device=device)
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        for batch in evaluation_batches(fold.lengths, batch_size):
            logits = model(**collate(fold.input_ids, batch, pad_id, device)).logits
            outputs[torch.as_tensor(batch, device=device)] = logits.float()
    return outputs


def train(
    model: PreTrainedModel,
    folds: dict[str, EncodedFold],
    encoding: LabelEncoding,
    params: FinetuneParams,
    pad_id: int,
    seed: int,
    device: torch.device,
) -> FinetuneResult:
    """Train with AdamW until the validation metric stops improving; the best epoch's weights are restored."""
    model.to(device)
    train_fold, valid_fold = folds["train"], folds["valid"]
    loss_fn = TaskLoss(encoding, train_fold.targets, params.class_weighted, device)
    optimizer = torch.optim.AdamW(
        model.parameters(),
        lr=params.learning_rate,
        betas=params.betas,
        weight_decay=params.weight_decay,
        fused=device.type == "cuda",
    )
    train_targets = torch.tensor(train_fold.targets, device=device)
    valid_targets = torch.tensor(valid_fold.targets, device=device)
    valid_truth = encoding.metric_targets(valid_fold.targets)
    rng = np.random.default_rng(seed)
    lengths = train_fold.lengths
    higher_is_better = HIGHER_IS_BETTER[encoding.task_type]
    monitored = "valid_metric"
    history: list[EpochRecord] = []
    best_score, best_epoch, best_state = None, 0, None
    for epoch in range(1, params.max_epochs + 1):
        started = time.perf_counter()
        model.train()
        loss_sum = torch.zeros((), device=device)
        batches = training_batches(lengths, params.batch_size, rng)
        last_report = started
        for step, batch in enumerate(batches, start=1):
            inputs = collate(train_fold.input_ids, batch, pad_id, device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                logits = model(**inputs).logits
            loss = loss_fn(logits, train_targets[torch.as_tensor(batch, device=device)])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * len(batch)
            if device.type == "cpu" and time.perf_counter() - last_report > PROGRESS_EVERY_S:
                last_report = time.perf_counter()
                logger.info("epoch %d: step %d/%d", epoch, step, len(batches))
        valid_logits = predict_logits(model, valid_fold, params.eval_batch_size, pad_id, device)
        valid_loss = float(loss_fn(valid_logits, valid_targets))
        valid_metric = float(validation_score(encoding.task_type, valid_truth, encoding.predictions(valid_logits)))
        record = EpochRecord(epoch, float(loss_sum) / len(lengths), valid_loss, valid_metric, time.perf_counter() - started)
        history.append(record)
        if epoch == 1 and np.isnan(valid_metric):
            monitored = "valid_loss"
            logger.warning("validation metric undefined (one class in the validation fold?): early stopping on validation loss")
        score = record.valid_loss if monitored == "valid_loss" else record.valid_metric
        maximise = higher_is_better and monitored == "valid_metric"
        improved = best_score is None or (not np.isnan(score) and (score > best_score if maximise else score < best_score))
        if improved:
            best_score, best_epoch = score, epoch
            best_state = {name: tensor.detach().to("cpu", copy=True) for name, tensor in model.state_dict().items()}
        logger.info(
            "epoch %d/%d train_loss %.4f valid_loss %.4f valid_metric %.4f best %.4f @ epoch %d (%.1f s)",
            epoch, params.max_epochs, record.train_loss, valid_loss, valid_metric, best_score, best_epoch, record.seconds,
        )
        if epoch - best_epoch >= params.patience:
            logger.info("early stopping: no improvement of %s for %d epochs", monitored, params.patience)
            break
    model.load_state_dict(best_state)
    logger.info("restored epoch %d (%s %.4f)", best_epoch, monitored, best_score)
    return FinetuneResult(history, best_epoch, monitored)


def load_fold_tables(molecules_csv: Path, split_csv: Path) -> pd.DataFrame:
    molecules = read_csv(molecules_csv, dtype={"mol_id": str})
    assignment = read_csv(split_csv, dtype={"mol_id": str})
    if len(assignment) != len(molecules) or not (assignment["mol_id"].to_numpy() == molecules["mol_id"].to_numpy()).all():
        raise InputError(f"{split_csv}: its mol_ids do not match {molecules_csv}; rerun the split")
    molecules["fold"] = assignment["fold"].to_numpy()
    for fold in FOLDS:
        if not (molecules["fold"] == fold).any():
            raise InputError(f"{split_csv}: the {fold} fold is empty")
    return molecules


def prediction_table(encoding: LabelEncoding, molecules: pd.DataFrame, fold: str, predictions: np.ndarray) -> pd.DataFrame:
    rows = molecules[molecules["fold"] == fold]
    table = pd.DataFrame({"mol_id": rows["mol_id"].to_numpy(), "fold": fold})
    for label in encoding.labels:
        table[label_header(label)] = rows[label].to_numpy()
    for column, values in zip(encoding.prediction_columns(), predictions.T):
        table[column] = values
    return table


def finetune(
    molecules_csv: Path,
    split_csv: Path,
    task: TaskSpec,
    checkpoint: CheckpointSpec,
    params: FinetuneParams,
    seed: int,
    model_dir: Path,
    history_csv: Path,
    predictions_csv: Path,
    run_json: Path,
) -> FinetuneResult:
    """Fine-tune `checkpoint` on `task` and write the model folder, history, test/valid predictions and a run record."""
    started = time.perf_counter()
    set_seed(seed)
    device = pick_device()
    molecules = load_fold_tables(Path(molecules_csv), Path(split_csv))
    encoding = LabelEncoding.fit(task, molecules, (molecules["fold"] == "train").to_numpy())
    model, tokenizer = load_for_finetuning(checkpoint, encoding.head(), seed)
    folds: dict[str, EncodedFold] = {}
    truncated: dict[str, int] = {}
    for fold in FOLDS:
        rows = molecules[molecules["fold"] == fold]
        input_ids, truncated[fold] = tokenize(tokenizer, rows["smiles"].tolist(), params.max_length)
        folds[fold] = EncodedFold(rows["mol_id"].to_numpy(), input_ids, encoding.targets(rows))
    if any(truncated.values()):
        logger.warning("SMILES longer than %d tokens were truncated: %s", params.max_length, truncated)
    logger.info(
        "task '%s' (%s), checkpoint '%s', seed %d, device %s: train %d, valid %d, test %d",
        task.name, task.type.value, checkpoint.name, seed, device.type,
        *(len(folds[fold].input_ids) for fold in FOLDS),
    )
    result = train(model, folds, encoding, params, tokenizer.pad_token_id, seed, device)
    result.truncated = truncated

    tables = [
        prediction_table(
            encoding, molecules, fold,
            encoding.predictions(predict_logits(model, folds[fold], params.eval_batch_size, tokenizer.pad_token_id, device)),
        )
        for fold in ("valid", "test")
    ]
    model.config.update({"chemlm_task": {**asdict(encoding), "task_type": encoding.task_type.value, "task": task.name}})
    with atomic_path(model_dir) as temporary:
        model.to("cpu").save_pretrained(temporary)
        tokenizer.save_pretrained(temporary)
    write_csv(pd.DataFrame([asdict(record) for record in result.history]), history_csv)
    write_csv(pd.concat(tables, ignore_index=True), predictions_csv)
    write_json(
        {
            "task": task.name,
            "checkpoint": checkpoint.to_dict(),
            "seed": seed,
            "device": device.type,
            "params": params.to_dict(),
            "fold_sizes": {fold: len(folds[fold].input_ids) for fold in FOLDS},
            "truncated_smiles": truncated,
            "best_epoch": result.best_epoch,
            "epochs_run": len(result.history),
            "early_stopping_on": result.monitored,
            "seconds": round(time.perf_counter() - started, 2),
        },
        run_json,
    )
    return result
