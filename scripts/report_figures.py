"""Adapter: the test-set curves and learning curves of one task and split, as PNGs for the report."""

from chemlm.logs import step_log
from chemlm.report.figures import write_task_figures

with step_log(snakemake.log[0]):
    write_task_figures(
        config=snakemake.params.config,
        summary_csv=snakemake.input.summary,
        per_seed_csv=snakemake.input.per_seed,
        task=snakemake.wildcards.task,
        split=snakemake.wildcards.split,
        curves_png=snakemake.output.curves,
        learning_png=snakemake.output.learning,
    )
