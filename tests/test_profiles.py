"""profiles/slurm as Snakemake reads it: what each job would ask SLURM for, from a dry run (no cluster needed)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import yaml
from snakemake.resources import Resource

from helpers import REPO, study_config, write_study
from workflow_jobs import Job, parse_dry_run

pytestmark = pytest.mark.integration

SLURM_PROFILE = REPO / "profiles" / "slurm" / "config.yaml"
GPU_RULES = ("finetune", "embed", "pretrain", "search_trial", "predict", "chemprop", "predict_chemprop")
PLACEHOLDER = "CHANGE-ME"


def slurm_profile() -> dict:
    return yaml.safe_load(SLURM_PROFILE.read_text())


def memory_mb(expression: str | int, attempt: int) -> int:
    """A profile's mem_mb at this attempt, evaluated as Snakemake evaluates it."""
    return Resource.cli_evaluator("mem_mb", str(expression), wildcards=None, input=None, attempt=attempt, async_run=None)


@pytest.fixture(scope="module")
def slurm_jobs(tmp_path_factory) -> dict[tuple, Job]:
    workdir = tmp_path_factory.mktemp("slurm-profile")
    write_study(workdir)
    run = subprocess.run(
        [
            sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--profile", str(SLURM_PROFILE.parent),
            "--directory", str(workdir), "--configfile", str(workdir / "config.yaml"), "-n", "--forceall",
        ],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    return parse_dry_run(run.stdout + run.stderr)


def test_partition_and_account_are_the_only_values_to_edit():
    assert re.findall(rf"^\s*(\w+): \"{PLACEHOLDER}[^\"]*\"", SLURM_PROFILE.read_text(), re.MULTILINE) == [
        "slurm_partition", "slurm_account",
    ]


def test_every_rule_that_asks_for_a_gpu_has_the_gpu_block():
    """Rules whose `resources:` ask for `gpu=1`, read from rules/*.smk, are exactly the profile's GPU rules."""
    asking = set()
    for smk in (REPO / "rules").glob("*.smk"):
        for block in re.split(r"^rule ", smk.read_text(), flags=re.MULTILINE)[1:]:
            if re.search(r"^    resources:\n\s+gpu=1,", block, re.MULTILINE):
                asking.add(block.split(":", 1)[0])
    assert asking == set(GPU_RULES)


def test_gpu_rules_share_one_resource_block():
    blocks = [slurm_profile()["set-resources"][rule] for rule in GPU_RULES]
    assert all(block == blocks[0] for block in blocks)
    assert {"cpus_per_task", "mem_mb", "runtime"} <= set(blocks[0])


def test_failed_jobs_retry_with_more_memory():
    profile = slurm_profile()
    assert profile["retries"] >= 1
    for expression in (profile["default-resources"]["mem_mb"], profile["set-resources"]["finetune"]["mem_mb"]):
        memory = [memory_mb(expression, attempt) for attempt in range(1, profile["retries"] + 2)]
        assert memory == sorted(set(memory)), (expression, memory)


def test_each_job_asks_for_its_rules_resources(slurm_jobs):
    profile = slurm_profile()
    gpu_block = profile["set-resources"]["finetune"]
    assert {"finetune", "embed"} <= {job.rule for job in slurm_jobs.values()}
    for job in slurm_jobs.values():
        resources = dict(job.resources)
        if job.rule == "all":  # no output, run where Snakemake runs: never submitted
            continue
        assert resources["slurm_partition"].startswith(PLACEHOLDER) and resources["slurm_account"].startswith(PLACEHOLDER)
        if job.rule in GPU_RULES:
            assert resources["gpu"] == "1", job
            assert int(resources["cpus_per_task"]) == gpu_block["cpus_per_task"], job
            assert int(resources["mem_mb"]) == memory_mb(gpu_block["mem_mb"], 1), job
            assert int(resources["runtime"]) == gpu_block["runtime"], job
        else:
            assert "gpu" not in resources, f"{job} asks for a GPU: add its rule to the profile's GPU block"
            assert int(resources["mem_mb"]) == memory_mb(profile["default-resources"]["mem_mb"], 1), job
            assert int(resources["runtime"]) == profile["default-resources"]["runtime"], job


def test_a_ten_million_molecule_library_is_planned_as_100_scoring_jobs_per_model(tmp_path):
    """The default shard size (100,000 rows) cuts a generated 10,000,000-row library into 100 shards when the
    workflow is planned: each is prepared, compared with the training fold and scored by every model in its own
    SLURM job (a GPU job for a fine-tuned checkpoint), then merged into one file per model. A dry run: nothing runs."""
    config = study_config()
    config["checkpoints"] = {"tinyA": config["checkpoints"]["tinyA"]}
    del config["pretrain"]
    config["predict"] = {"libraries": {"screen": {"source": "screen.smi"}}}
    write_study(tmp_path, config)
    (tmp_path / "screen.smi").write_bytes(b"CCO\n" * 10_000_000)
    run = subprocess.run(
        [
            sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--profile", str(SLURM_PROFILE.parent),
            "--directory", str(tmp_path), "--configfile", str(tmp_path / "config.yaml"), "-n", "--forceall",
        ],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    jobs = list(parse_dry_run(run.stdout + run.stderr).values())
    models = {"tinyA": "predict", "ecfp4_rf": "predict_baseline", "ecfp4_logreg": "predict_baseline"}
    for model, rule in models.items():
        shards = sorted(int(job.wildcard("shard")) for job in jobs if job.rule == rule and job.names(model))
        assert shards == list(range(100)), (model, len(shards))
        assert [job.rule for job in jobs if job.rule == "merge_predictions" and job.wildcard("model") == model] == ["merge_predictions"]
    assert sum(job.rule == "library" for job in jobs) == sum(job.rule == "library_similarity" for job in jobs) == 100
    assert all(dict(job.resources)["gpu"] == "1" for job in jobs if job.rule == "predict")
