"""A fine-tuned model folder exported to ONNX for faster CPU scoring (config `predict.engine`).

The export is a folder beside the model folder (`onnx` or `onnx-int8`) that scores like it: its config.json and
tokenizer files are the model folder's, `model.onnx` replaces the weights, and chemlm.predict runs it with ONNX
Runtime. `onnx-int8` quantises the linear layers' weights to int8 (ONNX Runtime's dynamic quantisation), which
trades a little accuracy for speed. Every export is checked before it is kept: the exported model and the torch model
score the test fold, and their largest difference must stay within the engine's tolerance; the check is written in
the folder (check.json), and a model that fails it is not exported.
"""

from __future__ import annotations

import logging
import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from transformers import PreTrainedModel

from chemlm.folds import load_fold_tables
from chemlm.io import atomic_path, write_json
from chemlm.models.checkpoints import CheckpointError
from chemlm.predict import ONNX_FILE, FineTunedModel
from chemlm.tasks import TaskType

logger = logging.getLogger(__name__)

CHECK_FILE = "check.json"
# The largest difference from torch's scores allowed on the test fold: of probabilities, or of values in the label's
# training-fold sd (regression).
TOLERANCE = {"onnx": 1e-4, "onnx-int8": 0.01}
OPSET = 17
# Files of the model folder that the export keeps beside model.onnx: everything but the torch weights.
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def trace_inputs(pad_id: int, vocabulary: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids and the attention mask of two sequences, one padded: traced on inputs without padding, the model's
    mask would be traced away."""
    ids = torch.arange(8, dtype=torch.long).remainder(vocabulary).repeat(2, 1)
    mask = torch.ones_like(ids)
    ids[1, 5:], mask[1, 5:] = pad_id, 0
    return ids, mask


def write_onnx(model: PreTrainedModel, pad_id: int, path: Path) -> None:
    """The model's logits as an ONNX graph over batches of any size and length (TorchScript exporter: it needs no
    onnxscript, and the model has no control flow that depends on the data). Traced with the eager attention, whose
    graph ONNX Runtime ran 1.2x (fp32) and 1.15x (int8) faster than the graph of torch's fused attention."""
    ids, mask = trace_inputs(pad_id, model.config.vocab_size)
    attention = model.config._attn_implementation
    model.set_attn_implementation("eager")
    try:
        dynamic = {0: "batch", 1: "length"}
        with warnings.catch_warnings():
            # The tracer warns of every Python branch it fixes (the mask's shape checks) and of its own
            # deprecation; the test-fold check, over batches of every length, tells whether the graph is right.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx")
            warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export", category=DeprecationWarning)
            warnings.filterwarnings("ignore", message="Exporting aten::index operator", category=UserWarning)
            torch.onnx.export(
                model.eval(), (ids, mask), path, input_names=["input_ids", "attention_mask"], output_names=["logits"],
                dynamic_axes={"input_ids": dynamic, "attention_mask": dynamic, "logits": {0: "batch"}}, opset_version=OPSET,
                dynamo=False,
            )
    finally:
        model.set_attn_implementation(attention)


def quantize(path: Path) -> None:
    """The graph's linear weights as int8 (dynamic quantisation: activations are quantised as they come)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantized = path.with_suffix(".int8.onnx")
    quantize_dynamic(path, quantized, weight_type=QuantType.QInt8)
    quantized.replace(path)


def largest_difference(torch_scores: np.ndarray, exported_scores: np.ndarray, std: tuple[float, ...]) -> float:
    """The largest absolute difference of two models' scores: probabilities as they are, regression values in sd."""
    difference = np.abs(torch_scores - exported_scores)
    if std:
        difference = difference / np.asarray(std)
    return float(difference.max(initial=0.0))


def export_onnx(model_dir: Path, molecules_csv: Path, split_csv: Path, engine: str, out_dir: Path) -> dict:
    """`model_dir` as an ONNX scoring folder at `out_dir`, checked on the split's test fold (the check is returned and
    written as check.json); a model whose exported scores differ from torch's by more than TOLERANCE[engine] is an
    error and leaves no folder."""
    if engine not in TOLERANCE:
        raise ValueError(f"engine '{engine}': the ONNX engines are {', '.join(TOLERANCE)}")
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    original = FineTunedModel.load(model_dir)
    test = load_fold_tables(Path(molecules_csv), Path(split_csv)).query("fold == 'test'")
    smiles = test["smiles"].tolist()
    with atomic_path(out_dir) as temporary:
        shutil.copytree(model_dir, temporary, ignore=shutil.ignore_patterns(*WEIGHT_FILES))
        started = time.perf_counter()
        write_onnx(original.model, original.tokenizer.pad_token_id, temporary / ONNX_FILE)
        if engine == "onnx-int8":
            quantize(temporary / ONNX_FILE)
        logger.info("%s: exported to ONNX (%s) in %.1f s", model_dir, engine, time.perf_counter() - started)
        exported = FineTunedModel.load(temporary)
        device = torch.device("cpu")
        encoding = original.encoding
        std = encoding.std if encoding.task_type is TaskType.REGRESSION else ()
        difference = largest_difference(original.predict(smiles, device), exported.predict(smiles, device), std)
        check = {
            "engine": engine,
            "model": str(model_dir),
            "molecules": len(smiles),
            "compared": "values in the label's training-fold sd" if std else "probabilities",
            "max_abs_difference": difference,
            "tolerance": TOLERANCE[engine],
            "passed": difference <= TOLERANCE[engine],
        }
        logger.info("%s: test fold (%d molecules), largest difference from torch %.2g (tolerance %g)", engine, len(smiles),
                    difference, TOLERANCE[engine])
        if not check["passed"]:
            raise CheckpointError(f"{model_dir}: exported to {engine}, its test-fold scores differ from torch's by up to "
                                  f"{difference:.3g}, above the tolerance {TOLERANCE[engine]:g}: score it with predict.engine torch")
        write_json(check, temporary / CHECK_FILE)
    return check
