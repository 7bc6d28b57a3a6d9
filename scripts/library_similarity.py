"""Adapter: each row of a library shard: its highest ECFP4 Tanimoto similarity to a task's training fold, and that neighbour."""

from chemlm.logs import step_log
from chemlm.similarity import write_library_similarity

with step_log(snakemake):
    write_library_similarity(
        snakemake.input.molecules, list(snakemake.input.splits), snakemake.input.fingerprints, snakemake.input.library,
        snakemake.output[0], first_row=snakemake.params.first_row,
    )
