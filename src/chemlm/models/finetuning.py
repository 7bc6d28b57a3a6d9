"""Fine-tuning: a checkpoint with a task head, trained by the one training loop (chemlm.models.loop) with early
stopping on the validation metric; writes the model folder, history, predictions and a run record.

It imports no rdkit: a GPU machine runs it on molecules.csv and a split file alone.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from transformers import PreTrainedModel

from chemlm.calibration import fit_predictions
from chemlm.config import CheckpointSpec, FinetuneParams
from chemlm.folds import FOLDS, load_fold_tables
from chemlm.io import InputError, atomic_path, read_csv, write_csv, write_json
from chemlm.metrics import HIGHER_IS_BETTER, validation_score
from chemlm.models.batching import TokenStore, collate, evaluation_batches, flat_variants, sequence_lengths, tokenize
from chemlm.models.checkpoints import load_for_finetuning
from chemlm.models.labels import LabelEncoding, average_over_variants
from chemlm.models.loop import (
    Batch,
    HeldOutScore,
    LoopSettings,
    LoopState,
    ResumeState,
    autocast,
    history_table,
    inputs_fingerprint,
    pick_device,
    set_seed,
    train,
)
from chemlm.tasks import TaskSpec, TaskType, label_header
from chemlm.variants import SEED as VARIANTS_SEED

logger = logging.getLogger(__name__)


@dataclass
class EncodedFold:
    """A fold's molecules (`mol_ids`, `targets`) and their token sequences: one per SMILES variant, a molecule's
    variants next to each other, the canonical SMILES first (`molecule_of`: each sequence's molecule)."""

    mol_ids: np.ndarray
    input_ids: list[list[int]]
    targets: np.ndarray
    molecule_of: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.molecule_of is None:
            self.molecule_of = np.arange(len(self.input_ids))
        self.first = np.searchsorted(self.molecule_of, np.arange(len(self.mol_ids)))  # each molecule's canonical row
        self.variants = np.bincount(self.molecule_of, minlength=len(self.mol_ids))

    @property
    def lengths(self) -> np.ndarray:
        return sequence_lengths(self.input_ids)

    def per_molecule(self, logits: torch.Tensor) -> torch.Tensor:
        """Each molecule's logits averaged over its variants (test-time augmentation; the identity without it)."""
        return average_over_variants(logits, self.molecule_of, len(self.mol_ids))


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


class TaskObjective:
    """Fine-tuning as an objective of the training loop: the task's loss on the training fold, scored by the
    validation loss and the task type's validation metric (AUROC, macro-F1 or RMSE)."""

    held_out = "valid"
    metric = "metric"

    def __init__(
        self, folds: dict[str, EncodedFold], encoding: LabelEncoding, params: FinetuneParams, pad_id: int, device: torch.device, seed: int = 0
    ):
        self.train_fold, self.valid_fold = folds["train"], folds["valid"]
        self.encoding = encoding
        self.loss_fn = TaskLoss(encoding, self.train_fold.targets, params.class_weighted, device)
        self.eval_batch_size = params.eval_batch_size
        self.pad_id = pad_id
        self.maximise = HIGHER_IS_BETTER[encoding.task_type]
        # One example per molecule (a random variant of it in each batch) or per variant (every variant each epoch).
        self.every_variant = params.augment_mode == "all"
        lengths = self.train_fold.lengths
        self.train_lengths = lengths if self.every_variant else lengths[self.train_fold.first]
        self.train_tokens = TokenStore(self.train_fold.input_ids, pad_id, device)
        self.train_targets = torch.tensor(self.train_fold.targets, device=device)
        self.valid_targets = torch.tensor(self.valid_fold.targets, device=device)
        self.valid_truth = encoding.metric_targets(self.valid_fold.targets)
        self.variant_generator = torch.Generator().manual_seed(seed)

    def build_batch(self, indices: np.ndarray) -> Batch:
        fold = self.train_fold
        if self.every_variant:
            rows, molecules = indices, fold.molecule_of[indices]
        else:
            draws = torch.rand(len(indices), generator=self.variant_generator).numpy()
            rows, molecules = fold.first[indices] + (draws * fold.variants[indices]).astype(np.int64), indices
        return Batch(self.train_tokens.batch(rows), self.train_targets[torch.as_tensor(molecules).to(self.train_targets.device)])

    def loss_sum(self, model: PreTrainedModel, batch: Batch) -> torch.Tensor:
        return self.loss_fn.summed(model(**batch.inputs).logits, batch.targets)

    def normaliser(self, batch: Batch) -> torch.Tensor:
        return self.loss_fn.normaliser(batch.targets)

    def evaluate(self, model: PreTrainedModel, device: torch.device) -> HeldOutScore:
        logits = self.valid_fold.per_molecule(predict_logits(model, self.valid_fold, self.eval_batch_size, self.pad_id, device))
        metric = validation_score(self.encoding.task_type, self.valid_truth, self.encoding.predictions(logits))
        return HeldOutScore(float(self.loss_fn(logits, self.valid_targets)), float(metric))

    def random_state(self) -> dict[str, torch.Tensor]:
        """The variant draws' generator (the batch order is the loop's)."""
        return {"variants": self.variant_generator.get_state()}

    def set_random_state(self, state: dict[str, torch.Tensor]) -> None:
        self.variant_generator.set_state(state["variants"])


def loop_settings(params: FinetuneParams) -> LoopSettings:
    return LoopSettings(
        batch_size=params.batch_size,
        max_epochs=params.max_epochs,
        learning_rate=params.learning_rate,
        betas=params.betas,
        weight_decay=params.weight_decay,
        max_grad_norm=params.max_grad_norm,
        schedule=params.schedule,
        warmup_fraction=params.warmup_fraction,
        patience=params.patience,
    )


def prediction_table(encoding: LabelEncoding, molecules: pd.DataFrame, fold: str, predictions: np.ndarray) -> pd.DataFrame:
    rows = molecules[molecules["fold"] == fold]
    table = pd.DataFrame({"mol_id": rows["mol_id"].to_numpy(), "fold": fold})
    for label in encoding.labels:
        table[label_header(label)] = rows[label].to_numpy()
    for column, values in zip(encoding.prediction_columns(), predictions.T):
        table[column] = values
    return table


@dataclass
class Training:
    """A fine-tuned model with what it was trained on; its weights are the kept (best) epoch's."""

    model: PreTrainedModel
    tokenizer: object
    molecules: pd.DataFrame
    encoding: LabelEncoding
    folds: dict[str, EncodedFold]
    truncated: dict[str, int]
    objective: TaskObjective
    state: LoopState
    device: torch.device

    def predict(self, fold: str, eval_batch_size: int) -> np.ndarray:
        """Each molecule's probabilities or values, averaged over its variants in logit space."""
        logits = predict_logits(self.model, self.folds[fold], eval_batch_size, self.tokenizer.pad_token_id, self.device)
        return self.encoding.predictions(self.folds[fold].per_molecule(logits))


def fold_smiles(rows: pd.DataFrame, variants: dict[str, list[str]] | None, count: int) -> tuple[list[str], np.ndarray]:
    """Each molecule's first `count` SMILES variants (the canonical one first), and the molecule of each."""
    if variants is None or count <= 1:
        return rows["smiles"].tolist(), np.arange(len(rows))
    return flat_variants([variants[mol_id][:count] for mol_id in rows["mol_id"]])


def read_variants(variants_csv: Path, molecules: pd.DataFrame) -> dict[str, list[str]]:
    """mol_id -> its SMILES variants in order (chemlm.augment writes them, the canonical SMILES first)."""
    table = read_csv(variants_csv, dtype={"mol_id": str, "smiles": str})
    variants = {mol_id: group["smiles"].tolist() for mol_id, group in table.groupby("mol_id", sort=False)}
    missing = [mol_id for mol_id in molecules["mol_id"] if mol_id not in variants]
    if missing:
        raise InputError(f"{variants_csv}: no SMILES variants of molecule '{missing[0]}'; rerun the augmentation")
    return variants


def train_on_folds(
    molecules_csv: Path, split_csv: Path, task: TaskSpec, checkpoint: CheckpointSpec, params: FinetuneParams, seed: int,
    resume_dir: Path, variants_csv: Path | None = None,
) -> Training:
    """Fine-tune `checkpoint` on the training fold with early stopping on the validation fold.

    With `params.augment` K, each training molecule is read as its first K SMILES variants (`variants_csv`); with
    `params.test_time_augment` M, validation and test molecules are predicted from their first M variants,
    averaged. Training state goes to `resume_dir` after each epoch; a rerun after a kill resumes there (the caller
    removes it once its outputs are written).
    """
    set_seed(seed)
    device = pick_device()
    molecules = load_fold_tables(Path(molecules_csv), Path(split_csv))
    encoding = LabelEncoding.fit(task, molecules, (molecules["fold"] == "train").to_numpy())
    model, tokenizer = load_for_finetuning(checkpoint, encoding.head(), seed, params.dropout, params.head_initializer_range)
    variants = read_variants(Path(variants_csv), molecules) if variants_csv and (params.augment or params.test_time_augment) else None
    folds: dict[str, EncodedFold] = {}
    truncated: dict[str, int] = {}
    for fold in FOLDS:
        rows = molecules[molecules["fold"] == fold]
        smiles, molecule_of = fold_smiles(rows, variants, params.augment if fold == "train" else params.test_time_augment)
        input_ids, truncated[fold] = tokenize(tokenizer, smiles, params.max_length)
        folds[fold] = EncodedFold(rows["mol_id"].to_numpy(), input_ids, encoding.targets(rows), molecule_of)
    if any(truncated.values()):
        logger.warning("SMILES longer than %d tokens were truncated: %s", params.max_length, truncated)
    if variants is not None:
        logger.info("SMILES variants per molecule: train %d (%s), valid and test %d",
                    max(1, params.augment), params.augment_mode, max(1, params.test_time_augment))
    logger.info(
        "task '%s' (%s), checkpoint '%s', seed %d, device %s: train %d, valid %d, test %d",
        task.name, task.type.value, checkpoint.name, seed, device.type,
        *(len(folds[fold].input_ids) for fold in FOLDS),
    )
    resume = ResumeState(Path(resume_dir), run_fingerprint(molecules_csv, split_csv, task, checkpoint, params, seed))
    objective = TaskObjective(folds, encoding, params, tokenizer.pad_token_id, device, seed)
    state = train(model, objective, loop_settings(params), seed, device, resume)
    return Training(model, tokenizer, molecules, encoding, folds, truncated, objective, state, device)


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
    calibration_json: Path,
    isomeric_smiles: bool = True,
    searched: dict | None = None,
    variants_csv: Path | None = None,
    random_smiles: int = 0,
) -> LoopState:
    """Fine-tune `checkpoint` on `task` and write the model folder, history, test/valid predictions, the calibration
    fitted on the validation predictions and a run record (with `searched`: the search trial the settings come from).

    The model folder carries what scoring new molecules needs (chemlm.predict): the task and label encoding, the
    maximum length, how SMILES were canonicalised (`isomeric_smiles`, as featurize was run), how predictions were
    averaged over SMILES variants (test-time augmentation: the variants per molecule, and `random_smiles`, the seeded
    draws per molecule that `variants_csv` was made from, chemlm.variants) and the calibration.
    Training state goes to `state_dir` after each epoch (removed at the end); a rerun after a kill resumes there.
    """
    started = time.perf_counter()
    if params.test_time_augment > 1 and random_smiles < params.test_time_augment - 1:
        raise ValueError(f"test_time_augment {params.test_time_augment} needs the variants of at least {params.test_time_augment - 1} "
                         f"random SMILES per molecule; random_smiles is {random_smiles}")
    trained = train_on_folds(molecules_csv, split_csv, task, checkpoint, params, seed, state_dir, variants_csv)
    model, tokenizer, encoding, result = trained.model, trained.tokenizer, trained.encoding, trained.state
    tables = [prediction_table(encoding, trained.molecules, fold, trained.predict(fold, params.eval_batch_size)) for fold in ("valid", "test")]
    predictions = pd.concat(tables, ignore_index=True)
    calibration = fit_predictions(predictions, task)
    model.config.update({
        "chemlm_task": {**asdict(encoding), "task_type": encoding.task_type.value, "task": task.name},
        "chemlm_inputs": {
            "max_length": params.max_length,
            "isomeric_smiles": isomeric_smiles,
            "test_time_augment": (
                {"variants": params.test_time_augment, "random_smiles": random_smiles, "seed": VARIANTS_SEED}
                if params.test_time_augment > 1 else None
            ),
        },
        "chemlm_calibration": calibration,
    })
    with atomic_path(model_dir) as temporary:
        model.to("cpu").save_pretrained(temporary)
        tokenizer.save_pretrained(temporary)
    write_csv(history_table(result, trained.objective), history_csv)
    write_csv(predictions, predictions_csv)
    write_json(calibration, calibration_json)
    write_json(
        {
            "task": task.name,
            "checkpoint": checkpoint.to_dict(),
            "seed": seed,
            "device": trained.device.type,
            "params": params.to_dict(),
            "searched": searched,
            "fold_sizes": {fold: len(trained.folds[fold].mol_ids) for fold in FOLDS},
            "smiles_per_molecule": {fold: round(len(trained.folds[fold].input_ids) / len(trained.folds[fold].mol_ids), 3) for fold in FOLDS},
            "truncated_smiles": trained.truncated,
            "best_epoch": result.best_epoch,
            "epochs_run": len(result.history),
            "early_stopping_on": f"{trained.objective.held_out}_{result.monitored}",
            "gradient_accumulation_parts": result.chunks,
            "seconds": round(time.perf_counter() - started, 2),
        },
        run_json,
    )
    ResumeState(Path(state_dir), "").remove()
    return result


def search_trial(
    molecules_csv: Path, split_csv: Path, task: TaskSpec, checkpoint: CheckpointSpec, params: FinetuneParams, seed: int,
    trial: int, result_json: Path, state_dir: Path, variants_csv: Path | None = None,
) -> dict:
    """One search trial: fine-tune on the training fold, score the kept epoch on the validation fold, and write
    `{"trial", "seed", "params", "valid_metric", "best_epoch", "epochs_run", "seconds"}`. No test molecule is
    predicted: the search never sees the test fold."""
    started = time.perf_counter()
    trained = train_on_folds(molecules_csv, split_csv, task, checkpoint, params, seed, state_dir, variants_csv)
    valid = trained.folds["valid"]
    metric = validation_score(task.type, trained.encoding.metric_targets(valid.targets), trained.predict("valid", params.eval_batch_size))
    record = {
        "trial": trial, "seed": seed, "params": params.to_dict(), "valid_metric": float(metric),
        "best_epoch": trained.state.best_epoch, "epochs_run": len(trained.state.history),
        "seconds": round(time.perf_counter() - started, 2),
    }
    write_json(record, result_json)
    ResumeState(Path(state_dir), "").remove()
    logger.info("trial %d, seed %d: validation metric %.4f after %d epochs", trial, seed, metric, record["epochs_run"])
    return record


def run_fingerprint(
    molecules_csv: Path, split_csv: Path, task: TaskSpec, checkpoint: CheckpointSpec, params: FinetuneParams, seed: int
) -> str:
    settings = {"task": asdict(task), "checkpoint": checkpoint.to_dict(), "params": params.to_dict(), "seed": seed}
    return inputs_fingerprint([molecules_csv, split_csv], settings)
