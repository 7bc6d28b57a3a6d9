"""Model folders exported to ONNX (chemlm.export): checked against torch on the test fold before they are kept, and
scored by ONNX Runtime like the model folder they come from."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from chemlm import export
from chemlm.cli import score_file
from chemlm.export import CHECK_FILE, TOLERANCE, export_onnx
from chemlm.models.checkpoints import CheckpointError
from chemlm.predict import ONNX_FILE, FineTunedModel, ModelEnsemble, OnnxModel
from helpers import demo_molecules
from test_predict import LIBRARY, fine_tune
from test_training import TASKS


@pytest.fixture(scope="module", params=["binary", "multiclass", "regression"])
def fine_tuned(request, tmp_path_factory):
    directory = tmp_path_factory.mktemp(request.param)
    return request.param, directory, fine_tune(directory, TASKS[request.param], 0) / "model"


@pytest.mark.parametrize("engine", ["onnx", "onnx-int8"])
def test_an_export_scores_as_torch_does_within_its_engines_tolerance(fine_tuned, engine, tmp_path):
    kind, directory, model_dir = fine_tuned
    out = tmp_path / engine
    check = export_onnx(model_dir, directory / "molecules.csv", directory / "split.csv", engine, out)
    assert json.loads((out / CHECK_FILE).read_text()) == check
    tested = (pd.read_csv(directory / "split.csv")["fold"] == "test").sum()
    assert check["passed"] and check["max_abs_difference"] <= TOLERANCE[engine] and check["molecules"] == tested > 0
    assert check["compared"] == ("values in the label's training-fold sd" if kind == "regression" else "probabilities")
    assert (out / ONNX_FILE).is_file() and not (out / "model.safetensors").exists()
    assert isinstance(FineTunedModel.load(out).model, OnnxModel)

    molecules = pd.DataFrame({"smiles": demo_molecules(300)["smiles"].tail(60).tolist()})  # molecules it has not seen
    exported, original = ModelEnsemble([out]).score(molecules), ModelEnsemble([model_dir]).score(molecules)
    difference = np.abs(exported.mean - original.mean)
    if kind == "regression":
        difference /= np.asarray(FineTunedModel.load(model_dir).encoding.std)
    assert difference.max() <= TOLERANCE[engine]
    assert difference.max() > 0  # ONNX Runtime scored them, not torch


def test_the_command_scores_with_an_export(fine_tuned, tmp_path):
    _, directory, model_dir = fine_tuned
    export_onnx(model_dir, directory / "molecules.csv", directory / "split.csv", "onnx", tmp_path / "onnx")
    (tmp_path / "library.csv").write_text(LIBRARY)
    score_file([tmp_path / "onnx"], tmp_path / "library.csv", tmp_path / "exported.csv")
    score_file([model_dir], tmp_path / "library.csv", tmp_path / "torch.csv")
    exported, original = pd.read_csv(tmp_path / "exported.csv"), pd.read_csv(tmp_path / "torch.csv")
    assert list(exported.columns) == list(original.columns)
    scores = exported.columns[exported.columns.str.startswith("mean:")]
    np.testing.assert_allclose(exported[scores], original[scores], rtol=1e-4, atol=1e-5)


def test_an_export_that_fails_its_check_is_an_error_and_leaves_nothing(fine_tuned, tmp_path, monkeypatch):
    _, directory, model_dir = fine_tuned
    monkeypatch.setitem(export.TOLERANCE, "onnx-int8", 1e-9)  # int8 weights move every score by more than this
    with pytest.raises(CheckpointError, match=r"exported to onnx-int8, its test-fold scores differ from torch's by up to .*above the tolerance 1e-09"):
        export_onnx(model_dir, directory / "molecules.csv", directory / "split.csv", "onnx-int8", tmp_path / "onnx-int8")
    assert list(tmp_path.iterdir()) == []


def test_an_export_whose_graph_is_broken_is_named(fine_tuned, tmp_path):
    _, directory, model_dir = fine_tuned
    export_onnx(model_dir, directory / "molecules.csv", directory / "split.csv", "onnx", tmp_path / "onnx")
    (tmp_path / "onnx" / ONNX_FILE).write_bytes(b"not a graph")
    with pytest.raises(CheckpointError, match=rf"^{re.escape(str(tmp_path / 'onnx'))}: cannot be loaded: ONNX Runtime cannot load model.onnx: .*INVALID_PROTOBUF"):
        ModelEnsemble([tmp_path / "onnx"])
