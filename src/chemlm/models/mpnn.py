"""chemprop's directed message-passing network (D-MPNN; chemprop 2.x) as a baseline on our splits and seeds.

The network is chemprop's own (SimpleMoleculeMolGraphFeaturizer, BondMessagePassing, MeanAggregation, the
feed-forward head for the task kind, MPNN) trained by a Lightning Trainer on the CPU or a GPU. What is ours: the
folds and seeds, class weights as fine-tuning weights them (positives by negatives / positives per label; classes
of a multi-class task by sklearn's "balanced" weights), regression targets scaled on the training fold and predicted
back in the labels' units, early stopping on fine-tuning's validation metric (chemlm.metrics.validation_score) with
the best epoch's weights kept, and the files: predictions in the fine-tuning format, so evaluation, calibration, the
summary, the comparison and library scoring treat it like any model, and a model folder of safetensors weights and
a JSON description (never a pickle) that `load_mpnn` builds back. chemprop needs RDKit and torch together, so this
runs in its own environment (envs/chemprop.yaml).
"""

from __future__ import annotations

import copy
import json
import logging
import math
import time
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import lightning
import numpy as np
import pandas as pd
import torch
from chemprop import data, featurizers, nn
from chemprop.models import MPNN
from chemprop.nn.metrics import ChempropMetric
from torch.nn import functional as F

from chemlm.calibration import CALIBRATED_TYPES, apply
from chemlm.folds import load_fold_tables
from chemlm.io import InputError, atomic_path, read_json
from chemlm.layout import CHEMPROP_DESCRIPTION
from chemlm.metrics import HIGHER_IS_BETTER, validation_score
from chemlm.run_files import PREDICTED_FOLDS, write_run_files
from chemlm.scoring import Scores, ensemble_scores, library_chunks, similarity_chunks, write_scores
from chemlm.search import Dimension, SearchSpace, search_in_job
from chemlm.tasks import TaskSpec, TaskType, prediction_header

logger = logging.getLogger(__name__)

WEIGHTS = "model.safetensors"
FORMAT = "chemlm-chemprop-mpnn"


@dataclass(frozen=True)
class MpnnSettings:
    """The network and its training: config `chemprop` as Study.chemprop holds it (every key; the schema has the
    defaults: chemprop's, except the epochs and early stopping), or a model folder's description."""

    hidden_size: int  # message-passing hidden size
    depth: int  # message-passing steps
    dropout: float
    ffn_hidden_size: int
    ffn_layers: int
    learning_rate: float  # chemprop's max_lr: warm up from a tenth of it over warmup_epochs, then decay to a tenth
    warmup_epochs: int
    batch_size: int
    max_epochs: int
    patience: int  # epochs without a better validation metric before training stops


# What the baselines' search draws for chemprop (search.baselines): the issue's hidden size, depth, dropout,
# learning rate and epochs.
SEARCH_SPACE = SearchSpace((
    Dimension("learning_rate", "log", (1e-4, 3e-3)),
    Dimension("dropout", "linear", (0.0, 0.3)),
    Dimension("hidden_size", "choice", (300, 600, 1200)),
    Dimension("depth", "choice", (2, 3, 4, 5)),
    Dimension("max_epochs", "choice", (30, 50, 100)),
))


@dataclass(frozen=True)
class Targets:
    """How a task's labels become chemprop targets and back: class names (multi-class) or training-fold mean and sd
    (regression)."""

    task_type: TaskType
    labels: tuple[str, ...]
    classes: tuple[str, ...] = ()
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()

    @classmethod
    def fit(cls, task: TaskSpec, molecules: pd.DataFrame, train: np.ndarray) -> Targets:
        labels = tuple(task.label_columns)
        if task.type is TaskType.MULTICLASS:
            return cls(task.type, labels, classes=tuple(sorted(molecules[labels[0]].dropna().astype(str).unique())))
        if task.type is TaskType.REGRESSION:
            values = molecules.loc[train, list(labels)].to_numpy(dtype=float)
            std = np.nanstd(values, axis=0)
            return cls(task.type, labels, mean=tuple(map(float, np.nanmean(values, axis=0))), std=tuple(map(float, np.where(std > 0, std, 1.0))))
        return cls(task.type, labels)

    @property
    def columns(self) -> list[str]:
        return [prediction_header(name) for name in (self.classes if self.task_type is TaskType.MULTICLASS else self.labels)]

    def values(self, rows: pd.DataFrame) -> np.ndarray:
        """(n, labels) float targets with NaN for missing: class indices (multi-class), scaled values (regression)."""
        if self.task_type is TaskType.MULTICLASS:
            index = {name: position for position, name in enumerate(self.classes)}
            return rows[self.labels[0]].map(lambda value: np.nan if pd.isna(value) else index[str(value)]).to_numpy(dtype=float)[:, None]
        values = rows[list(self.labels)].to_numpy(dtype=float)
        if self.task_type is TaskType.REGRESSION:
            values = (values - np.asarray(self.mean)) / np.asarray(self.std)
        return values

    def metric_truth(self, rows: pd.DataFrame) -> np.ndarray:
        """The labels as chemlm.metrics.validation_score takes them."""
        if self.task_type is TaskType.MULTICLASS:
            return self.values(rows)[:, 0]
        return rows[list(self.labels)].to_numpy(dtype=float)


class WeightedBinaryCrossEntropy(ChempropMetric):
    """Binary cross-entropy on logits with each label's positives weighted (fine-tuning's pos_weight)."""

    def __init__(self, pos_weight: np.ndarray):
        super().__init__()
        self.register_buffer("pos_weight", torch.as_tensor(np.asarray(pos_weight), dtype=torch.float).view(1, -1))

    def _calc_unreduced_loss(self, preds, targets, mask, weights, lt_mask, gt_mask) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(preds, targets, pos_weight=self.pos_weight, reduction="none")


class WeightedCrossEntropy(ChempropMetric):
    """Cross-entropy with sklearn's balanced class weights (fine-tuning's), on chemprop's (batch, tasks, classes)."""

    def __init__(self, class_weights: np.ndarray):
        super().__init__()
        self.register_buffer("class_weights", torch.as_tensor(np.asarray(class_weights), dtype=torch.float))

    def _calc_unreduced_loss(self, preds, targets, mask, weights, lt_mask, gt_mask) -> torch.Tensor:
        return F.cross_entropy(preds.transpose(1, 2), targets.long(), weight=self.class_weights, reduction="none")


def class_weights(targets: Targets, train_values: np.ndarray) -> np.ndarray | None:
    """Fine-tuning's weights (chemlm.models.finetuning.TaskLoss) from the training fold's targets; None for regression."""
    if targets.task_type is TaskType.REGRESSION:
        return None
    if targets.task_type is TaskType.MULTICLASS:
        indices = train_values[~np.isnan(train_values[:, 0]), 0].astype(np.int64)
        counts = np.bincount(indices, minlength=len(targets.classes)).astype(float)
        return np.where(counts > 0, len(indices) / (len(targets.classes) * np.maximum(counts, 1)), 0.0)
    positives = np.nansum(train_values, axis=0)
    negatives = np.sum(~np.isnan(train_values), axis=0) - positives
    return negatives / np.maximum(positives, 1)


def build_mpnn(targets: Targets, settings: MpnnSettings, weights: np.ndarray | None) -> MPNN:
    """chemprop's MPNN for the task kind; `weights` as `class_weights` gives them (zeros when loading a model folder,
    whose weights replace them)."""
    featurizer = featurizers.SimpleMoleculeMolGraphFeaturizer()
    message_passing = nn.BondMessagePassing(d_v=featurizer.atom_fdim, d_e=featurizer.bond_fdim, d_h=settings.hidden_size,
                                            depth=settings.depth, dropout=settings.dropout)
    head = dict(input_dim=message_passing.output_dim, hidden_dim=settings.ffn_hidden_size, n_layers=settings.ffn_layers,
                dropout=settings.dropout)
    if targets.task_type is TaskType.MULTICLASS:
        predictor = nn.MulticlassClassificationFFN(n_tasks=1, n_classes=len(targets.classes), criterion=WeightedCrossEntropy(weights), **head)
    elif targets.task_type is TaskType.REGRESSION:
        scaling = nn.UnscaleTransform(list(targets.mean), list(targets.std))
        predictor = nn.RegressionFFN(n_tasks=len(targets.labels), output_transform=scaling, **head)
    else:
        predictor = nn.BinaryClassificationFFN(n_tasks=len(targets.labels), criterion=WeightedBinaryCrossEntropy(weights), **head)
    lr = settings.learning_rate
    return MPNN(message_passing, nn.MeanAggregation(), predictor, warmup_epochs=settings.warmup_epochs,
                init_lr=lr / 10, max_lr=lr, final_lr=lr / 10)


def dataset(smiles: list[str], values: np.ndarray | None = None) -> data.MoleculeDataset:
    featurizer = featurizers.SimpleMoleculeMolGraphFeaturizer()
    if values is None:
        points = [data.MoleculeDatapoint.from_smi(text) for text in smiles]
    else:
        points = [data.MoleculeDatapoint.from_smi(text, row) for text, row in zip(smiles, values)]
    return data.MoleculeDataset(points, featurizer)


def batches(smiles: list[str], batch_size: int, device: torch.device):
    """(graphs, atom descriptors, molecule descriptors) of `smiles` in order, the graphs on `device`."""
    # drop_last=False: chemprop's loader drops a last batch of one molecule unless told not to (for batch norm in training)
    for bmg, V_d, X_d, *_ in data.build_dataloader(dataset(smiles), batch_size=batch_size, shuffle=False, drop_last=False):
        bmg.to(device)  # in place
        yield bmg, V_d, X_d


@torch.no_grad()
def predict(model: MPNN, smiles: list[str], batch_size: int = 256) -> np.ndarray:
    """(n, columns) probabilities (binary, multi-label: of the positive class; multi-class: of each class) or values
    in the labels' units."""
    if not smiles:
        return np.empty((0, model.predictor.n_tasks))
    was_training = model.training
    model.eval()
    outputs = [model(*batch) for batch in batches(smiles, batch_size, model.device)]
    model.train(was_training)
    return np.concatenate([output.reshape(len(output), -1).float().cpu().numpy() for output in outputs])


@torch.no_grad()
def validation_pass(model: MPNN, valid: data.MoleculeDataset, batch_size: int = 256) -> tuple[np.ndarray, float]:
    """One pass over a labelled set: the predictions `predict` gives, and the training loss (class-weighted, missing
    labels masked; regression on scaled targets) from the criterion's per-label losses (its running state belongs to
    training and is left alone)."""
    was_training = model.training
    model.eval()
    device = model.device
    outputs, total, count = [], 0.0, 0
    for bmg, V_d, X_d, targets, weights, lt_mask, gt_mask in data.build_dataloader(valid, batch_size=batch_size, shuffle=False, drop_last=False):
        bmg.to(device)
        vectors = model.fingerprint(bmg, V_d, X_d)
        output = model.predictor(vectors)
        outputs.append(output.reshape(len(output), -1).float().cpu().numpy())
        mask = targets.isfinite().to(device)
        extra = [None if tensor is None else tensor.to(device) for tensor in (weights, lt_mask, gt_mask)]
        losses = model.criterion._calc_unreduced_loss(model.predictor.train_step(vectors), targets.nan_to_num(nan=0.0).to(device), mask, *extra)
        total += float((losses * mask).sum())
        count += int(mask.sum())
    model.train(was_training)
    return np.concatenate(outputs), (total / count if count else math.nan)


class BestOnValidation(lightning.Callback):
    """After each epoch: fine-tuning's validation metric on the valid fold (where it is undefined in the first epoch,
    a fold with one class, the validation loss, as fine-tuning does); the best epoch's weights are kept and training
    stops after `patience` epochs without a better one. Each epoch is logged (the rule's log)."""

    def __init__(self, valid: data.MoleculeDataset, truth: np.ndarray, task_type: TaskType, patience: int):
        self.valid, self.truth, self.task_type, self.patience = valid, truth, task_type, patience
        self.maximise = HIGHER_IS_BETTER[task_type]
        self.monitored = "metric"
        self.best = math.nan
        self.best_epoch = -1
        self.best_state: dict | None = None
        self.history: list[dict] = []
        self.started = time.perf_counter()

    def better(self, value: float) -> bool:
        if self.best_state is None:
            return True
        if math.isnan(value):
            return False
        maximise = self.maximise and self.monitored == "metric"
        return math.isnan(self.best) or (value > self.best if maximise else value < self.best)

    def on_train_epoch_end(self, trainer: lightning.Trainer, module: MPNN) -> None:
        predictions, loss = validation_pass(module, self.valid)
        metric = float(validation_score(self.task_type, self.truth, predictions))
        epoch = trainer.current_epoch
        if epoch == 0 and math.isnan(metric):
            self.monitored = "loss"
            logger.warning("validation metric undefined (one class in the validation fold?): early stopping on the validation loss")
        train_loss = trainer.callback_metrics.get("train_loss_epoch")
        self.history.append({"epoch": epoch + 1, "train_loss": float(train_loss) if train_loss is not None else math.nan,
                             "valid_loss": loss, "valid_metric": metric})
        value = loss if self.monitored == "loss" else metric
        if self.better(value):
            self.best, self.best_epoch, self.best_state = value, epoch, copy.deepcopy(module.state_dict())
        elif epoch - self.best_epoch >= self.patience:
            trainer.should_stop = True
        logger.info("epoch %d: train loss %.4f, validation loss %.4f, validation metric %.4f (best %s %.4f at epoch %d; %.0f s)",
                    epoch + 1, self.history[-1]["train_loss"], loss, metric, self.monitored, self.best, self.best_epoch + 1,
                    time.perf_counter() - self.started)


def quiet_lightning() -> None:
    """Lightning's start-up chatter (devices, tips) and warnings that do not apply here (no validation loader: the
    validation metric is ours; no srun: SLURM runs the job itself) kept out of the rule's log."""
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for message in (".*val_dataloader.*", ".*srun.*", ".*treespec.*"):
        warnings.filterwarnings("ignore", message=message)


def fit_mpnn(task: TaskSpec, molecules: pd.DataFrame, settings: MpnnSettings, seed: int) -> tuple[MPNN, Targets, BestOnValidation]:
    """chemprop's MPNN trained on the train fold of `molecules` (with its `fold` column), stopped on its valid fold,
    with the best epoch's weights. Deterministic for a seed on the CPU."""
    quiet_lightning()
    lightning.seed_everything(seed, workers=True, verbose=False)
    train, valid = ((molecules["fold"] == fold).to_numpy() for fold in ("train", "valid"))
    targets = Targets.fit(task, molecules, train)
    train_rows, valid_rows = molecules[train], molecules[valid]
    train_values = targets.values(train_rows)
    labelled = ~np.isnan(train_values).all(axis=1)
    model = build_mpnn(targets, settings, class_weights(targets, train_values))
    train_set, valid_set = dataset(train_rows["smiles"].tolist(), train_values), dataset(valid_rows["smiles"].tolist(), targets.values(valid_rows))
    for featurized in (train_set, valid_set):
        featurized.cache = True  # each molecule's graph made once, not again every epoch
    loader = data.build_dataloader(train_set, batch_size=settings.batch_size, seed=seed, shuffle=True)
    monitor = BestOnValidation(valid_set, targets.metric_truth(valid_rows), task.type, settings.patience)
    trainer = lightning.Trainer(
        accelerator="auto", devices=1, max_epochs=settings.max_epochs, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[monitor], deterministic=True,
    )
    logger.info("chemprop D-MPNN on %d training molecules (%d labelled), %d validation, up to %d epochs, on %s",
                int(train.sum()), int(labelled.sum()), int(valid.sum()), settings.max_epochs,
                "CUDA" if torch.cuda.is_available() else f"the CPU ({torch.get_num_threads()} threads)")
    trainer.fit(model, loader)
    if monitor.best_state is not None:
        model.load_state_dict(monitor.best_state)
    model.eval()
    return model.cpu(), targets, monitor


def save_mpnn(model: MPNN, targets: Targets, settings: MpnnSettings, calibration: dict, isomeric_smiles: bool, folder: Path) -> None:
    """The model folder: safetensors weights and the JSON that `load_mpnn` builds the network from, with the
    calibration fitted on the validation fold and how its molecules' SMILES were canonicalised (so `chemlm predict`
    scores new molecules as the workflow does)."""
    import chemprop
    from safetensors.torch import save_file

    description = {"format": FORMAT, "chemprop_version": chemprop.__version__, "targets": {**asdict(targets), "task_type": targets.task_type.value},
                   "settings": asdict(settings), "columns": targets.columns, "calibration": calibration,
                   "isomeric_smiles": isomeric_smiles}
    with atomic_path(folder) as temporary:
        temporary.mkdir()
        save_file({key: value.contiguous() for key, value in model.state_dict().items()}, str(temporary / WEIGHTS))
        (temporary / CHEMPROP_DESCRIPTION).write_text(json.dumps(description, indent=2) + "\n")


@dataclass(frozen=True)
class MpnnFolder:
    """A model folder as `load_mpnn` reads it: the network (eval mode, CPU) and what its description says."""

    model: MPNN
    targets: Targets
    settings: MpnnSettings
    calibration: dict
    isomeric_smiles: bool


def load_mpnn(folder: Path) -> MpnnFolder:
    """A model folder `save_mpnn` wrote; anything else is an error naming the folder."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    try:
        description = json.loads((folder / CHEMPROP_DESCRIPTION).read_text())
        if description.get("format") != FORMAT:
            raise ValueError(f"format is {description.get('format')!r}, not {FORMAT!r}")
        stored = description["targets"]
        targets = Targets(TaskType(stored["task_type"]), tuple(stored["labels"]), tuple(stored["classes"]), tuple(stored["mean"]), tuple(stored["std"]))
        settings = MpnnSettings(**description["settings"])
        width = len(targets.classes) if targets.task_type is TaskType.MULTICLASS else len(targets.labels)
        model = build_mpnn(targets, settings, np.zeros(width))
        model.load_state_dict(load_file(str(folder / WEIGHTS)))
    except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as error:
        raise InputError(f"{folder}: not a chemprop model folder ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})") from None
    return MpnnFolder(model.eval(), targets, settings, description["calibration"], bool(description["isomeric_smiles"]))


def train_chemprop(
    molecules_csv: Path, split_csv: Path, task: TaskSpec, settings: MpnnSettings, seed: int, threads: int,
    predictions_csv: Path, calibration_json: Path, settings_json: Path, model_dir: Path, history_csv: Path,
    search: tuple[int, int] | None = None, isomeric_smiles: bool = True,
) -> pd.DataFrame:
    """chemprop trained on one split instance: its valid and test predictions (docs/design.md, item 5), their
    calibration, its settings (with `search` = (trials, seed), those of the best trial on the validation fold), the
    model folder and the epochs' history."""
    started = time.perf_counter()
    torch.set_num_threads(threads)
    molecules = load_fold_tables(Path(molecules_csv), Path(split_csv))
    record = {"searched": False, "settings": asdict(settings), "trials": []}
    if search is not None:
        valid = molecules[molecules["fold"] == "valid"]

        def score(params: dict) -> float:
            model, targets, _ = fit_mpnn(task, molecules, replace(settings, **params), seed)
            return validation_score(task.type, targets.metric_truth(valid), predict(model, valid["smiles"].tolist()))

        record = search_in_job(SEARCH_SPACE, search[0], search[1], seed, HIGHER_IS_BETTER[task.type], score, "chemprop")
        settings = replace(settings, **record["settings"])
        record["settings"] = asdict(settings)
    model, targets, monitor = fit_mpnn(task, molecules, settings, seed)
    record["best_epoch"] = monitor.best_epoch + 1
    record["early_stopping_on"] = f"validation {monitor.monitored}"
    rows = molecules[molecules["fold"].isin(PREDICTED_FOLDS)]
    table = write_run_files(task, rows, targets.columns, predict(model, rows["smiles"].tolist()), record,
                            Path(predictions_csv), Path(calibration_json), Path(settings_json))
    save_mpnn(model, targets, settings, read_json(calibration_json), isomeric_smiles, Path(model_dir))
    with atomic_path(history_csv) as temporary:
        pd.DataFrame(monitor.history).to_csv(temporary, index=False)
    logger.info("task '%s', chemprop, seed %d: best epoch %d of %d (%.1f s)", task.name, seed, monitor.best_epoch + 1,
                len(monitor.history), time.perf_counter() - started)
    return table


@torch.no_grad()
def fingerprints(model: MPNN, smiles: list[str], batch_size: int = 256) -> np.ndarray:
    """The learned molecule vectors (the aggregation's output, which the head reads), float32 (n, hidden)."""
    model.eval()
    vectors = [model.fingerprint(*batch).float().cpu().numpy() for batch in batches(smiles, batch_size, model.device)]
    return np.concatenate(vectors) if vectors else np.empty((0, model.message_passing.output_dim), dtype=np.float32)


def write_embeddings(molecules_csv: Path, split_csv: Path, seed: int, model_dir: Path, zeroshot_npz: Path, finetuned_npz: Path) -> None:
    """chemprop's test-fold molecule vectors at initialisation (`zeroshot_npz`: the network fit_mpnn starts from,
    drawn with the same seed) and after training (`finetuned_npz`, the model folder), each an .npz with `mol_id` and
    `embedding` in molecules.csv order, as the transformers' embeddings (chemlm.models.embeddings)."""
    molecules = load_fold_tables(Path(molecules_csv), Path(split_csv))
    test = molecules[molecules["fold"] == "test"]
    trained = load_mpnn(Path(model_dir))
    lightning.seed_everything(seed, workers=True, verbose=False)
    train_values = trained.targets.values(molecules[molecules["fold"] == "train"])
    initial = build_mpnn(trained.targets, trained.settings, class_weights(trained.targets, train_values))
    for model, path in ((initial, zeroshot_npz), (trained.model, finetuned_npz)):
        vectors = fingerprints(model, test["smiles"].tolist())
        with atomic_path(path) as temporary, open(temporary, "wb") as handle:
            np.savez(handle, mol_id=test["mol_id"].to_numpy(dtype=str), embedding=vectors)
    logger.info("chemprop's vectors of %d test molecules, at initialisation and trained (%d dimensions)", len(test), vectors.shape[1])


class MpnnEnsemble:
    """chemprop models of one task (the split instances of a study, or any set of folders), scoring canonical SMILES
    together with the calibration each folder holds."""

    random_smiles = 0  # chemprop reads each molecule's graph, not SMILES variants

    def __init__(self, folders: list[Path], calibration_method: str):
        if not folders:
            raise InputError("no model folders to score with")
        loaded = [load_mpnn(Path(folder)) for folder in folders]
        first = loaded[0].targets
        for folder, other in zip(folders, loaded):
            if other.targets.columns != first.columns or other.targets.task_type is not first.task_type:
                raise InputError(f"{folder}: a chemprop model of outputs {', '.join(other.targets.columns)}, not the ensemble's {', '.join(first.columns)}")
        self.models = [other.model for other in loaded]
        self.calibrations = [other.calibration for other in loaded]
        self.isomeric_smiles = loaded[0].isomeric_smiles
        self.calibration_method = calibration_method
        self.task_type = first.task_type
        self.names = [column.removeprefix(prediction_header("")) for column in first.columns]

    def score(self, rows: pd.DataFrame, features: np.ndarray | None) -> Scores:
        smiles = rows["smiles"].tolist()
        per_model = [predict(model, smiles) for model in self.models]
        calibrated = None
        if self.task_type in CALIBRATED_TYPES:
            calibrated = [apply(calibration, self.calibration_method, self.names, values) for calibration, values in zip(self.calibrations, per_model)]
        return ensemble_scores(per_model, calibrated)


def score_library(model_dirs: list[Path], calibration_method: str, threads: int, library_csv: Path, similarity_csv: Path | None,
                  out_csv: Path) -> int:
    """A library shard scored by chemprop's model of every split instance (docs/design.md, "Predictions"), with its
    similarity to the training fold where given."""
    torch.set_num_threads(threads)
    ensemble = MpnnEnsemble(model_dirs, calibration_method)
    similarity = similarity_chunks(similarity_csv) if similarity_csv is not None else None
    return write_scores(ensemble, library_chunks(library_csv), out_csv, similarity=similarity)
