"""Integrated gradients of a fine-tuned transformer over its input token embeddings (captum's LayerIntegratedGradients),
summed per atom (chemlm.explain.smiles_map) into the attribution tables (chemlm.explain.explanations).

The explained output is a logit, where completeness is exact: for a binary task the positive class's log-odds
(logit 1 - logit 0), for a multi-class task the asked class's logit, for a multi-label or regression task the asked
label's output. The baseline keeps the special tokens and replaces every other token by the tokenizer's pad token
(`pad`) or mask token (`mask`). Completeness (Sundararajan et al. 2017) is checked for every molecule: the token
attributions must sum to the output's change from the baseline within `TOLERANCE`; where they do not, the steps are
doubled (up to `MAX_DOUBLINGS` times), and what was reached is reported with the attributions.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from chemlm.explain.explanations import ATOM_COLUMNS, MOLECULE_COLUMNS, explained_name, output_position, targets_of
from chemlm.explain.smiles_map import NON_ATOM_KINDS, atom_attribution
from chemlm.io import InputError
from chemlm.predict import FineTunedModel
from chemlm.tasks import TaskType

logger = logging.getLogger(__name__)

BASELINES = ("pad", "mask")
# |sum of attributions - (F(x) - F(baseline))| may be this share of |F(x) - F(baseline)|, or ABSOLUTE_TOLERANCE
TOLERANCE = 0.05
ABSOLUTE_TOLERANCE = 1e-3
MAX_DOUBLINGS = 3


@dataclass(frozen=True)
class TokenAttributions:
    """One molecule's integrated gradients: a value per token (special tokens included), the explained output at the
    input and at the baseline, the completeness gap and the steps that gave it."""

    smiles: str
    tokens: list[str]
    values: np.ndarray
    output: float
    baseline_output: float
    delta: float
    steps: int

    @property
    def complete(self) -> bool:
        return is_complete(self.delta, self.output, self.baseline_output)


def is_complete(gap: float, output: float, baseline_output: float) -> bool:
    """Whether attributions whose sum misses the output's change from the baseline by `gap` are complete."""
    return abs(gap) <= TOLERANCE * abs(output - baseline_output) + ABSOLUTE_TOLERANCE


def output_names(model: FineTunedModel) -> list[str]:
    """The head's outputs by name: the classes of a multi-class task, else the labels."""
    encoding = model.encoding
    return list(encoding.classes if encoding.task_type is TaskType.MULTICLASS else encoding.labels)


def explained_output(logits: torch.Tensor, task_type: TaskType, index: int) -> torch.Tensor:
    """The scalar explained per row: a binary head's log-odds, else the named output."""
    if task_type is TaskType.BINARY:
        return logits[:, 1] - logits[:, 0]
    return logits[:, index]


def baseline_ids(input_ids: torch.Tensor, tokenizer, baseline: str) -> torch.Tensor:
    if baseline not in BASELINES:
        raise InputError(f"unknown baseline '{baseline}'; choose one of: {', '.join(BASELINES)}")
    replacement = tokenizer.pad_token_id if baseline == "pad" else tokenizer.mask_token_id
    special = torch.tensor([token in tokenizer.all_special_ids for token in input_ids[0].tolist()])
    return torch.where(special, input_ids, torch.full_like(input_ids, replacement))


def integrated_gradients(model: FineTunedModel, smiles: Sequence[str], target: str | None = None, steps: int = 50,
                         baseline: str = "pad") -> list[TokenAttributions]:
    """Token attributions of each SMILES (read alone, as written) for the output `target` names."""
    from captum.attr import LayerIntegratedGradients

    network = model.model
    if not isinstance(network, torch.nn.Module):
        raise InputError(f"{model.folder}: an ONNX export has no gradients; explain the torch model folder")
    network.eval()
    index = output_position(output_names(model), target, str(model.folder))
    task_type = model.encoding.task_type

    def forward(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return explained_output(network(input_ids=input_ids, attention_mask=attention_mask).logits.float(), task_type, index)

    explainer = LayerIntegratedGradients(forward, network.get_input_embeddings())
    found = []
    for text in smiles:
        encoded = model.tokenizer(text, truncation=True, max_length=model.max_length, return_tensors="pt")
        input_ids, attention_mask = encoded["input_ids"], encoded["attention_mask"]
        reference = baseline_ids(input_ids, model.tokenizer, baseline)
        with torch.no_grad():
            output, baseline_output = (float(forward(ids, attention_mask)[0]) for ids in (input_ids, reference))
        n_steps = steps
        for doubling in range(MAX_DOUBLINGS + 1):
            attributions, delta = explainer.attribute(input_ids, baselines=reference, additional_forward_args=(attention_mask,),
                                                      n_steps=n_steps, return_convergence_delta=True)
            attribution = TokenAttributions(text, model.tokenizer.convert_ids_to_tokens(input_ids[0].tolist()),
                                            attributions.sum(dim=-1)[0].detach().double().numpy(), output, baseline_output,
                                            float(delta[0]), n_steps)
            if attribution.complete or doubling == MAX_DOUBLINGS:
                break
            n_steps *= 2
        if not attribution.complete:
            logger.warning("%s: integrated gradients of %s miss completeness by %.4g after %d steps", model.folder, text,
                           attribution.delta, attribution.steps)
        found.append(attribution)
    return found


def explain_transformers(models: Mapping[str, str | Path], molecules: pd.DataFrame, target: str | None = None, steps: int = 50,
                         baseline: str = "pad") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(atoms, molecules) tables of integrated gradients of each named model folder for `molecules` (`id`, `smiles`: the
    SMILES as the models read them, canonical as in training; optionally `target`, the class or label of each)."""
    atom_rows, molecule_rows = [], []
    for name, folder in models.items():
        model = FineTunedModel.load(folder)
        encoding = model.encoding
        for mol_id, smiles, wanted in zip(molecules["id"], molecules["smiles"], targets_of(molecules, target)):
            attribution = integrated_gradients(model, [smiles], wanted, steps, baseline)[0]
            atoms = atom_attribution(attribution.smiles, attribution.tokens, attribution.values)
            atom_rows += [[name, mol_id, atom, float(weight)] for atom, weight in enumerate(atoms.weights)]
            molecule_rows.append([name, mol_id, smiles, explained_name(encoding.task_type.value, wanted, encoding.labels),
                                  attribution.output, attribution.baseline_output, attribution.delta, attribution.complete,
                                  attribution.steps, *(atoms.non_atom_share[kind] for kind in NON_ATOM_KINDS)])
    return pd.DataFrame(atom_rows, columns=ATOM_COLUMNS), pd.DataFrame(molecule_rows, columns=MOLECULE_COLUMNS)
