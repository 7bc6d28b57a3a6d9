"""Adapter: fine-tune one checkpoint on one task, split and seed."""

import torch

from chemlm.config import CheckpointSpec, FinetuneParams
from chemlm.io import read_json
from chemlm.logs import step_log
from chemlm.models.finetuning import finetune
from chemlm.tasks import TaskSpec

with step_log(snakemake):
    torch.set_num_threads(snakemake.threads)
    # with a search, the chosen trial's settings (validation fold only) replace the config's
    searched = read_json(snakemake.input.search) if "search" in snakemake.input.keys() else None
    finetune(
        molecules_csv=snakemake.input.molecules,
        split_csv=snakemake.input.split,
        task=TaskSpec.from_config(snakemake.wildcards.task, snakemake.params.task),
        checkpoint=CheckpointSpec.from_config(snakemake.wildcards.checkpoint, snakemake.params.checkpoint),
        params=FinetuneParams.from_dict(searched["params"] if searched else snakemake.params.hyperparameters),
        seed=snakemake.params.seed,
        model_dir=snakemake.output.model,
        history_csv=snakemake.output.history,
        predictions_csv=snakemake.output.predictions,
        run_json=snakemake.output.run,
        state_dir=snakemake.params.state_dir,
        calibration_json=snakemake.output.calibration,
        isomeric_smiles=snakemake.params.isomeric_smiles,
        searched={key: searched[key] for key in ("trial", "valid_metric", "selected_on")} if searched else None,
        variants_csv=snakemake.input.get("variants"),
        random_smiles=snakemake.params.random_smiles,
    )
