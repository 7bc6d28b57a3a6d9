"""Shared test settings."""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

import pytest

# pytest-xdist's workers share the cores: torch in each of them on every core would put more threads than cores to
# work, and its OpenMP threads then wait for one another (the unit tests took 4 min 38 s on 2 cores that way, against
# 1 min 54 s in one process). Set before anything imports torch.
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))))

from helpers import snakemake, write_study  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# Large shared inputs (full MoleculeNet files, model configs) live beside the repository, not in it.
SHARED = Path(os.environ.get("CHEMLM_SHARED", REPO / "../shared")).resolve()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test is unit or integration: `make test-unit` runs the first kind, `make test` both. The test modules
    that share the session's `study_run` come first, then the other integration modules, the longest first
    (pytest-xdist's workers take modules in this order, so the longest do not start last and run alone)."""
    integration = {item.module.__name__ for item in items if item.get_closest_marker("integration") is not None}
    for item in items:
        if item.get_closest_marker("integration") is None:
            item.add_marker(pytest.mark.unit)

    def weight(item: pytest.Item) -> tuple[int, int]:
        name = Path(item.module.__file__).name
        kind = 0 if name in STUDY_RUN_MODULES else 1 if item.module.__name__ in integration else 2
        return kind, LONGEST_MODULES.index(name) if name in LONGEST_MODULES else len(LONGEST_MODULES)

    items.sort(key=weight)  # stable: the order within each kind stays as collected


# The modules that take longest, longest first (`pytest --durations`, 2 cores, 2026-12-07): the SLURM run (5 min,
# mostly waiting for the cluster, so it goes first while the other worker computes), the workflow run of every task
# type (5 min), the rerun tests (4 min), pre-training killed and resumed (3 min in all), a search (1.5 min).
LONGEST_MODULES = ("test_slurm.py", "test_workflow.py", "test_reruns.py", "test_pretraining.py", "test_search.py", "test_gpu_study.py")
# The test modules that use the session's `study_run` (a workflow run of about 100 s CPU).
STUDY_RUN_MODULES = {path.name for path in Path(__file__).parent.glob("test_*.py")
                     if re.search(r"def test_\w+\([^)]*\bstudy_run\b", path.read_text())}


if importlib.util.find_spec("xdist") is not None:

    @pytest.hookimpl(tryfirst=True)
    def pytest_xdist_make_scheduler(config: pytest.Config, log):
        """With `-n` (`--dist load`), each worker takes whole test modules, so a module's fixtures are built once,
        and the modules in STUDY_RUN_MODULES go to one worker together, so the study is run once. (pytest-xdist's
        own `--dist loadgroup` cannot do this under pytest 9, which no longer lets a plugin rename a test.)"""
        from xdist.scheduler import LoadScopeScheduling

        if config.getvalue("dist") != "load":
            return None

        class ModuleScheduling(LoadScopeScheduling):
            def _split_scope(self, nodeid: str) -> str:
                module = nodeid.split("::", 1)[0]
                return "study_run" if Path(module).name in STUDY_RUN_MODULES else module

        return ModuleScheduling(config, log)


@pytest.fixture
def one_torch_thread():
    """torch on one thread while the test runs, as in the child processes it compares with (`torch.set_num_threads(1)`
    there): with several threads, the CPU's matrix products may split their sums differently when the machine is
    busy, and a killed-and-resumed run would then differ from the uninterrupted one in the 7th digit."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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
