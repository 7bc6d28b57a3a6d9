"""Adapter: a library's counts of rows, valid and invalid ones, summed over its shards."""

from chemlm.io import read_json, write_json
from chemlm.library import merge_counts
from chemlm.logs import step_log

with step_log(snakemake):
    write_json(merge_counts([read_json(path) for path in snakemake.input]), snakemake.output[0])
