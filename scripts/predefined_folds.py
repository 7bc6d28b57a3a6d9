"""Adapter: match a task's published folds (tasks.<name>.folds) to its molecules, the input of the predefined split."""

from chemlm.isolation import Isolation
from chemlm.logs import step_log
from chemlm.predefined import write_predefined_folds
from chemlm.tasks import FoldSource, TaskSpec

with step_log(snakemake):
    write_predefined_folds(
        snakemake.input.molecules,
        snakemake.input.source,
        TaskSpec.from_config(snakemake.wildcards.task, snakemake.params.task),
        FoldSource.from_config(snakemake.params.folds),
        snakemake.params.isomeric_smiles,
        Isolation(snakemake.threads, snakemake.params.rdkit_time_limit),
        snakemake.output.assignment,
        snakemake.output.found,
    )
