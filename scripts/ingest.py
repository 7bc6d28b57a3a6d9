"""Adapter: read a task's source table (CSV, TSV or SD file), check it, write results/{task}/data/table.csv."""

from chemlm.data.ingest import read_task_table
from chemlm.io import write_csv
from chemlm.isolation import Isolation
from chemlm.logs import step_log
from chemlm.tasks import TaskSpec

with step_log(snakemake):
    task = TaskSpec.from_config(snakemake.wildcards.task, snakemake.params.task)
    write_csv(read_task_table(snakemake.input[0], task, isolation=Isolation(snakemake.threads, snakemake.params.rdkit_time_limit)), snakemake.output[0])
