"""Adapter: a fine-tuned model folder exported to ONNX for the engine in its path, checked on the test fold."""

import torch

from chemlm.export import export_onnx
from chemlm.logs import step_log

with step_log(snakemake):
    torch.set_num_threads(snakemake.threads)
    export_onnx(snakemake.input.model, snakemake.input.molecules, snakemake.input.split, snakemake.wildcards.engine, snakemake.output[0])
