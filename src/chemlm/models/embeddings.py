"""Test-set embeddings of a checkpoint before fine-tuning (zero-shot) and after it, one vector per molecule.

It imports no rdkit: a GPU machine runs it on molecules.csv, a split file and a model folder alone.
The test fold streams through the encoder in length-sorted batches, so activations stay bounded by the
batch size whatever the dataset's size; only the pooled (n, hidden) float32 result is kept.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from chemlm.config import CheckpointSpec
from chemlm.folds import load_fold_tables
from chemlm.io import InputError, atomic_path
from chemlm.models.checkpoints import CheckpointError, load_encoder
from chemlm.models.batching import collate, evaluation_batches, sequence_lengths, tokenize
from chemlm.models.labels import LabelEncoding
from chemlm.models.loop import PROGRESS_EVERY_S, autocast, pick_device, set_seed
from chemlm.tasks import TaskSpec

logger = logging.getLogger(__name__)

POOLINGS = ("mean", "cls")


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """One float32 vector per sequence: the first token's (`cls`) or the mean over its real tokens (`mean`).

    Padding positions never count, so a molecule's mean embedding does not depend on its batch.
    """
    hidden = hidden.float()
    if pooling == "cls":
        return hidden[:, 0]
    if pooling != "mean":
        raise InputError(f"pooling '{pooling}': expected one of {', '.join(POOLINGS)}")
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)


def embed_sequences(
    encoder: PreTrainedModel,
    input_ids: list[list[int]],
    pooling: str,
    batch_size: int,
    pad_id: int,
    device: torch.device,
) -> np.ndarray:
    """Pooled embeddings (n, hidden), float32, in the order of `input_ids`; batches are sorted by length."""
    encoder.to(device).eval()
    batches = evaluation_batches(sequence_lengths(input_ids), batch_size)
    embeddings: np.ndarray | None = None
    last_report = time.perf_counter()
    with torch.inference_mode(), autocast(device):
        for number, batch in enumerate(batches, start=1):
            inputs = collate(input_ids, batch, pad_id, device)
            pooled = pool(encoder(**inputs).last_hidden_state, inputs["attention_mask"], pooling).cpu().numpy()
            if embeddings is None:
                embeddings = np.empty((len(input_ids), pooled.shape[1]), dtype=np.float32)
            embeddings[batch] = pooled
            if time.perf_counter() - last_report > PROGRESS_EVERY_S:
                last_report = time.perf_counter()
                logger.info("batch %d/%d", number, len(batches))
    if embeddings is None:
        raise InputError("no molecules to embed")
    return embeddings


def load_finetuned_encoder(model_dir: Path) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The encoder of a fine-tuned model folder (its task head dropped) and its tokenizer; every weight must load."""
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise CheckpointError(f"{model_dir}: not a fine-tuned model folder (no config.json); rerun its fine-tuning")
    try:
        model, info = AutoModelForSequenceClassification.from_pretrained(model_dir, output_loading_info=True)
    except (OSError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"{model_dir}: cannot be loaded: {first_line}; rerun its fine-tuning") from None
    missing = sorted(info["missing_keys"])
    if missing:
        raise CheckpointError(f"{model_dir}: {len(missing)} weights are missing (first: {missing[0]}); rerun its fine-tuning")
    return model.base_model, AutoTokenizer.from_pretrained(model_dir)


def stage_embeddings(
    test: pd.DataFrame,
    encoder: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    pooling: str,
    batch_size: int,
    max_length: int,
    device: torch.device,
) -> np.ndarray:
    """Pooled embeddings of the `test` rows' SMILES by `encoder`."""
    input_ids, truncated = tokenize(tokenizer, test["smiles"].tolist(), max_length)
    if truncated:
        logger.warning("%d SMILES longer than %d tokens were truncated", truncated, max_length)
    return embed_sequences(encoder, input_ids, pooling, batch_size, tokenizer.pad_token_id, device)


def write_embeddings(
    molecules_csv: Path,
    split_csv: Path,
    task: TaskSpec,
    checkpoint: CheckpointSpec,
    seed: int,
    model_dir: Path,
    pooling: str,
    batch_size: int,
    max_length: int,
    zeroshot_npz: Path,
    finetuned_npz: Path,
) -> None:
    """Embeddings of the test fold by the checkpoint's encoder before (`zeroshot_npz`) and after (`finetuned_npz`,
    the encoder of `model_dir`) fine-tuning, each an .npz with `mol_id` (str) and `embedding` (float32, n x hidden)
    in molecules.csv order.

    The zero-shot encoder is built as fine-tuning builds it (same seed, same head), so for a scratch
    checkpoint it holds exactly the weights fine-tuning started from.
    """
    molecules = load_fold_tables(Path(molecules_csv), Path(split_csv))
    test = molecules[molecules["fold"] == "test"]
    encoding = LabelEncoding.fit(task, molecules, (molecules["fold"] == "train").to_numpy())
    device = pick_device()
    set_seed(seed)
    stages = (
        ("zeroshot", zeroshot_npz, lambda: load_encoder(checkpoint, encoding.head(), seed)),
        ("finetuned", finetuned_npz, lambda: load_finetuned_encoder(Path(model_dir))),
    )
    for stage, out_npz, load in stages:
        started = time.perf_counter()
        embeddings = stage_embeddings(test, *load(), pooling, batch_size, max_length, device)
        with atomic_path(out_npz) as temporary, open(temporary, "wb") as handle:
            np.savez(handle, mol_id=test["mol_id"].to_numpy(dtype=str), embedding=embeddings)
        logger.info(
            "task '%s', checkpoint '%s', seed %d, %s, %s pooling on %s: %d test molecules x %d dimensions (%.1f s)",
            task.name, checkpoint.name, seed, stage, pooling, device.type, *embeddings.shape, time.perf_counter() - started,
        )
