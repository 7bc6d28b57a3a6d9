"""Loading a checkpoint for fine-tuning or for its zero-shot embeddings: a Hub id, a local folder, or `scratch`.

Never random weights silently.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from chemlm.config import CheckpointSpec
from chemlm.io import InputError

logger = logging.getLogger(__name__)

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
HUB_UNREACHABLE_HINTS = ("couldn't connect", "offline mode", "connection", "name or service not known")


class CheckpointError(InputError):
    """A checkpoint that cannot be loaded; the message names it."""


@dataclass(frozen=True)
class HeadSpec:
    """The classification or regression head a task needs."""

    num_labels: int
    problem_type: str  # single_label_classification | multi_label_classification | regression
    id2label: dict[int, str]


def describe(spec: CheckpointSpec) -> str:
    return f"checkpoint '{spec.name}' ({spec.source})"


def _load_error(spec: CheckpointSpec, error: Exception) -> CheckpointError:
    text = str(error).strip()
    first_line = text.splitlines()[0] if text else type(error).__name__
    if not Path(spec.source).exists() and any(hint in text.lower() for hint in HUB_UNREACHABLE_HINTS):
        return CheckpointError(
            f"{describe(spec)}: the Hugging Face Hub is unreachable and the model is not in the local cache; "
            f"download it where the Hub is reachable (`hf download {spec.source} --local-dir DIR`) and set "
            f"checkpoints.{spec.name}.source to DIR"
        )
    return CheckpointError(f"{describe(spec)}: cannot be loaded: {first_line}")


def _check_source(spec: CheckpointSpec) -> None:
    source = Path(spec.source)
    if source.exists():
        if not source.is_dir():
            raise CheckpointError(f"{describe(spec)}: is a file; a checkpoint is a model folder or a Hub id")
        return
    if not HUB_ID.match(spec.source):
        raise CheckpointError(f"{describe(spec)}: no such folder, and not a Hub id of the form org/name")


def load_tokenizer(spec: CheckpointSpec) -> PreTrainedTokenizerBase:
    source = spec.architecture if spec.is_scratch else spec.source
    if not spec.is_scratch:
        _check_source(spec)
    try:
        return AutoTokenizer.from_pretrained(
            source, revision=spec.revision, trust_remote_code=spec.trust_remote_code
        )
    except (OSError, ValueError) as error:
        raise _load_error(spec, error) from None


def dropout_overrides(dropout: float | None) -> dict[str, float]:
    """Config values for a fine-tuning dropout (hidden and attention); none keeps the checkpoint's own."""
    return {} if dropout is None else {"hidden_dropout_prob": dropout, "attention_probs_dropout_prob": dropout}


def head_parameters(model: PreTrainedModel) -> set[str]:
    """Names of the parameters outside the encoder: the task head."""
    encoder_prefix = f"{model.base_model_prefix}."
    return {name for name, _ in model.named_parameters() if not name.startswith(encoder_prefix)}


def _scratch_model(spec: CheckpointSpec, head: HeadSpec, dropout: float | None) -> tuple[PreTrainedModel, set[str]]:
    architecture = Path(spec.architecture)
    if not (architecture / "config.json").is_file():
        raise CheckpointError(f"{describe(spec)}: architecture folder '{architecture}' has no config.json")
    config = AutoConfig.from_pretrained(architecture)
    config.update(dict(spec.architecture_overrides or {}))
    config.update({"num_labels": head.num_labels, "problem_type": head.problem_type, **dropout_overrides(dropout)})
    config.id2label = dict(head.id2label)
    config.label2id = {label: index for index, label in head.id2label.items()}
    logger.info("%s: random initialisation from %s (no pre-training)", describe(spec), architecture)
    model = AutoModelForSequenceClassification.from_config(config)
    return model, head_parameters(model)


def _pretrained_model(spec: CheckpointSpec, head: HeadSpec, dropout: float | None) -> tuple[PreTrainedModel, set[str]]:
    _check_source(spec)
    try:
        model, info = AutoModelForSequenceClassification.from_pretrained(
            spec.source,
            revision=spec.revision,
            trust_remote_code=spec.trust_remote_code,
            **dropout_overrides(dropout),
            num_labels=head.num_labels,
            problem_type=head.problem_type,
            id2label=dict(head.id2label),
            label2id={label: index for index, label in head.id2label.items()},
            output_loading_info=True,
            # a pre-trained head of another size (MTR's 199 outputs) is replaced; encoder mismatches are refused below
            ignore_mismatched_sizes=True,
        )
    except (OSError, ValueError) as error:
        raise _load_error(spec, error) from None
    # Only the new task head may be initialised here; a missing encoder weight means the checkpoint
    # does not hold the model it claims to, and fine-tuning it would silently start from random weights.
    encoder_prefix = f"{model.base_model_prefix}."
    # transformers lists a mismatched weight as (name, checkpoint shape, model shape)
    mismatched = [str(key[0] if isinstance(key, tuple) else key) for key in info["mismatched_keys"]]
    bad = sorted(key for key in [*info["missing_keys"], *mismatched] if key.startswith(encoder_prefix))
    if bad:
        raise CheckpointError(
            f"{describe(spec)}: {len(bad)} encoder weights are missing or have the wrong shape "
            f"(first: {bad[0]}); refusing to fine-tune randomly initialised weights"
        )
    new_head = {*info["missing_keys"], *mismatched}
    logger.info("%s: loaded pre-trained weights; new head parameters: %s", describe(spec), ", ".join(sorted(new_head)) or "none")
    return model, new_head


def initialise(model: PreTrainedModel, parameters: set[str], std: float) -> None:
    """Redraw `parameters` as Hugging Face initialises a new linear layer, at standard deviation `std`: weights
    normal, biases zero."""
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name in parameters:
                parameter.normal_(0.0, std) if parameter.ndim > 1 else parameter.zero_()


def load_for_finetuning(
    spec: CheckpointSpec, head: HeadSpec, seed: int, dropout: float | None = None, head_initializer_range: float | None = None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The model with a fresh `head` on the checkpoint's encoder, and its tokenizer; `dropout` replaces the
    checkpoint's hidden and attention dropout (None keeps them); `head_initializer_range` is the standard deviation
    the new head's weights are drawn with (None: the checkpoint config's `initializer_range`)."""
    tokenizer = load_tokenizer(spec)
    torch.manual_seed(seed)  # the new head's (and a scratch model's) initialisation follows the seed
    model, new_head = _scratch_model(spec, head, dropout) if spec.is_scratch else _pretrained_model(spec, head, dropout)
    if head_initializer_range is not None:
        # drawn after the encoder, so a scratch encoder's weights (its zero-shot embeddings) do not depend on it
        initialise(model, new_head, head_initializer_range)
    if tokenizer.pad_token_id is None:
        raise CheckpointError(f"{describe(spec)}: its tokenizer has no padding token")
    return model, tokenizer


def load_encoder(spec: CheckpointSpec, head: HeadSpec, seed: int) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The encoder that fine-tuning `spec` with `head` at `seed` starts from (the zero-shot model), and its tokenizer.

    It is the fine-tuning model itself without its task head: same source checks, same refusal of missing
    encoder weights, and for `scratch` the same seeded random weights, so zero-shot embeddings show exactly
    where fine-tuning began. (`AutoModel.from_config` would also draw a pooling layer, which shifts the
    random initialisation of a scratch encoder.)
    """
    model, tokenizer = load_for_finetuning(spec, head, seed)
    return model.base_model, tokenizer
