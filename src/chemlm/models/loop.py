"""The one training loop: fine-tuning, masked language modelling and descriptor regression are objectives of it.

An objective says how a batch is built, what its loss is, how the model is scored on held-out data and which
random state of its own must survive a restart. The loop owns everything else: the batch order (length-bucketed,
seeded), AdamW, the learning-rate schedule, gradient clipping, autocast, gradient accumulation when a batch does
not fit in GPU memory, early stopping, a line per epoch in the log, and the state saved after every epoch so that a
killed job resumes to the result an uninterrupted one gets.

It imports no rdkit.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file, save_file
from transformers import PreTrainedModel

from chemlm.io import atomic_path
from chemlm.models.batching import to_device, training_batches

logger = logging.getLogger(__name__)

PROGRESS_EVERY_S = 30.0
SCHEDULES = ("constant", "linear")


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast(device: torch.device):
    """bf16 mixed precision on GPU; full precision on CPU, where it is exact and reproducible."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


@dataclass(frozen=True)
class LoopSettings:
    """How to train, whatever the objective."""

    batch_size: int
    max_epochs: int
    learning_rate: float
    betas: tuple[float, float]
    weight_decay: float
    max_grad_norm: float | None = None  # clip the gradient norm to this; None: no clipping
    schedule: str = "constant"  # constant | linear (decay to zero at max_epochs), after the warm-up
    warmup_fraction: float = 0.0  # share of all steps over which the learning rate rises linearly to its peak
    patience: int | None = None  # stop after this many epochs without a better held-out score and keep the best
    # weights; None: train every epoch and keep the last weights

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule '{self.schedule}': expected one of {', '.join(SCHEDULES)}")


@dataclass
class Batch:
    """One batch on one device: padded `inputs` (input_ids, attention_mask) and the objective's `targets`, row by row."""

    inputs: dict[str, torch.Tensor]
    targets: torch.Tensor

    def __len__(self) -> int:
        return int(self.inputs["input_ids"].shape[0])

    def to(self, device: torch.device) -> Batch:
        return Batch(to_device(self.inputs, device), self.targets.to(device))

    def split(self, parts: int) -> list[Batch]:
        """`parts` batches of consecutive rows: the pieces gradient accumulation runs one after the other."""
        pieces = np.array_split(np.arange(len(self)), parts)
        return [
            Batch({name: tensor[rows[0] : rows[-1] + 1] for name, tensor in self.inputs.items()}, self.targets[rows[0] : rows[-1] + 1])
            for rows in pieces
            if len(rows)
        ]


@dataclass(frozen=True)
class HeldOutScore:
    """An objective's score on its held-out data after an epoch."""

    loss: float
    metric: float
    details: dict = field(default_factory=dict)


class Objective(Protocol):
    """What the loop trains for. `held_out` and `metric` name the history's columns (`{held_out}_loss`,
    `{held_out}_{metric}`); `maximise` says whether a higher metric is better."""

    held_out: str
    metric: str
    maximise: bool
    train_lengths: np.ndarray  # tokens of each training example, for the batch order

    def build_batch(self, indices: np.ndarray) -> Batch:
        """The training examples `indices` as a batch on the CPU, with any random draws of the objective (masks)."""

    def loss_sum(self, model: PreTrainedModel, batch: Batch) -> torch.Tensor:
        """The loss summed over the batch's targets (not averaged), so that pieces of a batch add up."""

    def normaliser(self, batch: Batch) -> torch.Tensor:
        """What the whole batch's summed loss is divided by; it depends on the targets alone."""

    def evaluate(self, model: PreTrainedModel, device: torch.device) -> HeldOutScore:
        """The held-out score, computed under inference mode."""

    def random_state(self) -> dict[str, torch.Tensor]:
        """Generator states of the objective's own (masking), saved with each epoch."""

    def set_random_state(self, state: dict[str, torch.Tensor]) -> None: ...


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    held_out_loss: float
    held_out_metric: float
    seconds: float


@dataclass
class LoopState:
    """Where training stands after a completed epoch; saved each epoch so a killed job resumes."""

    epoch: int = 0
    history: list[EpochRecord] = field(default_factory=list)
    best_epoch: int = 0
    best_score: float | None = None
    monitored: str = "metric"  # or "loss", when the held-out metric is undefined (one class)
    chunks: int = 1  # gradient-accumulation parts per batch, raised after running out of GPU memory
    details: dict = field(default_factory=dict)  # the last held-out evaluation's details

    def stopped(self, settings: LoopSettings) -> bool:
        if self.epoch >= settings.max_epochs:
            return True
        return settings.patience is not None and self.epoch > 0 and self.epoch - self.best_epoch >= settings.patience

    @classmethod
    def from_dict(cls, values: dict) -> LoopState:
        return cls(**{**values, "history": [EpochRecord(**record) for record in values["history"]]})


def history_table(state: LoopState, objective: Objective) -> pd.DataFrame:
    """history.csv: epoch, train_loss, {held_out}_loss, {held_out}_{metric}, seconds."""
    table = pd.DataFrame([asdict(record) for record in state.history])
    return table.rename(columns={"held_out_loss": f"{objective.held_out}_loss", "held_out_metric": f"{objective.held_out}_{objective.metric}"})


class ResumeState:
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

    def load(self) -> tuple[dict[str, dict[str, torch.Tensor]], dict, dict] | None:
        """(weights on the CPU, objects, meta) of the last saved epoch, or None to start afresh."""
        meta_path = self.directory / "state.json"
        if not meta_path.is_file():
            return None
        meta = json.loads(meta_path.read_text())
        if meta.pop("fingerprint") != self.fingerprint:
            logger.info("ignoring saved state in %s: it belongs to other inputs or settings", self.directory)
            return None
        weights = {path.stem: load_file(path) for path in sorted(self.directory.glob("*.safetensors"))}
        objects = torch.load(self.directory / "objects.pt", map_location="cpu", weights_only=True)
        return weights, objects, meta

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def inputs_fingerprint(paths: list[Path], settings: dict) -> str:
    """What a saved training state depends on: its input files' contents and every setting that changes training."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(Path(path).read_bytes())
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def cpu_copy(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().to("cpu", copy=True).contiguous() for name, tensor in state_dict.items()}


def generator_states(device: torch.device) -> dict[str, object]:
    """The global random generators' states: the CPU's, and every GPU's when training on CUDA (dropout there)."""
    states: dict[str, object] = {"torch_rng": torch.get_rng_state()}
    if device.type == "cuda":
        states["cuda_rng"] = torch.cuda.get_rng_state_all()
    return states


def restore_generator_states(objects: dict) -> None:
    torch.set_rng_state(objects["torch_rng"])
    if "cuda_rng" in objects and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(objects["cuda_rng"])


def learning_rate_factor(settings: LoopSettings, total_steps: int) -> Callable[[int], float]:
    """The multiplier of the peak learning rate at each step: linear warm-up, then constant or linear decay to 0."""
    warmup = round(settings.warmup_fraction * total_steps)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if settings.schedule == "constant":
            return 1.0
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return factor


def make_optimizer(model: PreTrainedModel, settings: LoopSettings, device: torch.device) -> torch.optim.AdamW:
    return torch.optim.AdamW(
        model.parameters(), lr=settings.learning_rate, betas=settings.betas, weight_decay=settings.weight_decay,
        fused=device.type == "cuda",
    )


def make_scheduler(optimizer: torch.optim.Optimizer, settings: LoopSettings, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, learning_rate_factor(settings, total_steps))


def backward(model: PreTrainedModel, objective: Objective, batch: Batch, chunks: int, device: torch.device) -> torch.Tensor:
    """Backpropagate one batch in `chunks` parts; the gradients equal the whole batch's. Returns its loss."""
    normaliser = objective.normaliser(batch).clamp(min=1e-12)
    total = torch.zeros((), device=device)
    for part in batch.split(chunks):
        with autocast(device):
            loss = objective.loss_sum(model, part) / normaliser
        loss.backward()
        total += loss.detach()
    return total


def train_epoch(
    model: PreTrainedModel,
    objective: Objective,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    settings: LoopSettings,
    state: LoopState,
    rng: np.random.Generator,
    device: torch.device,
) -> float:
    """One pass over the training data; returns the mean training loss (one host sync, at the end)."""
    model.train()
    loss_sum = torch.zeros((), device=device)
    batches = training_batches(objective.train_lengths, settings.batch_size, rng)
    epoch, last_report = state.epoch + 1, time.perf_counter()
    for step, indices in enumerate(batches, start=1):
        batch = objective.build_batch(indices).to(device)
        while True:
            optimizer.zero_grad(set_to_none=True)
            try:
                loss = backward(model, objective, batch, state.chunks, device)
                break
            except torch.OutOfMemoryError:
                if state.chunks >= len(batch):
                    raise
                optimizer.zero_grad(set_to_none=True)
                torch.cuda.empty_cache()
                state.chunks *= 2
                logger.warning(
                    "out of GPU memory: each batch of %d now runs in %d parts with gradient accumulation "
                    "(the effective batch size is unchanged)", settings.batch_size, state.chunks,
                )
        if settings.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), settings.max_grad_norm)
        optimizer.step()
        scheduler.step()
        loss_sum += loss * len(batch)
        if time.perf_counter() - last_report > PROGRESS_EVERY_S:
            last_report = time.perf_counter()
            logger.info("epoch %d: step %d/%d", epoch, step, len(batches))
    return float(loss_sum) / len(objective.train_lengths)


def improved(score: float, best: float | None, maximise: bool) -> bool:
    if best is None:
        return True
    return not math.isnan(score) and (score > best if maximise else score < best)


def train(
    model: PreTrainedModel,
    objective: Objective,
    settings: LoopSettings,
    seed: int,
    device: torch.device,
    resume: ResumeState,
) -> LoopState:
    """Train `model` for `objective`, scoring it on held-out data after each epoch.

    With early stopping (`settings.patience`) the best epoch's weights are restored at the end, else the last
    epoch's are kept. The state is saved after every epoch and picked up again when a killed run restarts with
    the same inputs and settings, so the result equals that of an uninterrupted run.
    """
    model.to(device)
    optimizer = make_optimizer(model, settings, device)
    steps_per_epoch = len(training_batches(objective.train_lengths, settings.batch_size, np.random.default_rng(seed)))
    scheduler = make_scheduler(optimizer, settings, settings.max_epochs * steps_per_epoch)
    rng = np.random.default_rng(seed)
    keep_best = settings.patience is not None
    state = LoopState()
    best_weights = cpu_copy(model.state_dict()) if keep_best else {}
    resumed = resume.load()
    if resumed:
        weights, objects, meta = resumed
        model.load_state_dict(weights["model"])
        best_weights = weights.get("best", {})
        optimizer.load_state_dict(objects["optimizer"])
        scheduler.load_state_dict(objects["scheduler"])
        restore_generator_states(objects)
        objective.set_random_state(objects["objective"])
        rng.bit_generator.state = meta.pop("numpy_rng")
        state = LoopState.from_dict(meta)
        logger.info("resuming after epoch %d from %s", state.epoch, resume.directory)
    metric_name = f"{objective.held_out}_{objective.metric}"
    while not state.stopped(settings):
        epoch = state.epoch + 1
        started = time.perf_counter()
        train_loss = train_epoch(model, objective, optimizer, scheduler, settings, state, rng, device)
        model.eval()
        with torch.inference_mode(), autocast(device):
            score = objective.evaluate(model, device)
        record = EpochRecord(epoch, train_loss, score.loss, score.metric, time.perf_counter() - started)
        if epoch == 1 and math.isnan(score.metric):
            state.monitored = "loss"
            logger.warning("%s undefined (one class in the held-out data?): early stopping on %s_loss", metric_name, objective.held_out)
        monitored = score.loss if state.monitored == "loss" else score.metric
        if improved(monitored, state.best_score, objective.maximise and state.monitored == "metric"):
            state.best_score, state.best_epoch = monitored, epoch
            if keep_best:
                best_weights = cpu_copy(model.state_dict())
        state.epoch, state.details = epoch, score.details
        state.history.append(record)
        objects = {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "objective": objective.random_state(),
            **generator_states(device),
        }
        resume.save(
            {"model": model.state_dict(), **({"best": best_weights} if keep_best else {})},
            objects,
            {"numpy_rng": rng.bit_generator.state, **asdict(state)},
        )
        best = f" best {state.best_score:.4f} @ epoch {state.best_epoch}" if keep_best else ""
        logger.info(
            "epoch %d/%d train_loss %.4f %s_loss %.4f %s %.4f%s (%.1f s)",
            epoch, settings.max_epochs, train_loss, objective.held_out, score.loss, metric_name, score.metric, best, record.seconds,
        )
    if keep_best:
        if state.epoch < settings.max_epochs:
            logger.info("early stopping: no improvement of %s_%s for %d epochs", objective.held_out, state.monitored, settings.patience)
        model.load_state_dict(best_weights)
        logger.info("restored epoch %d (%s_%s %.4f)", state.best_epoch, objective.held_out, state.monitored, state.best_score)
    return state
