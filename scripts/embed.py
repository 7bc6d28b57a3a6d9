"""Adapter: test-set embeddings of one checkpoint before (zeroshot) and after (finetuned) fine-tuning."""

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
        seed=snakemake.params.seed,
        model_dir=snakemake.input.model,
        pooling=snakemake.params.pooling,
        batch_size=snakemake.params.batch_size,
        max_length=snakemake.params.max_length,
        zeroshot_npz=snakemake.output.zeroshot,
        finetuned_npz=snakemake.output.finetuned,
    )
