"""Adapter: one search trial: fine-tune with the trial's settings and score it on the validation fold alone."""

import torch

from chemlm.config import CheckpointSpec, FinetuneParams
from chemlm.logs import step_log
from chemlm.models.finetuning import search_trial
from chemlm.tasks import TaskSpec

with step_log(snakemake):
    torch.set_num_threads(snakemake.threads)
    search_trial(
        molecules_csv=snakemake.input.molecules,
        split_csv=snakemake.input.split,
        task=TaskSpec.from_config(snakemake.wildcards.task, snakemake.params.task),
        checkpoint=CheckpointSpec.from_config(snakemake.wildcards.checkpoint, snakemake.params.checkpoint),
        params=FinetuneParams.from_dict(snakemake.params.hyperparameters),
        seed=int(snakemake.wildcards.seed),
        trial=int(snakemake.wildcards.trial),
        result_json=snakemake.output[0],
        state_dir=snakemake.params.state_dir,
        variants_csv=snakemake.input.get("variants"),
    )
