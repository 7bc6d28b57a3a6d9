"""Adapter: a library scored by the seeds' models of one checkpoint (an ensemble), with calibrated probabilities."""

import torch

from chemlm.logs import step_log
from chemlm.predict import score_library

with step_log(snakemake):
    torch.set_num_threads(snakemake.threads)
    score_library(
        list(snakemake.input.models), snakemake.params.calibration, snakemake.input.library, snakemake.input.similarity,
        snakemake.output[0],
    )
