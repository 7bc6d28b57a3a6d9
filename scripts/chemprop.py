"""Adapter: chemprop's D-MPNN trained on one task, split instance and seed; its predictions, calibration and model folder."""

from chemlm.logs import step_log
from chemlm.models.mpnn import MpnnSettings, train_chemprop
from chemlm.tasks import TaskSpec

with step_log(snakemake):
    train_chemprop(
        molecules_csv=snakemake.input.molecules,
        split_csv=snakemake.input.split,
        task=TaskSpec.from_config(snakemake.wildcards.task, snakemake.params.task),
        settings=MpnnSettings(**snakemake.params.settings),
        seed=snakemake.params.seed,
        threads=snakemake.threads,
        predictions_csv=snakemake.output.predictions,
        calibration_json=snakemake.output.calibration,
        settings_json=snakemake.output.settings,
        model_dir=snakemake.output.model,
        history_csv=snakemake.output.history,
        search=tuple(snakemake.params.search) if snakemake.params.search else None,
        isomeric_smiles=snakemake.params.isomeric_smiles,
    )
