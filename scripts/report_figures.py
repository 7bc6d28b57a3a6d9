"""Adapter: the test-set curves and learning curves of one task and split, as PNGs for the report."""

from chemlm.logs import step_log
from chemlm.report.figures import write_task_figures
from chemlm.tasks import TaskSpec

with step_log(snakemake):
    write_task_figures(
        task=TaskSpec.from_config(snakemake.wildcards.task, snakemake.params.task),
        split=snakemake.wildcards.split,
        checkpoints=snakemake.params.checkpoints,
        baselines=snakemake.params.baselines,
        seeds=snakemake.params.instances,
        inputs=snakemake.input,
        curves_png=snakemake.output.curves,
        learning_png=snakemake.output.learning,
    )
