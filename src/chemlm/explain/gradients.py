"""Integrated gradients of a fine-tuned transformer over its input token embeddings (captum's LayerIntegratedGradients).

The explained output is a logit, where completeness is exact: for a binary task the positive class's log-odds
(logit 1 - logit 0), for a multi-class task the asked class's logit, for a multi-label or regression task the asked
label's output. The baseline keeps the special tokens and replaces every other token by the tokenizer's pad token
(`pad`) or mask token (`mask`). Completeness (Sundararajan et al. 2017) is checked for every molecule: the token
attributions must sum to the output's change from the baseline within `TOLERANCE`; where they do not, the steps are
doubled (up to `MAX_DOUBLINGS` times), and what was reached is reported with the attributions.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

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
        return abs(self.delta) <= TOLERANCE * abs(self.output - self.baseline_output) + ABSOLUTE_TOLERANCE


def output_index(model: FineTunedModel, target: str | None) -> int:
    """The head output a target names: a class (multi-class) or a label (multi-label, regression); a binary task and
    a single-label task need none."""
    encoding = model.encoding
    names = list(encoding.classes if encoding.task_type is TaskType.MULTICLASS else encoding.labels)
    if target is None:
        if encoding.task_type is TaskType.MULTICLASS or len(names) > 1:
            raise InputError(f"{model.folder}: name the {'class' if encoding.task_type is TaskType.MULTICLASS else 'label'} "
                             f"to explain (one of: {', '.join(names)})")
        return 0
    if target not in names:
        raise InputError(f"{model.folder}: no class or label '{target}' (it has: {', '.join(names)})")
    return names.index(target)


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
    index = output_index(model, target)
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
