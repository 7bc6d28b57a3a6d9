"""How a task's labels become training targets and a model's logits become predictions in the labels' units:
shared by fine-tuning, embeddings and scoring, without the metrics and calibration code fine-tuning also needs
(so a small job that only embeds or scores imports less).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from chemlm.models.checkpoints import HeadSpec
from chemlm.tasks import TaskSpec, TaskType, prediction_header


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


def average_over_variants(logits: torch.Tensor, molecule_of: np.ndarray, molecules: int) -> torch.Tensor:
    """(molecules, outputs) logits: the mean of the rows of each molecule (`molecule_of`: each row's molecule)."""
    if len(logits) == molecules:
        return logits
    index = torch.as_tensor(molecule_of, device=logits.device)
    summed = torch.zeros((molecules, logits.shape[1]), dtype=logits.dtype, device=logits.device).index_add_(0, index, logits)
    counts = torch.bincount(index, minlength=molecules).to(logits.dtype)
    return summed / counts[:, None]
