"""Snakemake's own standards: `snakemake --lint` has nothing to say about any shipped config, the Snakefile and
rules are formatted as snakefmt formats them, and the files the Snakemake workflow catalog reads are there."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import REPO

pytestmark = pytest.mark.integration

SNAKEFMT = Path(sys.executable).with_name("snakefmt")


@pytest.mark.parametrize("configfile", sorted((REPO / "config").glob("*.yaml")), ids=lambda path: path.name)
def test_snakemake_lint_reports_nothing(configfile, tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path),
         "--configfile", str(configfile), "--lint"],
        capture_output=True, text=True, timeout=300,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0 and "Lints for" not in output, output[-6000:]


def test_snakefmt_leaves_the_workflow_as_it_is():
    run = subprocess.run(
        [str(SNAKEFMT), "--check", "--verbose", "Snakefile", "rules"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]


def test_catalog_usage_and_config_readme():
    usage = yaml.safe_load((REPO / ".snakemake-workflow-catalog.yml").read_text())["usage"]
    assert set(usage["mandatory-flags"]) == {"desc", "flags"}
    assert usage["software-stack-deployment"]["conda"] is True and usage["report"] is True
    # config/README.md, which the catalog shows as the configuration guide, has a section for every top-level key
    schema = yaml.safe_load((REPO / "config" / "schema" / "config.schema.yaml").read_text())
    sections = re.findall(r"^## (\S+)$", (REPO / "config" / "README.md").read_text(), re.MULTILINE)
    assert set(schema["properties"]) - set(sections) == set()
