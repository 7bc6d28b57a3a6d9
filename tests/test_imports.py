"""The package's modules import one another in one direction: no circle, not even through an import inside a
function or one made for type checking only, so every layer can be read and loaded on its own."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO
from script_imports import imported_modules, loading_code

SOURCE = REPO / "src"


def module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """chemlm module -> the chemlm modules any of its import statements names."""
    modules = {module_name(path): path for path in SOURCE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                named = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                named = [alias.name for alias in node.names]
            else:
                continue
            graph[name] |= {target for target in named if target in modules and target != name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in sorted(graph[module]):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_the_package_has_no_import_circle():
    assert circles(import_graph()) == []


def test_a_circle_is_found():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert circles(graph) == [["a", "b", "c"]]
    assert "chemlm.featurize" in import_graph()["chemlm.library"]  # imports inside functions count


# Rules that run a model: they need torch and transformers (chemprop's rules torch; Lightning imports transformers
# where it is installed, as in the tests' environment, not in envs/chemprop.yaml). Every other job is small and must
# not pay their import.
MODEL_SCRIPTS = {"finetune", "search_trial", "pretrain", "embed", "predict", "export_onnx", "chemprop", "predict_chemprop",
                 "embed_chemprop"}


@pytest.mark.integration
@pytest.mark.parametrize("script", sorted(path.stem for path in (REPO / "scripts").glob("*.py")))
def test_a_small_job_does_not_import_what_it_does_not_use(script):
    """Each rule script's imports, in a fresh interpreter: only the model rules load torch and transformers, and
    embedding and scoring load no scikit-learn (fine-tuning's metrics and calibration); bench/script_imports.py
    times them."""
    modules = imported_modules(REPO / "scripts" / f"{script}.py")
    run = subprocess.run([sys.executable, "-c", loading_code(modules)], capture_output=True, text=True, cwd=REPO)
    assert run.returncode == 0, run.stderr[-2000:]
    loaded = set(run.stdout.split()[1:])
    if script not in MODEL_SCRIPTS:
        assert not loaded & {"torch", "transformers"}, f"scripts/{script}.py loads {sorted(loaded)}"
    if script in ("embed", "predict"):
        assert "sklearn" not in loaded, f"scripts/{script}.py loads {sorted(loaded)}"
