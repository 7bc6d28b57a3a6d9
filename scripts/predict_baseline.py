"""Adapter: a library scored by a fingerprint baseline trained on each seed's train fold (an ensemble)."""

from chemlm.baselines import score_library
from chemlm.logs import step_log
from chemlm.tasks import TaskSpec

with step_log(snakemake):
    score_library(
        molecules_csv=snakemake.input.molecules,
        split_csvs=list(snakemake.input.splits),
        fingerprints_npz=snakemake.input.fingerprints,
        calibration_jsons=list(snakemake.input.calibrations),
        settings_jsons=list(snakemake.input.settings),
        task=TaskSpec.from_config(snakemake.wildcards.task, snakemake.params.task),
        baseline=snakemake.wildcards.baseline,
        seeds=snakemake.params.seeds,
        threads=snakemake.threads,
        calibration_method=snakemake.params.calibration,
        library_csv=snakemake.input.library,
        library_npy=snakemake.input.library_fingerprints,
        similarity_csv=snakemake.input.similarity,
        out_csv=snakemake.output[0],
    )
