"""What a rule script imports, and what importing it loads: shared by tests/test_imports.py and
bench/script_imports.py."""

from __future__ import annotations

import ast
from pathlib import Path

# Libraries whose import costs a small job a noticeable share of its time.
HEAVY = ("torch", "transformers", "sklearn", "scipy", "matplotlib", "rdkit", "umap", "statsmodels", "scikit_posthocs", "seaborn")


def imported_modules(script: Path) -> list[str]:
    """Every module the script names in an import statement, in a stable order."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(script.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return sorted(names)


def loading_code(modules: list[str]) -> str:
    """Python that imports `modules` and prints the seconds it took and the HEAVY libraries that are then loaded."""
    return "\n".join([
        "import sys, time",
        "started = time.perf_counter()",
        *(f"import {module}" for module in modules),
        "seconds = time.perf_counter() - started",
        f"print(round(seconds, 3), *[name for name in {HEAVY!r} if name in sys.modules])",
    ])
