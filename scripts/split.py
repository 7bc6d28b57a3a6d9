"""Adapter: assign each molecule of a task to train, valid or test for one split method and seed."""

from chemlm.io import read_csv, write_csv, write_json
from chemlm.logs import step_log
from chemlm.splits import assign_folds, split_summary
from chemlm.tasks import TaskSpec

with step_log(snakemake):
    task = TaskSpec.from_config(snakemake.wildcards.task, snakemake.params.task)
    molecules = read_csv(snakemake.input[0], dtype={"mol_id": str})
    assignment = assign_folds(
        molecules, task, snakemake.wildcards.split, tuple(snakemake.params.fractions), int(snakemake.wildcards.seed)
    )
    write_json(split_summary(molecules, assignment, task), snakemake.output.summary)
    write_csv(assignment, snakemake.output.assignment)
