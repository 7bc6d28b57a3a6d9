"""Incremental reruns, proven by the jobs `snakemake -n` plans after a config change on a finished run.

The expectation for each change is written in terms of what the change touches, not a list of today's rules: the jobs
it touches directly (the changed checkpoint's fine-tuning, the new seed's or checkpoint's jobs, featurization) and
every job downstream of them in the workflow's full job graph (`snakemake -n -F`), which is where evaluation,
embeddings, projections, summaries and the report come in. The planned jobs must be exactly that set, so a rule that
reruns too much or too little fails the test."""

from __future__ import annotations

import hashlib
import re
from pathlib import PurePosixPath

import pytest
import yaml

from helpers import snakemake, study_config, tiny_scratch_entry
from workflow_jobs import Job, by_rule, downstream, parse_dry_run

CHANGED, KEPT = "tinyA", "tinyB"  # the two checkpoints of study_config(), named so that no other wildcard value clashes


def planned_jobs(workdir, config: dict, *args: str) -> dict[tuple, Job]:
    """The jobs `snakemake -n` (plus `args`) plans for `config` on the finished run in `workdir`."""
    text = yaml.safe_dump(config)
    name = f"variant-{hashlib.sha256(text.encode()).hexdigest()[:12]}.yaml"
    (workdir / name).write_text(text)
    run = snakemake(workdir, "-n", *args, configfile=name)
    assert run.returncode == 0, run.stderr[-4000:]
    return parse_dry_run(run.stdout + run.stderr)


def describe(jobs) -> str:
    return "\n".join(f"  {job}  [{job.reason[:200]}]" for job in sorted(jobs, key=str)) or "  (none)"


def assert_planned(planned: dict[tuple, Job], expected: set[Job]) -> None:
    planned_set = set(planned.values())
    assert planned_set == expected, (
        f"planned {by_rule(planned_set)}, expected {by_rule(expected)}\n"
        f"unexpected:\n{describe(planned_set - expected)}\nmissing:\n{describe(expected - planned_set)}"
    )


@pytest.fixture(scope="module")
def all_jobs(study_run) -> dict[tuple, Job]:
    """Every job of the study config, done or not."""
    return planned_jobs(study_run, study_config(), "--forceall")


def test_an_unchanged_rerun_does_nothing(study_run):
    run = snakemake(study_run, "-n")
    assert run.returncode == 0 and parse_dry_run(run.stdout + run.stderr) == {}
    assert "Nothing to be done" in run.stdout + run.stderr


def test_output_paths_carry_readable_wildcard_values(all_jobs):
    """Every wildcard value is a folder or file name of every output (seeds as `seed<N>`), and nothing is a hash."""
    for job in all_jobs.values():
        for path in job.outputs:
            parts = PurePosixPath(path).parts
            names = {*parts, *(PurePosixPath(part).stem for part in parts)}
            for name, value in job.wildcards:
                assert value in names or (name == "seed" and f"seed{value}" in names), f"{job}: {name} not in {path}"
            assert not re.search(r"[0-9a-f]{16,}", path), f"{path} looks like it holds a hash"


def test_a_checkpoint_learning_rate_reruns_only_that_checkpoint(study_run, all_jobs):
    config = study_config()
    config["checkpoints"][CHANGED]["finetune"] = {"learning_rate": 5e-4}
    planned = planned_jobs(study_run, config)
    # Only fine-tuning reads the learning rate: zero-shot embeddings of the same checkpoint stay as they are.
    finetuning = [job for job in all_jobs.values() if job.rule == "finetune" and job.names(CHANGED)]
    assert_planned(planned, downstream(all_jobs, finetuning))
    assert not any(job.names(KEPT) for job in planned.values())
    assert {"finetune", "evaluate", "summarize"} <= set(by_rule(planned.values()))
    assert not {"ingest", "featurize", "split"} & set(by_rule(planned.values()))


def test_a_new_seed_adds_only_its_jobs(study_run, all_jobs):
    config = study_config()
    config["seeds"] = [0, 1]
    with_seed = planned_jobs(study_run, config, "--forceall")
    new_jobs = [job for key, job in with_seed.items() if key not in all_jobs]
    assert new_jobs and all(job.wildcard("seed") == "1" for job in new_jobs), describe(new_jobs)
    planned = planned_jobs(study_run, config)
    assert_planned(planned, downstream(with_seed, new_jobs))
    assert by_rule(job for job in planned.values() if job.rule == "finetune") == {"finetune": 2}
    assert not any(job.wildcard("seed") == "0" for job in planned.values())


def test_a_new_checkpoint_adds_only_its_jobs(study_run, all_jobs):
    config = study_config()
    config["checkpoints"]["tinyC"] = tiny_scratch_entry()
    with_checkpoint = planned_jobs(study_run, config, "--forceall")
    new_jobs = [job for key, job in with_checkpoint.items() if key not in all_jobs]
    assert new_jobs and all(job.names("tinyC") for job in new_jobs), describe(new_jobs)
    planned = planned_jobs(study_run, config)
    assert_planned(planned, downstream(with_checkpoint, new_jobs))
    assert not any(job.names(CHANGED) or job.names(KEPT) for job in planned.values())


def test_a_featurization_option_reruns_everything_after_featurize(study_run, all_jobs):
    config = study_config()
    config["featurize"] = {"isomeric_smiles": False}
    planned = planned_jobs(study_run, config)
    assert_planned(planned, downstream(all_jobs, [job for job in all_jobs.values() if job.rule == "featurize"]))
    assert set(all_jobs.values()) - set(planned.values()) == {job for job in all_jobs.values() if job.rule == "ingest"}
