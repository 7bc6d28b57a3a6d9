"""Adapter: a library shard scored by chemprop's model of every split instance (an ensemble)."""

from chemlm.logs import step_log
from chemlm.models.mpnn import score_library

with step_log(snakemake):
    score_library(
        model_dirs=list(snakemake.input.models),
        calibration_method=snakemake.params.calibration,
        threads=snakemake.threads,
        library_csv=snakemake.input.library,
        similarity_csv=snakemake.input.similarity,
        out_csv=snakemake.output[0],
    )
