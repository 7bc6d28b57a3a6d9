"""The study config through `--profile profiles/slurm` on a real single-node SLURM cluster on localhost (one fake
GPU), compared with the same config run locally. The profile is used as a user would: a copy with only the
partition and the account changed."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from helpers import REPO, SINGLE_THREADED, snakemake, write_study
from slurm_cluster import PARTITION, local_slurm
from workflow_jobs import by_rule, parse_dry_run

pytestmark = pytest.mark.integration

GPU_RULES = {"finetune", "embed", "pretrain", "search_trial", "predict"}
# This cluster has no accounting database: jobs are followed with squeue (its finished jobs stay MinJobAge seconds),
# and status checks start 1 s after a submission instead of 40 (then every 10 s more until a job finishes).
CLUSTER_OPTIONS = ["--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "1"]
RUN_TIMEOUT_S = 900


def user_profile(folder: Path) -> Path:
    """profiles/slurm with the two values a user edits set for the test cluster."""
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    profile["default-resources"].update({"slurm_partition": PARTITION, "slurm_account": "chemlm"})
    folder.mkdir()
    (folder / "config.yaml").write_text(yaml.safe_dump(profile))
    return folder


@dataclass
class SlurmRun:
    workdir: Path
    command: list[str]
    jobs: list[dict[str, str]]  # the cluster's record of every job it ran


@pytest.fixture(scope="module")
def slurm_run(tmp_path_factory) -> SlurmRun:
    base = tmp_path_factory.mktemp("slurm")
    workdir = base / "work"
    workdir.mkdir()
    write_study(workdir)
    command = [
        sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--profile", str(user_profile(base / "profile")),
        # the local reference run's threads: torch's float sums on the CPU depend on the thread count
        *SINGLE_THREADED, "--directory", str(workdir), "--configfile", str(workdir / "config.yaml"), *CLUSTER_OPTIONS,
    ]
    with local_slurm() as cluster:
        run = subprocess.run(command, env=cluster.env(), capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
        jobs = cluster.jobs()
        assert run.returncode == 0, f"{run.stderr[-6000:]}\n{cluster.logs()}"
    return SlurmRun(workdir, command, jobs)


def submitted(jobs: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    """The cluster's jobs by rule: the plugin comments each with `rule_<name>[_wildcards_...]`."""
    by_rule: dict[str, list[dict[str, str]]] = {}
    for job in jobs:
        rule = job["comment"].removeprefix("rule_").split("_wildcards_")[0]
        by_rule.setdefault(rule, []).append(job)
    return by_rule


def slurm_time(minutes: int) -> str:
    """A time limit as squeue shows it."""
    days, minutes = divmod(minutes, 24 * 60)
    return f"{days}-" * bool(days) + f"{minutes // 60}:{minutes % 60:02d}:00"


def test_every_job_went_through_sbatch_once_and_completed(slurm_run, study_run):
    dry = snakemake(study_run, "-n", "--forceall")
    assert dry.returncode == 0, dry.stderr[-4000:]
    # `all` only gathers files: Snakemake runs it on the submitting host.
    expected = by_rule(job for job in parse_dry_run(dry.stdout + dry.stderr).values() if job.rule != "all")
    assert {rule: len(jobs) for rule, jobs in sorted(submitted(slurm_run.jobs).items())} == expected
    assert len({job["comment"] for job in slurm_run.jobs}) == len(slurm_run.jobs), "a job was submitted twice"
    assert {job["state"] for job in slurm_run.jobs} == {"COMPLETED"}, slurm_run.jobs


def test_sbatch_asked_for_what_the_profile_sets(slurm_run):
    """Each job's request, as the cluster recorded it, is what Snakemake planned from the profile (GPU rules: a GPU,
    the profile's CPUs, memory and time)."""
    dry = subprocess.run([*slurm_run.command, "-n", "--forceall"], capture_output=True, text=True, timeout=300)
    assert dry.returncode == 0, dry.stderr[-4000:]
    planned = {job.rule: dict(job.resources) for job in parse_dry_run(dry.stdout + dry.stderr).values()}
    for rule, jobs in submitted(slurm_run.jobs).items():
        resources = planned[rule]
        for job in jobs:
            assert job["partition"] == PARTITION == resources["slurm_partition"]
            assert job["memory"] == f"{resources['mem_mb']}M", (rule, job)
            assert job["time_limit"] == slurm_time(int(resources["runtime"])), (rule, job)
            if rule in GPU_RULES:
                assert job["gres"] == "gres:gpu:1", (rule, job)
                assert job["cpus"] == resources["cpus_per_task"], (rule, job)
            else:
                assert job["gres"] == "N/A", (rule, job)


def test_slurm_results_equal_the_local_run(slurm_run, study_run):
    """Byte for byte: the summaries, and every model's predictions (fine-tuned and baseline)."""
    local = [study_run / "results" / "summary.csv", study_run / "results" / "metrics.csv"]
    local += sorted((study_run / "results").rglob("predictions.csv"))
    assert len(local) > 2
    for path in local:
        relative = path.relative_to(study_run)
        assert (slurm_run.workdir / relative).read_bytes() == path.read_bytes(), relative
