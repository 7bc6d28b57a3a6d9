"""Adapter: fine-tune one checkpoint on one task, split and seed."""

import torch

from chemlm.config import CheckpointSpec, FinetuneParams
from chemlm.logs import step_log
from chemlm.models.finetuning import finetune
from chemlm.tasks import TaskSpec

with step_log(snakemake):
    torch.set_num_threads(snakemake.threads)
    finetune(
        molecules_csv=snakemake.input.molecules,
        split_csv=snakemake.input.split,
        task=TaskSpec.from_config(snakemake.wildcards.task, snakemake.params.task),
        checkpoint=CheckpointSpec.from_config(snakemake.wildcards.checkpoint, snakemake.params.checkpoint),
        params=FinetuneParams.from_dict(snakemake.params.hyperparameters),
        seed=int(snakemake.wildcards.seed),
        model_dir=snakemake.output.model,
        history_csv=snakemake.output.history,
        predictions_csv=snakemake.output.predictions,
        run_json=snakemake.output.run,
        state_dir=snakemake.params.state_dir,
        calibration_json=snakemake.output.calibration,
        isomeric_smiles=snakemake.params.isomeric_smiles,
    )
