"""Adapter: a library shard scored by a fingerprint baseline's stored models of every split instance (an ensemble)."""

from chemlm.baselines import score_library
from chemlm.logs import step_log
from chemlm.tasks import TaskSpec

with step_log(snakemake):
    score_library(
        model_paths=list(snakemake.input.models),
        calibration_jsons=list(snakemake.input.calibrations),
        task=TaskSpec.from_config(snakemake.wildcards.task, snakemake.params.task),
        calibration_method=snakemake.params.calibration,
        library_csv=snakemake.input.library,
        library_features=snakemake.input.library_features,
        similarity_csv=snakemake.input.similarity,
        out_csv=snakemake.output[0],
    )
