"""Adapter: train one fingerprint or LightGBM baseline on one task, split and seed; write its predictions and calibration."""

from chemlm.baselines import train_baseline
from chemlm.logs import step_log
from chemlm.tasks import TaskSpec

with step_log(snakemake):
    train_baseline(
        molecules_csv=snakemake.input.molecules,
        split_csv=snakemake.input.split,
        features_npz=snakemake.input.features,
        task=TaskSpec.from_config(snakemake.wildcards.task, snakemake.params.task),
        baseline=snakemake.wildcards.baseline,
        seed=snakemake.params.seed,
        trees=snakemake.params.trees,
        threads=snakemake.threads,
        predictions_csv=snakemake.output.predictions,
        calibration_json=snakemake.output.calibration,
        settings_json=snakemake.output.settings,
        search=tuple(snakemake.params.search) if snakemake.params.search else None,
    )
