"""Adapter: a model's scores of a library's shards merged, in shard order, into one file."""

from chemlm.logs import step_log
from chemlm.scoring import merge_shards

with step_log(snakemake):
    merge_shards(list(snakemake.input), snakemake.params.shard_size, snakemake.output[0])
