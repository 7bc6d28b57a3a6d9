"""Each rule's conda env (envs/*.yaml) lists every third-party package that the rule's script imports, directly or
through the chemlm modules it uses (followed transitively, imports inside functions included), pinned to the
version the tests run with. Conda cannot run here, so this is how the env files are kept right for users."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from functools import cache
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.version import Version

from helpers import REPO

PACKAGE_ROOT = REPO / "src"
# Conda-forge names that differ from the Python distribution's (after lower-casing and '_' -> '-').
CONDA_NAMES = {"torch": "pytorch"}
RULE = re.compile(r"^(?:rule|checkpoint) (\w+):")
DIRECTIVE = re.compile(r"^ +(conda|script):\s*(.*)$")


def normalize(name: str) -> str:
    return name.lower().replace("_", "-")


def rule_directives() -> dict[str, dict[str, str]]:
    """{rule: {"conda": path, "script": path}} from the Snakefile and rules/*.smk, paths relative to the repository."""
    rules: dict[str, dict[str, str]] = {}
    for smk in [REPO / "Snakefile", *sorted((REPO / "rules").glob("*.smk"))]:
        lines = smk.read_text().splitlines()
        current = None
        for number, line in enumerate(lines):
            if line and not line[0].isspace():
                match = RULE.match(line)
                current = match.group(1) if match else None
                if current:
                    rules[current] = {}
                continue
            directive = DIRECTIVE.match(line)
            if current and directive:
                value = directive.group(2) or next(text for text in lines[number + 1 :] if text.strip())
                relative = ast.literal_eval(value.strip().rstrip(","))
                rules[current][directive.group(1)] = str((smk.parent / relative).resolve().relative_to(REPO))
    return rules


def listed_rules() -> set[str]:
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(REPO),
         "--configfile", str(REPO / "config" / "demo.yaml"), "--list-rules"],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return {line.strip() for line in run.stdout.splitlines() if re.fullmatch(r"\w+", line.strip())}


def module_file(module: str) -> Path | None:
    """The source file of a chemlm module (a package's __init__.py), or None if there is no such module."""
    base = PACKAGE_ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def _imports(path: Path, module: str | None) -> set[str]:
    """Absolute names of every module `path` imports; `module` is its dotted name (None for a script)."""
    package = None
    if module is not None:
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module
            names.add(target)
            # `from chemlm.report import figures` may name a submodule
            names.update(f"{target}.{alias.name}" for alias in node.names if module_file(f"{target}.{alias.name}"))
    return names


@cache
def third_party_imports(script: Path) -> frozenset[str]:
    """Top-level third-party module names the script needs, following chemlm imports (and their parent packages)."""
    found: set[str] = set()
    seen: set[str] = set()
    pending = [(script, None)]
    while pending:
        path, module = pending.pop()
        for name in _imports(path, module):
            top = name.split(".")[0]
            if top == "chemlm":
                parts = name.split(".")
                for depth in range(1, len(parts) + 1):
                    dotted = ".".join(parts[:depth])
                    source = module_file(dotted)
                    if source and dotted not in seen:
                        seen.add(dotted)
                        pending.append((source, dotted))
            elif top not in sys.stdlib_module_names and top != "__future__":
                found.add(top)
    return frozenset(found)


@cache
def import_to_distributions() -> dict[str, list[str]]:
    return metadata.packages_distributions()


def distribution(import_name: str) -> str:
    distributions = import_to_distributions().get(import_name)
    assert distributions, f"'{import_name}' is imported but no installed distribution provides it"
    return distributions[0]


def env_pins(env_file: Path) -> dict[str, str]:
    """{normalized conda name: version} of an env file; every dependency must be pinned with `name=version`."""
    pins = {}
    for dependency in yaml.safe_load(env_file.read_text())["dependencies"]:
        assert isinstance(dependency, str), f"{env_file.name}: only conda packages, got {dependency}"
        name, separator, version = dependency.partition("=")
        assert separator and version, f"{env_file.name}: '{dependency}' has no version"
        pins[normalize(name)] = version.lstrip("=")
    return pins


def requirement_pins() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[normalize(name)] = version
    return pins


RULES = rule_directives()


def test_every_rule_of_the_workflow_has_a_script_and_an_env():
    """`rule all` only gathers targets; every other rule runs a script in its conda env."""
    listed = listed_rules()
    assert listed <= set(RULES), sorted(listed - set(RULES))
    for rule in sorted(listed - {"all"}):
        assert {"conda", "script"} <= set(RULES[rule]), f"rule {rule}: {RULES[rule]}"
        assert (REPO / RULES[rule]["conda"]).exists() and (REPO / RULES[rule]["script"]).exists(), RULES[rule]


@pytest.mark.parametrize("rule", sorted(name for name, directives in RULES.items() if "script" in directives))
def test_rule_env_lists_what_its_script_imports(rule):
    env_file = REPO / RULES[rule]["conda"]
    pins = env_pins(env_file)
    distributions = {normalize(distribution(name)) for name in third_party_imports(REPO / RULES[rule]["script"])}
    needed = {CONDA_NAMES.get(dist, dist) for dist in distributions}
    assert needed - set(pins) == set(), f"{env_file.name} (rule {rule}) lacks {sorted(needed - set(pins))}"


@pytest.mark.parametrize("env_file", sorted((REPO / "envs").glob("*.yaml")), ids=lambda path: path.name)
def test_env_versions_are_the_tested_ones(env_file):
    required = requirement_pins()
    conda_to_distribution = {CONDA_NAMES.get(dist, dist): dist for dist in required}
    for name, version in env_pins(env_file).items():
        if name == "python":
            assert version == f"{sys.version_info.major}.{sys.version_info.minor}", env_file.name
            continue
        dist = conda_to_distribution.get(name, name)
        tested = Version(metadata.version(dist)).public  # torch's wheel here is 2.13.0+cpu: the local label is the build
        assert Version(version) == Version(tested), f"{env_file.name}: {name}={version}, the tests run {tested}"
        assert dist in required, f"{env_file.name}: {name} is not in requirements.txt"
        assert Version(required[dist]) == Version(version), f"{env_file.name}: {name}={version}, requirements.txt {required[dist]}"


def test_imports_are_followed_through_the_package_and_into_functions():
    # scripts/featurize.py imports only chemlm; rdkit comes from chemlm.featurize. umap is imported inside a function.
    assert "rdkit" in third_party_imports(REPO / "scripts" / "featurize.py")
    assert "umap" in third_party_imports(REPO / "scripts" / "project.py")
    assert distribution("sklearn") == "scikit-learn" and distribution("yaml") == "PyYAML"
