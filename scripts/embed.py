"""Adapter: test-set embeddings of one checkpoint before (zeroshot) or after (finetuned) fine-tuning."""

import torch

from chemlm.config import CheckpointSpec
from chemlm.logs import step_log
from chemlm.models.embeddings import write_embeddings
from chemlm.tasks import TaskSpec

with step_log(snakemake):
    torch.set_num_threads(snakemake.threads)
    write_embeddings(
        molecules_csv=snakemake.input.molecules,
        split_csv=snakemake.input.split,
        task=TaskSpec.from_config(snakemake.wildcards.task, snakemake.params.task),
        checkpoint=CheckpointSpec.from_config(snakemake.wildcards.checkpoint, snakemake.params.checkpoint),
        stage=snakemake.wildcards.stage,
        seed=snakemake.params.seed,
        pooling=snakemake.params.pooling,
        batch_size=snakemake.params.batch_size,
        max_length=snakemake.params.max_length,
        out_npz=snakemake.output[0],
        model_dir=snakemake.input.get("model"),
    )
