"""Adapter: the search trials of one task and split, validation metric against each searched setting."""

from chemlm.logs import step_log
from chemlm.report.search import write_search_figure
from chemlm.tasks import TaskSpec

with step_log(snakemake):
    write_search_figure(
        task=TaskSpec.from_config(snakemake.wildcards.task, snakemake.params.task),
        split=snakemake.wildcards.split,
        checkpoints=snakemake.params.checkpoints,
        inputs=snakemake.input,
        figure_png=snakemake.output[0],
    )
