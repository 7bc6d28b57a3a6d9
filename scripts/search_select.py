"""Adapter: the best search trial on the validation fold, whose settings every seed is fine-tuned with."""

from chemlm.logs import step_log
from chemlm.search import select_trial

with step_log(snakemake):
    select_trial(list(snakemake.input), snakemake.params.maximise, snakemake.output[0])
