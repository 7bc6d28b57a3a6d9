"""Adapter: pre-train one model (MLM or MTR) on the corpus."""

import torch

from chemlm.config import PretrainSpec
from chemlm.logs import step_log
from chemlm.models.pretraining import pretrain

with step_log(snakemake):
    torch.set_num_threads(snakemake.threads)
    pretrain(
        smiles_csv=snakemake.input.smiles,
        descriptors_npz=snakemake.input.get("descriptors"),
        architecture_dir=snakemake.input.architecture,
        spec=PretrainSpec(**snakemake.params.spec),
        seed=snakemake.params.seed,
        model_dir=snakemake.output.model,
        history_csv=snakemake.output.history,
        run_json=snakemake.output.run,
        state_dir=snakemake.params.state_dir,
    )
