"""Shared test settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Large shared inputs (full MoleculeNet files, model configs) live beside the repository, not in it.
SHARED = Path(os.environ.get("CHEMLM_SHARED", REPO / "../shared")).resolve()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return SHARED
