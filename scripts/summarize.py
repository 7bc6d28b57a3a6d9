"""Adapter: mean, sd and number of seeds of every metric, over all fine-tuned models."""

from chemlm.evaluate import write_summary
from chemlm.logs import step_log

with step_log(snakemake):
    write_summary(snakemake.input, snakemake.output.per_seed, snakemake.output.summary)
