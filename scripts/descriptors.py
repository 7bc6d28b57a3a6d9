"""Adapter: ECFP4 counts and RDKit's 2-D descriptors of a task's molecules, the LightGBM baseline's features."""

from chemlm.descriptors import write_task_features
from chemlm.isolation import Isolation
from chemlm.logs import step_log

with step_log(snakemake):
    write_task_features(snakemake.input.molecules, snakemake.input.names, snakemake.output[0],
                        isolation=Isolation(snakemake.threads, snakemake.params.rdkit_time_limit))
