"""Shared test settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers import snakemake, write_study

REPO = Path(__file__).resolve().parents[1]
# Large shared inputs (full MoleculeNet files, model configs) live beside the repository, not in it.
SHARED = Path(os.environ.get("CHEMLM_SHARED", REPO / "../shared")).resolve()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test is unit or integration: `make test-unit` runs the first kind, `make test` both.

    With pytest-xdist (`make test` runs `--dist loadgroup`), a module's tests stay on one worker, so its fixtures are
    built once; the modules that share the session's `study_run` stay on one worker together, so it is run once."""
    shares_study_run = {item.module.__name__ for item in items if "study_run" in item.fixturenames}
    for item in items:
        if item.get_closest_marker("integration") is None:
            item.add_marker(pytest.mark.unit)
        module = item.module.__name__
        item.add_marker(pytest.mark.xdist_group("study_run" if module in shares_study_run else module))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return SHARED


@pytest.fixture(scope="session")
def study_run(tmp_path_factory) -> Path:
    """A finished local run of `study_config()`: the reference of the SLURM test and the start of the rerun tests,
    which only dry-run on it (they must leave it as it is)."""
    workdir = tmp_path_factory.mktemp("study")
    write_study(workdir)
    run = snakemake(workdir)
    assert run.returncode == 0, run.stderr[-4000:]
    return workdir
