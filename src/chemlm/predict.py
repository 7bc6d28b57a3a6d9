"""Scoring new molecules with fine-tuned model folders: an ensemble of them (the seeds of a checkpoint, or any
folders of one task), its mean and sd, and calibrated probabilities (chemlm.scoring writes them row for row).

A fine-tuned model folder carries everything scoring needs (chemlm.models.finetuning writes it): the task, its labels
or classes and label scaling (`chemlm_task`), the maximum length, how SMILES were canonicalised and how predictions
were averaged over SMILES variants (`chemlm_inputs`), and the calibration fitted on validation (`chemlm_calibration`).
No training flag is repeated.

A folder exported to ONNX (chemlm.export: `model.onnx` in place of the weights, beside the same config.json and
tokenizer) scores the same way, with ONNX Runtime on the CPU.

A model whose validation and test predictions were averaged over M SMILES variants per molecule (test-time
augmentation) had its calibration fitted on those averages, so scoring does the same by default: each molecule's
seeded random SMILES (chemlm.library.add_random_smiles, in the chemistry environment) give the variants fine-tuning
read, and the logits are averaged over them. Scoring on one SMILES per molecule instead is possible when asked for;
the calibration then does not apply and no calibrated probability is given.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from chemlm.calibration import CALIBRATED_TYPES, apply_label
from chemlm.io import InputError
from chemlm.models.batching import collate, evaluation_batches, flat_variants, sequence_lengths, tokenize
from chemlm.models.checkpoints import CheckpointError
from chemlm.models.labels import LabelEncoding, average_over_variants
from chemlm.models.loop import autocast, pick_device
from chemlm.scoring import RANDOM_SMILES, Scores, ensemble_scores, library_chunks, similarity_chunks, write_scores
from chemlm.tasks import TaskType
from chemlm.variants import SEED as VARIANTS_SEED
from chemlm.variants import distinct_variants

logger = logging.getLogger(__name__)

# Molecules per forward pass: a GPU wants large batches; on a CPU, batches of 64 scored 2,000 corpus molecules with
# ChemBERTa-2's architecture 1.3x faster than batches of 256, with torch and with ONNX Runtime alike (bench/predict_speed.py).
SCORE_BATCH = {"cuda": 256, "cpu": 64}
ONNX_FILE = "model.onnx"  # an exported model folder's graph (chemlm.export)


# ---------------------------------------------------------------------------------------------------
# Fine-tuned model folders


@dataclass(frozen=True)
class VariantAveraging:
    """How a model's validation and test predictions were averaged (config `evaluate.test_time_augment`): over each
    molecule's first `variants` SMILES variants, made from `random_smiles` draws with `seed` (chemlm.variants)."""

    variants: int
    random_smiles: int
    seed: int


class OnnxModel:
    """An exported model (ONNX_FILE) run by ONNX Runtime on the CPU, with as many threads as torch has."""

    def __init__(self, path: Path):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        try:
            self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # ONNX Runtime's errors (InvalidProtobuf, Fail, ...) derive from Exception alone
            raise ValueError(f"ONNX Runtime cannot load {path.name}: {str(error).strip().splitlines()[0]}") from None

    def logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        feeds = {name: tensor.numpy() for name, tensor in batch.items()}
        return torch.from_numpy(self.session.run(["logits"], feeds)[0])


@dataclass
class FineTunedModel:
    """A fine-tuned model folder ready to score: `model` is the torch model, or the ONNX export's session."""

    folder: Path
    model: PreTrainedModel | OnnxModel
    tokenizer: PreTrainedTokenizerBase
    task: str
    encoding: LabelEncoding
    max_length: int
    isomeric_smiles: bool
    calibration: dict | None
    test_time_augment: VariantAveraging | None

    @classmethod
    def load(cls, folder: str | Path) -> FineTunedModel:
        """A model folder written by fine-tuning; anything else is an error naming the folder."""
        folder = Path(folder)
        config_path = folder / "config.json"
        if not config_path.is_file():
            raise CheckpointError(f"{folder}: not a model folder (no config.json)")
        config = json.loads(config_path.read_text())
        if "chemlm_task" not in config or "chemlm_inputs" not in config:
            raise CheckpointError(f"{folder}: not a model fine-tuned by chemlm (its config.json has no chemlm_task and chemlm_inputs)")
        try:
            model = OnnxModel(folder / ONNX_FILE) if (folder / ONNX_FILE).is_file() else AutoModelForSequenceClassification.from_pretrained(folder).eval()
            tokenizer = AutoTokenizer.from_pretrained(folder)
        except (OSError, ValueError) as error:
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise CheckpointError(f"{folder}: cannot be loaded: {first_line}") from None
        task = config["chemlm_task"]
        encoding = LabelEncoding(
            TaskType(task["task_type"]), tuple(task["labels"]), tuple(task["classes"]), tuple(task["mean"]), tuple(task["std"])
        )
        inputs = config["chemlm_inputs"]
        augment = inputs.get("test_time_augment")
        return cls(folder, model, tokenizer, task["task"], encoding, int(inputs["max_length"]),
                   bool(inputs["isomeric_smiles"]), config.get("chemlm_calibration"), VariantAveraging(**augment) if augment else None)

    def predict(self, smiles: list[str], device: torch.device, random_smiles: Sequence[Sequence[str]] | None = None,
                batch_size: int | None = None) -> np.ndarray:
        """Probabilities or values (n, outputs) of SMILES, in order; streamed in length-sorted batches. With each
        molecule's `random_smiles` and the model's test-time augmentation, the logits are averaged over the variants
        fine-tuning read for it; else each SMILES is read alone."""
        texts, molecule_of = list(smiles), np.arange(len(smiles))
        if self.test_time_augment is not None and random_smiles is not None:
            augment = self.test_time_augment
            texts, molecule_of = flat_variants([distinct_variants(canonical, drawn, augment.random_smiles + 1)[: augment.variants]
                                                for canonical, drawn in zip(smiles, random_smiles)])
        input_ids, truncated = tokenize(self.tokenizer, texts, self.max_length)
        if truncated:
            logger.warning("%s: %d SMILES longer than %d tokens were truncated", self.folder, truncated, self.max_length)
        if isinstance(self.model, OnnxModel):
            device = torch.device("cpu")
        else:
            self.model.to(device)
        batch_size = batch_size or SCORE_BATCH.get(device.type, SCORE_BATCH["cpu"])
        logits = torch.empty((len(texts), self.encoding.head().num_labels), dtype=torch.float32, device=device)
        with torch.inference_mode(), autocast(device):
            for batch in evaluation_batches(sequence_lengths(input_ids), batch_size):
                inputs = collate(input_ids, batch, self.tokenizer.pad_token_id, device)
                output = self.model.logits(inputs) if isinstance(self.model, OnnxModel) else self.model(**inputs).logits
                logits[torch.as_tensor(batch, device=device)] = output.float()
        return self.encoding.predictions(average_over_variants(logits, molecule_of, len(smiles)))


def signature(model: FineTunedModel) -> tuple:
    """What models of one ensemble must share: the task, its type, and its outputs."""
    encoding = model.encoding
    return model.task, encoding.task_type, encoding.labels, encoding.classes


class ModelEnsemble:
    """Fine-tuned models of one task (the seeds of a checkpoint, or any set of folders), scored together."""

    def __init__(self, folders: Sequence[str | Path], calibration_method: str = "platt", device: torch.device | None = None,
                 test_time_augment: bool = True):
        if not folders:
            raise InputError("no model folders to score with")
        self.models = [FineTunedModel.load(folder) for folder in folders]
        first = self.models[0]
        for other in self.models[1:]:
            if signature(other) != signature(first):
                raise CheckpointError(
                    f"{other.folder}: a model of task '{other.task}' ({other.encoding.task_type.value}, outputs "
                    f"{', '.join(other.encoding.classes or other.encoding.labels)}), not of the ensemble's task '{first.task}'"
                )
        self.task_type = first.encoding.task_type
        self.names = list(first.encoding.classes if self.task_type is TaskType.MULTICLASS else first.encoding.labels)
        self.isomeric_smiles = first.isomeric_smiles
        self.calibration_method = calibration_method
        self.device = device or pick_device()
        augmented = [model for model in self.models if model.test_time_augment is not None]
        seeds = sorted({model.test_time_augment.seed for model in augmented})
        if len(seeds) > 1:
            raise CheckpointError(f"the models' SMILES variants were drawn with different seeds ({', '.join(map(str, seeds))}): "
                                  "score them in separate ensembles")
        # Test-time augmentation as the models were evaluated, unless asked not to; then their calibration, fitted on
        # averages over variants, does not apply.
        self.test_time_augment = test_time_augment and bool(augmented)
        self.calibrated = not augmented or test_time_augment
        if not self.calibrated:
            logger.warning("%s: fine-tuned with predictions averaged over %d SMILES variants per molecule, scored on one "
                           "SMILES each as asked: its calibration does not apply, so no calibrated probabilities are given",
                           augmented[0].folder, augmented[0].test_time_augment.variants)
        self.random_smiles = max(model.test_time_augment.random_smiles for model in augmented) if self.test_time_augment else 0
        self.random_smiles_seed = seeds[0] if seeds else None

    def drawn_smiles(self, rows: pd.DataFrame) -> list[list[str]]:
        """Each row's random SMILES (RANDOM_SMILES), at least as many as the ensemble's models read."""
        if RANDOM_SMILES not in rows.columns:
            raise InputError(f"the molecules to score have no random SMILES, which test-time augmentation needs "
                             f"({self.random_smiles} per molecule): prepare them with random_smiles={self.random_smiles}")
        drawn = [text.split() for text in rows[RANDOM_SMILES].fillna("")]
        short = [len(spellings) for spellings in drawn if 0 < len(spellings) < self.random_smiles]
        if short:
            raise InputError(f"the molecules to score have {short[0]} random SMILES where test-time augmentation needs "
                             f"{self.random_smiles}: prepare them with random_smiles={self.random_smiles}")
        crashed = sum(not spellings for spellings in drawn)
        if crashed:
            logger.warning("%d molecule(s) without random SMILES (RDKit failed on them) are scored on their SMILES alone", crashed)
        return drawn

    def score(self, rows: pd.DataFrame, packed_bits: np.ndarray | None = None) -> Scores:
        smiles = rows["smiles"].tolist()
        drawn = self.drawn_smiles(rows) if self.test_time_augment else None
        per_model = [model.predict(smiles, self.device, drawn) for model in self.models]
        calibrated = None
        if self.task_type in CALIBRATED_TYPES and self.calibrated:
            calibrated = [
                np.column_stack([
                    apply_label(model.calibration["labels"][name], self.calibration_method, values[:, column])
                    if model.calibration and name in model.calibration["labels"] else values[:, column]
                    for column, name in enumerate(self.names)
                ])
                for model, values in zip(self.models, per_model)
            ]
        return ensemble_scores(per_model, calibrated)


def score_library(
    model_dirs: Sequence[str | Path], calibration_method: str, library_csv: Path, similarity_csv: Path | None, out_csv: Path
) -> int:
    """A prepared library (chemlm.library.write_library) scored by the ensemble of `model_dirs`, with its
    similarity to the training fold (docs/design.md, "Predictions")."""
    ensemble = ModelEnsemble(model_dirs, calibration_method)
    if ensemble.random_smiles_seed not in (None, VARIANTS_SEED):
        raise CheckpointError(f"{model_dirs[0]}: its SMILES variants were drawn with seed {ensemble.random_smiles_seed}, the "
                              f"library's random SMILES with seed {VARIANTS_SEED}: fine-tune it again, or score it with chemlm predict")
    similarity = similarity_chunks(similarity_csv) if similarity_csv is not None else None
    return write_scores(ensemble, library_chunks(library_csv), out_csv, similarity=similarity)
