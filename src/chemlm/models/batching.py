"""Token ids and batches: tokenising SMILES, length-bucketed batch orders, padding a batch into tensors.

Shared by fine-tuning, pre-training and embeddings; no rdkit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

# Batches are sorted by length within windows of this many batches: padding shrinks to almost nothing
# while the order stays random from epoch to epoch.
BUCKET_WINDOW_BATCHES = 50


def tokenize(tokenizer: PreTrainedTokenizerBase, smiles: list[str], max_length: int) -> tuple[list[list[int]], int]:
    """Token ids truncated to `max_length`, and how many SMILES were truncated."""
    full = tokenizer(smiles, add_special_tokens=True)["input_ids"]
    truncated = sum(len(ids) > max_length for ids in full)
    if not truncated:
        return full, 0
    return tokenizer(smiles, truncation=True, max_length=max_length)["input_ids"], truncated


def sequence_lengths(input_ids: list[list[int]]) -> np.ndarray:
    return np.fromiter((len(ids) for ids in input_ids), dtype=np.int64, count=len(input_ids))


def training_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Every index once per epoch, in batches of similar lengths, the batches in random order."""
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


def pad(input_ids: list[list[int]], batch: np.ndarray, pad_id: int) -> dict[str, torch.Tensor]:
    """The batch's token ids padded to its longest sequence, with the attention mask, on the CPU."""
    longest = max(len(input_ids[i]) for i in batch)
    ids = torch.full((len(batch), longest), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), longest), dtype=torch.long)
    for row, index in enumerate(batch):
        sequence = input_ids[index]
        ids[row, : len(sequence)] = torch.as_tensor(sequence)
        mask[row, : len(sequence)] = 1
    return {"input_ids": ids, "attention_mask": mask}


def to_device(tensors: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """Tensors to `device`; host tensors go to a GPU through pinned memory, so the copy overlaps the computation."""
    moved = {}
    for name, tensor in tensors.items():
        if tensor.device == device or device.type != "cuda":
            moved[name] = tensor.to(device)
        else:
            moved[name] = tensor.pin_memory().to(device, non_blocking=True)
    return moved


class TokenStore:
    """Every sequence of a fold, padded once into one tensor on `device`: a batch is an index and a slice there,
    with no per-batch copy from the host (on a GPU, the per-step cost that a small model cannot hide)."""

    def __init__(self, input_ids: list[list[int]], pad_id: int, device: torch.device):
        lengths = sequence_lengths(input_ids)
        ids = torch.full((len(input_ids), int(lengths.max(initial=1))), pad_id, dtype=torch.int32)
        for row, sequence in enumerate(input_ids):
            ids[row, : len(sequence)] = torch.as_tensor(sequence, dtype=torch.int32)
        self.ids = ids.to(device)
        self.lengths = torch.as_tensor(lengths).to(device)
        self.host_lengths = lengths  # a batch's width without a device-to-host sync

    def batch(self, indices: np.ndarray) -> dict[str, torch.Tensor]:
        """The same tensors as `pad` gives for these sequences, already on the store's device."""
        longest = int(self.host_lengths[indices].max())
        rows = torch.as_tensor(indices).to(self.ids.device)
        ids = self.ids[rows, :longest].long()
        positions = torch.arange(longest, device=self.ids.device)
        return {"input_ids": ids, "attention_mask": (positions < self.lengths[rows, None]).long()}


def collate(input_ids: list[list[int]], batch: np.ndarray, pad_id: int, device: torch.device) -> dict[str, torch.Tensor]:
    return to_device(pad(input_ids, batch, pad_id), device)


def flat_variants(per_molecule: Sequence[Sequence[str]]) -> tuple[list[str], np.ndarray]:
    """Every molecule's SMILES in one list, a molecule's next to each other, and the molecule of each."""
    smiles = [text for variants in per_molecule for text in variants]
    return smiles, np.repeat(np.arange(len(per_molecule)), [len(variants) for variants in per_molecule])
