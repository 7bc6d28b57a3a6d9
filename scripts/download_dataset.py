"""Adapter: download a task's CSV once, checked against its sha256."""

from pathlib import Path

from chemlm.data.ingest import download
from chemlm.logs import step_log

with step_log(snakemake.log[0]):
    download(snakemake.params.url, Path(snakemake.output[0]), snakemake.params.sha256, snakemake.wildcards.task)
