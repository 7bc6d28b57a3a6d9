"""Adapter: download a task's CSV once, checked against its sha256."""

from pathlib import Path

from chemlm.data.ingest import download
from chemlm.logs import step_log

with step_log(snakemake):
    task = snakemake.params.task
    download(task["source"], Path(snakemake.output[0]), task["sha256"], snakemake.wildcards.task)
