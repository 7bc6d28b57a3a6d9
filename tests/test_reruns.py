"""Incremental reruns, proven by the jobs `snakemake -n` plans after a change on a finished run of the study config
(a scratch, a local-folder and a pre-trained checkpoint).

The expectation for each change is written in terms of what the change touches, not a list of today's rules: the jobs
it touches directly (the changed checkpoint's fine-tuning, the new seed's or checkpoint's jobs, featurization) and
every job downstream of them in the workflow's full job graph (`snakemake -n -F`), which is where evaluation,
embeddings, projections, summaries and the report come in. The planned jobs must be exactly that set, so a rule that
reruns too much or too little fails the test. Each test leaves the finished run as it found it."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import PurePosixPath

import pandas as pd
import pytest
import yaml

from chemlm import layout
from chemlm.config import Study
from helpers import LOCAL_CHECKPOINT, save_tiny_model, snakemake, study_config, tiny_scratch_entry
from workflow_jobs import Job, by_rule, downstream, parse_dry_run

pytestmark = pytest.mark.integration

# The checkpoints of study_config(), named so that no other wildcard value clashes
SCRATCH, LOCAL, PRETRAINED = "tinyA", "tinyB", "tinyM"


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


def new_jobs_only(workdir, all_jobs: dict[tuple, Job], config: dict, *args: str) -> dict[tuple, Job]:
    """Plans `config` and checks that it plans exactly the jobs it adds to the workflow and what uses their outputs."""
    with_change = planned_jobs(workdir, config, "--forceall", *args)
    added = [job for key, job in with_change.items() if key not in all_jobs]
    assert added, "the change adds no job"
    planned = planned_jobs(workdir, config, *args)
    assert_planned(planned, downstream(with_change, added))
    return planned


@pytest.fixture(scope="module")
def all_jobs(study_run) -> dict[tuple, Job]:
    """Every job of the study config, done or not."""
    return planned_jobs(study_run, study_config(), "--forceall")


def test_an_unchanged_rerun_does_nothing(study_run):
    run = snakemake(study_run, "-n")
    assert run.returncode == 0 and parse_dry_run(run.stdout + run.stderr) == {}
    assert "Nothing to be done" in run.stdout + run.stderr


def test_the_config_with_its_keys_in_another_order_reruns_nothing(study_run):
    config = study_config()
    config["tasks"]["hiv"] = dict(reversed(list(config["tasks"]["hiv"].items())))
    config["checkpoints"][SCRATCH] = dict(reversed(list(config["checkpoints"][SCRATCH].items())))
    config["finetune"] = dict(reversed(list(config["finetune"].items())))
    text = yaml.safe_dump(config, sort_keys=True)  # as yaml.safe_dump writes any config: keys sorted
    assert text != yaml.safe_dump(study_config(), sort_keys=False)
    assert planned_jobs(study_run, yaml.safe_load(text)) == {}


def test_the_layout_lists_every_job_and_output_paths_carry_readable_wildcard_values(all_jobs):
    """chemlm.layout.workflow_jobs (whose benchmark files the report declares) is the workflow's job graph; every
    wildcard value is a folder or file name of every output (seeds as `seed<N>`), and nothing is a hash."""
    listed = {(rule, tuple(sorted((name, str(value)) for name, value in wildcards.items())))
              for rule, wildcards in layout.workflow_jobs(Study.from_config(study_config()))}
    assert listed == {job.key for job in all_jobs.values() if job.rule != "all"}
    for job in all_jobs.values():
        for path in job.outputs:
            parts = PurePosixPath(path).parts
            names = {*parts, *(PurePosixPath(part).stem for part in parts)}
            for name, value in job.wildcards:
                if name in ("objective", "size"):  # the pre-trained model's folder: {objective}-{size}/{name}
                    assert any(part.startswith(f"{value}-") or part.endswith(f"-{value}") for part in parts), f"{job}: {path}"
                    continue
                assert value in names or (name == "seed" and f"seed{value}" in names), f"{job}: {name} not in {path}"
            assert not re.search(r"[0-9a-f]{16,}", path), f"{path} looks like it holds a hash"


def test_a_checkpoint_learning_rate_reruns_only_that_checkpoint(study_run, all_jobs):
    config = study_config()
    config["checkpoints"][SCRATCH]["finetune"] = {"learning_rate": 5e-4}
    planned = planned_jobs(study_run, config)
    # Only fine-tuning reads the learning rate: what follows that checkpoint's fine-tuning reruns, nothing else.
    finetuning = [job for job in all_jobs.values() if job.rule == "finetune" and job.names(SCRATCH)]
    assert_planned(planned, downstream(all_jobs, finetuning))
    assert not any(job.names(LOCAL) or job.names(PRETRAINED) for job in planned.values())
    assert {"finetune", "evaluate", "summarize"} <= set(by_rule(planned.values()))
    assert not {"ingest", "featurize", "split", "pretrain", "pretrain_corpus"} & set(by_rule(planned.values()))


def test_a_new_seed_adds_only_its_jobs_and_no_pretraining(study_run, all_jobs):
    config = study_config()
    config["seeds"] = [0, 1]
    planned = new_jobs_only(study_run, all_jobs, config)
    assert by_rule(job for job in planned.values() if job.rule == "finetune") == {"finetune": 3}
    assert not any(job.wildcard("seed") == "0" for job in planned.values())
    assert not {"pretrain", "pretrain_corpus"} & set(by_rule(planned.values()))


def test_the_documented_command_line_seeds_plan_what_the_config_file_does(study_run, all_jobs):
    """README: `--config seeds=[0,1,2,3,4]`; Snakemake hands the list over as strings, the workflow reads numbers."""
    config = study_config()
    config["seeds"] = [0, 1]
    from_file = planned_jobs(study_run, config)
    from_command_line = planned_jobs(study_run, study_config(), "--config", "seeds=[0,1]")
    assert from_command_line.keys() == from_file.keys() and from_file


def test_a_new_split_method_adds_only_its_jobs_and_no_pretraining(study_run, all_jobs):
    config = study_config()
    config["split"] = {"methods": ["scaffold", "random"]}
    planned = new_jobs_only(study_run, all_jobs, config)
    assert {job.wildcard("split") for job in planned.values()} == {"random", None}
    assert not {"pretrain", "pretrain_corpus", "ingest", "featurize"} & set(by_rule(planned.values()))


def test_a_new_projection_method_computes_it_and_nothing_else(study_run, all_jobs):
    config = study_config()
    config["project"] = {"methods": ["pca", "tsne"]}
    planned = new_jobs_only(study_run, all_jobs, config)
    assert by_rule(planned.values()) == {"all": 1, "project": 3, "report": 1}
    assert {job.wildcard("method") for job in planned.values() if job.rule == "project"} == {"tsne"}


def test_explanations_add_only_their_jobs_and_the_stored_baselines_they_read(study_run, all_jobs):
    """`explain` adds one job per task and split, the first split instance's stored fingerprint baselines and the
    report, as chemlm.layout lists them."""
    config = {**study_config(), "explain": {"molecules": 1}}
    planned = new_jobs_only(study_run, all_jobs, config)
    assert by_rule(planned.values()) == {"all": 1, "explain": 1, "baseline_model": 2, "report": 1}
    listed = [(rule, wildcards) for rule, wildcards in layout.workflow_jobs(Study.from_config(config)) if rule in ("explain", "baseline_model")]
    assert sorted(listed, key=str) == sorted(((job.rule, dict(job.wildcards)) for job in planned.values() if job.rule in ("explain", "baseline_model")), key=str)


def test_a_new_checkpoint_adds_only_its_jobs(study_run, all_jobs):
    config = study_config()
    config["checkpoints"]["tinyC"] = tiny_scratch_entry()
    planned = new_jobs_only(study_run, all_jobs, config)
    assert not any(job.names(SCRATCH) or job.names(LOCAL) or job.names(PRETRAINED) for job in planned.values())


def test_a_pretraining_setting_reruns_that_model_and_its_fine_tunes_only(study_run, all_jobs):
    config = study_config()
    config["pretrain"]["models"]["tinymlm"]["epochs"] = 2
    planned = planned_jobs(study_run, config)
    assert_planned(planned, downstream(all_jobs, [job for job in all_jobs.values() if job.rule == "pretrain"]))
    assert not any(job.names(SCRATCH) or job.names(LOCAL) for job in planned.values())
    assert {"pretrain", "finetune", "embed"} <= set(by_rule(planned.values())) and "pretrain_corpus" not in by_rule(planned.values())


def test_replacing_a_local_checkpoints_weights_reruns_its_fine_tuning(study_run, all_jobs, tmp_path):
    weights = study_run / LOCAL_CHECKPOINT / "model.safetensors"
    original = tmp_path / "model.safetensors"
    shutil.copy2(weights, original)
    try:
        save_tiny_model(tmp_path / "other", seed=1)
        shutil.copy(tmp_path / "other" / "model.safetensors", weights)
        planned = planned_jobs(study_run, study_config())
    finally:
        shutil.copy2(original, weights)  # the finished run as it was, file times included
        os.utime(weights, ns=(original.stat().st_atime_ns, original.stat().st_mtime_ns))
    built_from_weights = [
        job for job in all_jobs.values()
        if job.names(LOCAL) and job.rule in ("finetune", "embed")
    ]
    assert_planned(planned, downstream(all_jobs, built_from_weights))
    assert all(f"{LOCAL_CHECKPOINT}/model.safetensors" in job.inputs for job in built_from_weights)
    assert planned_jobs(study_run, study_config()) == {}


def test_a_featurization_option_reruns_everything_after_featurize(study_run, all_jobs):
    """The canonical SMILES change, so the corpus (which leaves out the task's molecules) is rebuilt as well."""
    config = study_config()
    config["featurize"] = {"isomeric_smiles": False}
    planned = planned_jobs(study_run, config)
    touched = [job for job in all_jobs.values() if job.rule in ("featurize", "pretrain_corpus")]
    assert_planned(planned, downstream(all_jobs, touched))
    assert set(all_jobs.values()) - set(planned.values()) == {job for job in all_jobs.values() if job.rule == "ingest"}


def test_a_removed_seed_or_projection_method_leaves_the_report(study_run, tmp_path):
    """Add a seed and a projection method, run, then go back: the report shows exactly what the config asks for."""
    workdir = tmp_path / "run"
    shutil.copytree(study_run, workdir, symlinks=True)
    more = study_config()
    more["seeds"], more["project"] = [0, 1], {"methods": ["pca", "tsne"]}
    (workdir / "more.yaml").write_text(yaml.safe_dump(more))
    run = snakemake(workdir, configfile="more.yaml")
    assert run.returncode == 0, run.stderr[-4000:]
    page = (workdir / layout.REPORT_HTML).read_text()
    assert "tsne" in page and "<td>hiv</td><td>scaffold</td><td>seed1</td>" in page

    run = snakemake(workdir)  # the original config
    assert run.returncode == 0, run.stderr[-4000:]
    page = (workdir / layout.REPORT_HTML).read_text()
    assert "tsne" not in page and "<td>hiv</td><td>scaffold</td><td>seed1</td>" not in page
    assert "<td>hiv</td><td>scaffold</td><td>seed0</td>" in page
    assert set(pd.read_csv(workdir / layout.PER_INSTANCE)["instance"]) == {"seed0"}
    assert (workdir / layout.projection("png", "hiv", SCRATCH, "scaffold", 1, "tsne")).is_file()  # kept, not shown


def cross_validation_config(repeats: int) -> dict:
    config = study_config()
    config["split"] = {"methods": ["scaffold_cv", "cluster_cv"], "folds": 2, "repeats": repeats}
    config["embed"] = {"instances": 1}
    config.pop("search", None)
    return config


def test_a_cross_validation_repeat_adds_only_its_jobs(study_run):
    """Each (repeat, fold) is its own split instance: the layout lists the dry run's jobs, a second repeat adds jobs of
    its own instances (and the study-wide ones that gather them) and changes none of the first repeat's."""
    one = planned_jobs(study_run, cross_validation_config(1), "--forceall")
    two = planned_jobs(study_run, cross_validation_config(2), "--forceall")
    listed = {(rule, tuple(sorted((name, str(value)) for name, value in wildcards.items())))
              for rule, wildcards in layout.workflow_jobs(Study.from_config(cross_validation_config(2)))}
    assert listed == {job.key for job in two.values() if job.rule != "all"}
    instances = {job.wildcard("instance") for job in two.values()} - {None}
    assert instances == {f"repeat{repeat}-fold{fold}" for repeat in range(2) for fold in range(2)}
    assert set(one) <= set(two)
    added = [job for key, job in two.items() if key not in one]
    assert {job.wildcard("instance") for job in added} == {"repeat1-fold0", "repeat1-fold1"}  # the gathering jobs are in both
    for key, job in one.items():  # a first-repeat job reads the same inputs with a second repeat
        if job.wildcard("instance") is not None:
            assert two[key].inputs == job.inputs, job
    clusters = [job for job in two.values() if job.rule == "cluster"]
    assert len(clusters) == 1 and all("results/hiv/data/clusters.csv" in job.inputs for job in two.values()
                                      if job.rule == "split" and job.wildcard("split") == "cluster_cv")
    assert len([job for job in two.values() if job.rule == "embed"]) == 2 * 3  # embed.instances: 1 per split
