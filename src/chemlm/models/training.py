"""Fine-tuning: our own training loop with length-bucketed dynamic padding and early stopping.

It imports no rdkit: a GPU machine runs it on molecules.csv and a split file alone.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from chemlm.config import CheckpointSpec, FinetuneParams
from chemlm.folds import FOLDS, load_fold_tables
from chemlm.io import atomic_path, write_csv, write_json
from chemlm.metrics import HIGHER_IS_BETTER, validation_score
from chemlm.models.checkpoints import HeadSpec, load_for_finetuning
from chemlm.tasks import TaskSpec, TaskType, label_header, prediction_header

logger = logging.getLogger(__name__)

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
    """The task's loss on logits, with missing labels masked and optional class weights.

    It is a sum divided by a normaliser that depends on the targets alone, so the chunks of a batch
    (gradient accumulation after running out of memory) add up to exactly the whole batch's loss.
    """

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
        indices = single_label_classes(train_targets)
        classes = encoding.head().num_labels
        counts = np.bincount(indices, minlength=classes).astype(np.float64)
        # sklearn's "balanced" weights; a class absent from training gets weight 0 instead of infinity
        weights = np.where(counts > 0, len(indices) / (classes * np.maximum(counts, 1)), 0.0)
        self.class_weights = torch.tensor(weights, dtype=torch.float32, device=device)

    @property
    def single_label(self) -> bool:
        return self.task_type in (TaskType.BINARY, TaskType.MULTICLASS)

    def normaliser(self, targets: torch.Tensor) -> torch.Tensor:
        if self.single_label:
            classes = single_label_classes(targets)
            if self.class_weights is None:
                return torch.tensor(float(len(classes)), device=targets.device)
            return self.class_weights[classes].sum()
        return (~torch.isnan(targets)).sum().float()

    def summed(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        if self.single_label:
            return F.cross_entropy(logits, single_label_classes(targets), weight=self.class_weights, reduction="sum")
        present = ~torch.isnan(targets)
        filled = torch.nan_to_num(targets)
        if self.task_type is TaskType.MULTILABEL:
            losses = F.binary_cross_entropy_with_logits(logits, filled, pos_weight=self.pos_weight, reduction="none")
        else:
            losses = (logits - filled) ** 2
        return (losses * present).sum()

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.summed(logits, targets) / self.normaliser(targets).clamp(min=1e-12)


def single_label_classes(targets):
    """Class indices from binary (n, 1) float or multi-class (n,) integer targets (numpy or torch)."""
    column = targets if targets.ndim == 1 else targets[:, 0]
    return column.long() if isinstance(column, torch.Tensor) else column.astype(np.int64)


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast(device: torch.device):
    """bf16 mixed precision on GPU; full precision on CPU, where it is exact and reproducible."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def predict_logits(
    model: PreTrainedModel, fold: EncodedFold, batch_size: int, pad_id: int, device: torch.device
) -> torch.Tensor:
    model.eval()
    outputs = torch.empty((len(fold.input_ids), model.config.num_labels), dtype=torch.float32, device=device)
    with torch.inference_mode(), autocast(device):
        for batch in evaluation_batches(fold.lengths, batch_size):
            logits = model(**collate(fold.input_ids, batch, pad_id, device)).logits
            outputs[torch.as_tensor(batch, device=device)] = logits.float()
    return outputs


def accumulate_gradients(
    model: PreTrainedModel,
    loss_fn: TaskLoss,
    fold: EncodedFold,
    targets: torch.Tensor,
    batch: np.ndarray,
    chunks: int,
    pad_id: int,
    device: torch.device,
) -> torch.Tensor:
    """Backpropagate one batch in `chunks` parts; the gradients equal the whole batch's. Returns its loss."""
    normaliser = loss_fn.normaliser(targets[torch.as_tensor(batch, device=device)]).clamp(min=1e-12)
    total = torch.zeros((), device=device)
    for part in np.array_split(batch, chunks):
        with autocast(device):
            logits = model(**collate(fold.input_ids, part, pad_id, device)).logits
        loss = loss_fn.summed(logits, targets[torch.as_tensor(part, device=device)]) / normaliser
        loss.backward()
        total += loss.detach()
    return total


@dataclass
class LoopState:
    """Where training stands after a completed epoch; saved each epoch so a killed job resumes."""

    epoch: int = 0
    history: list[EpochRecord] = field(default_factory=list)
    best_epoch: int = 0
    best_score: float | None = None
    monitored: str = "valid_metric"
    chunks: int = 1  # gradient-accumulation parts per batch, raised after running out of GPU memory

    def stopped(self, params: FinetuneParams) -> bool:
        return self.epoch >= params.max_epochs or (self.epoch > 0 and self.epoch - self.best_epoch >= params.patience)


class Checkpointing:
    """Per-epoch training state in `directory`, valid only for the run whose `fingerprint` wrote it.

    `weights` are tensor dicts (safetensors files), `objects` are optimizer, scheduler and random-generator states
    (one file read back with weights_only=True) and `meta` is JSON.
    """

    def __init__(self, directory: Path, fingerprint: str):
        self.directory = Path(directory)
        self.fingerprint = fingerprint

    def save(self, weights: dict[str, dict[str, torch.Tensor]], objects: dict, meta: dict) -> None:
        with atomic_path(self.directory) as temporary:
            temporary.mkdir()
            for name, tensors in weights.items():
                save_file(cpu_copy(tensors), temporary / f"{name}.safetensors")
            torch.save(objects, temporary / "objects.pt")
            (temporary / "state.json").write_text(json.dumps({"fingerprint": self.fingerprint, **meta}))

    def load(self, weight_names: tuple[str, ...]) -> tuple[dict[str, dict[str, torch.Tensor]], dict, dict] | None:
        """(weights on the CPU, objects, meta) of the last saved epoch, or None to start afresh."""
        meta_path = self.directory / "state.json"
        if not meta_path.is_file():
            return None
        meta = json.loads(meta_path.read_text())
        if meta.pop("fingerprint") != self.fingerprint:
            logger.info("ignoring saved state in %s: it belongs to other inputs or settings", self.directory)
            return None
        weights = {name: load_file(self.directory / f"{name}.safetensors") for name in weight_names}
        objects = torch.load(self.directory / "objects.pt", map_location="cpu", weights_only=True)
        return weights, objects, meta

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def cpu_copy(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().to("cpu", copy=True).contiguous() for name, tensor in state_dict.items()}


def train_epoch(
    model: PreTrainedModel,
    loss_fn: TaskLoss,
    optimizer: torch.optim.Optimizer,
    fold: EncodedFold,
    targets: torch.Tensor,
    params: FinetuneParams,
    state: LoopState,
    rng: np.random.Generator,
    pad_id: int,
    device: torch.device,
    epoch: int,
) -> float:
    """One pass over the training fold; returns the mean training loss (one host sync, at the end)."""
    model.train()
    loss_sum = torch.zeros((), device=device)
    batches = training_batches(fold.lengths, params.batch_size, rng)
    last_report = time.perf_counter()
    for step, batch in enumerate(batches, start=1):
        while True:
            optimizer.zero_grad(set_to_none=True)
            try:
                loss = accumulate_gradients(model, loss_fn, fold, targets, batch, state.chunks, pad_id, device)
                break
            except torch.OutOfMemoryError:
                if state.chunks >= len(batch):
                    raise
                optimizer.zero_grad(set_to_none=True)
                torch.cuda.empty_cache()
                state.chunks *= 2
                logger.warning(
                    "out of GPU memory: each batch of %d now runs in %d parts with gradient accumulation "
                    "(the effective batch size is unchanged)", params.batch_size, state.chunks,
                )
        optimizer.step()
        loss_sum += loss * len(batch)
        if device.type == "cpu" and time.perf_counter() - last_report > PROGRESS_EVERY_S:
            last_report = time.perf_counter()
            logger.info("epoch %d: step %d/%d", epoch, step, len(batches))
    return float(loss_sum) / len(fold.input_ids)


def make_optimizer(model: PreTrainedModel, params: FinetuneParams, device: torch.device) -> torch.optim.Optimizer:
    return torch.optim.AdamW(
        model.parameters(),
        lr=params.learning_rate,
        betas=params.betas,
        weight_decay=params.weight_decay,
        fused=device.type == "cuda",
    )


def train(
    model: PreTrainedModel,
    folds: dict[str, EncodedFold],
    encoding: LabelEncoding,
    params: FinetuneParams,
    pad_id: int,
    seed: int,
    device: torch.device,
    checkpointing: Checkpointing,
) -> LoopState:
    """Train with AdamW until the validation metric stops improving; the best epoch's weights are restored.

    State is saved after every epoch and picked up again when a killed run is restarted with the same
    inputs and settings, so the result equals that of an uninterrupted run.
    """
    model.to(device)
    train_fold, valid_fold = folds["train"], folds["valid"]
    loss_fn = TaskLoss(encoding, train_fold.targets, params.class_weighted, device)
    optimizer = make_optimizer(model, params, device)
    train_targets = torch.tensor(train_fold.targets, device=device)
    valid_targets = torch.tensor(valid_fold.targets, device=device)
    valid_truth = encoding.metric_targets(valid_fold.targets)
    rng = np.random.default_rng(seed)
    maximise_metric = HIGHER_IS_BETTER[encoding.task_type]
    state, best_state = LoopState(), cpu_copy(model.state_dict())
    resumed = checkpointing.load(("model", "best"))
    if resumed:
        weights, objects, meta = resumed
        model.load_state_dict(weights["model"])
        best_state = weights["best"]
        optimizer.load_state_dict(objects["optimizer"])
        torch.set_rng_state(objects["torch_rng"])
        rng.bit_generator.state = meta.pop("numpy_rng")
        state = LoopState(**{**meta, "history": [EpochRecord(**record) for record in meta["history"]]})
        logger.info("resuming after epoch %d from %s", state.epoch, checkpointing.directory)
    while not state.stopped(params):
        epoch = state.epoch + 1
        started = time.perf_counter()
        train_loss = train_epoch(model, loss_fn, optimizer, train_fold, train_targets, params, state, rng, pad_id, device, epoch)
        valid_logits = predict_logits(model, valid_fold, params.eval_batch_size, pad_id, device)
        valid_loss = float(loss_fn(valid_logits, valid_targets))
        valid_metric = float(validation_score(encoding.task_type, valid_truth, encoding.predictions(valid_logits)))
        record = EpochRecord(epoch, train_loss, valid_loss, valid_metric, time.perf_counter() - started)
        if epoch == 1 and np.isnan(valid_metric):
            state.monitored = "valid_loss"
            logger.warning("validation metric undefined (one class in the validation fold?): early stopping on validation loss")
        score = record.valid_loss if state.monitored == "valid_loss" else record.valid_metric
        maximise = maximise_metric and state.monitored == "valid_metric"
        best = state.best_score
        if best is None or (not np.isnan(score) and (score > best if maximise else score < best)):
            state.best_score, state.best_epoch = score, epoch
            best_state = cpu_copy(model.state_dict())
        state.epoch = epoch
        state.history.append(record)
        checkpointing.save(
            {"model": model.state_dict(), "best": best_state},
            {"optimizer": optimizer.state_dict(), "torch_rng": torch.get_rng_state()},
            {"numpy_rng": rng.bit_generator.state, **asdict(state)},
        )
        logger.info(
            "epoch %d/%d train_loss %.4f valid_loss %.4f valid_metric %.4f best %.4f @ epoch %d (%.1f s)",
            epoch, params.max_epochs, record.train_loss, valid_loss, valid_metric, state.best_score, state.best_epoch,
            record.seconds,
        )
    if state.epoch < params.max_epochs:
        logger.info("early stopping: no improvement of %s for %d epochs", state.monitored, params.patience)
    model.load_state_dict(best_state)
    logger.info("restored epoch %d (%s %.4f)", state.best_epoch, state.monitored, state.best_score)
    return state


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
    state_dir: Path,
) -> LoopState:
    """Fine-tune `checkpoint` on `task` and write the model folder, history, test/valid predictions and a run record.

    Training state goes to `state_dir` after each epoch (removed at the end); a rerun after a kill resumes there.
    """
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
    checkpointing = Checkpointing(Path(state_dir), run_fingerprint(molecules_csv, split_csv, task, checkpoint, params, seed))
    result = train(model, folds, encoding, params, tokenizer.pad_token_id, seed, device, checkpointing)

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
            "gradient_accumulation_parts": result.chunks,
            "seconds": round(time.perf_counter() - started, 2),
        },
        run_json,
    )
    checkpointing.remove()
    return result


def inputs_fingerprint(paths: list[Path], settings: dict) -> str:
    """What a saved training state depends on: its input files' contents and every setting that changes training."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(Path(path).read_bytes())
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def run_fingerprint(
    molecules_csv: Path, split_csv: Path, task: TaskSpec, checkpoint: CheckpointSpec, params: FinetuneParams, seed: int
) -> str:
    settings = {"task": asdict(task), "checkpoint": checkpoint.to_dict(), "params": params.to_dict(), "seed": seed}
    return inputs_fingerprint([molecules_csv, split_csv], settings)
