"""Safe loading, checked over the whole code base: safetensors, weights_only, no remote code, no eval."""

from __future__ import annotations

import ast
from pathlib import Path

from helpers import REPO

SOURCES = sorted([*(REPO / "src").rglob("*.py"), *(REPO / "scripts").glob("*.py"), *(REPO / "bench").glob("*.py")])


def calls(path: Path):
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Call):
            yield node


def name_of(call: ast.Call) -> str:
    return ast.unparse(call.func)


def test_there_is_code_to_check():
    assert len(SOURCES) > 10


def test_torch_load_only_with_weights_only():
    for path in SOURCES:
        for call in calls(path):
            if name_of(call) == "torch.load":
                flags = {keyword.arg: ast.unparse(keyword.value) for keyword in call.keywords}
                assert flags.get("weights_only") == "True", f"{path}:{call.lineno}"


def test_trust_remote_code_never_forced_on():
    for path in SOURCES:
        for call in calls(path):
            for keyword in call.keywords:
                if keyword.arg == "trust_remote_code":
                    assert not (isinstance(keyword.value, ast.Constant) and keyword.value.value is True), f"{path}:{call.lineno}"


def test_no_eval_or_exec_of_strings():
    for path in SOURCES:
        for call in calls(path):
            assert name_of(call) not in {"eval", "exec", "compile", "pickle.load", "pickle.loads"}, f"{path}:{call.lineno}"


def test_models_are_saved_as_safetensors():
    for path in SOURCES:
        for call in calls(path):
            if name_of(call).endswith("save_pretrained"):
                flags = {keyword.arg: ast.unparse(keyword.value) for keyword in call.keywords}
                assert flags.get("safe_serialization", "True") == "True", f"{path}:{call.lineno}"
