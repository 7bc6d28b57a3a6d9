"""Adapter: mean, sd and number of split instances of every metric, over all models."""

from chemlm.evaluate import write_summary
from chemlm.logs import step_log

with step_log(snakemake):
    write_summary(snakemake.input, snakemake.output.per_instance, snakemake.output.summary)
