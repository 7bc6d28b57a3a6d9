"""Adapter: chemprop's test-set molecule vectors at initialisation (zeroshot) and after training (finetuned)."""

import torch

from chemlm.logs import step_log
from chemlm.models.mpnn import write_embeddings

with step_log(snakemake):
    torch.set_num_threads(snakemake.threads)
    write_embeddings(
        molecules_csv=snakemake.input.molecules,
        split_csv=snakemake.input.split,
        seed=snakemake.params.seed,
        model_dir=snakemake.input.model,
        zeroshot_npz=snakemake.output.zeroshot,
        finetuned_npz=snakemake.output.finetuned,
    )
