"""Adapter: a baseline trained again on one split instance's train fold and stored, to score libraries."""

from chemlm.baselines import write_fitted
from chemlm.logs import step_log
from chemlm.tasks import TaskSpec

with step_log(snakemake):
    write_fitted(
        molecules_csv=snakemake.input.molecules,
        split_csv=snakemake.input.split,
        features_npz=snakemake.input.features,
        settings_json=snakemake.input.settings,
        task=TaskSpec.from_config(snakemake.wildcards.task, snakemake.params.task),
        baseline=snakemake.wildcards.baseline,
        seed=snakemake.params.seed,
        out_path=snakemake.output[0],
    )
