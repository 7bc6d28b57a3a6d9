"""Adapter: how the test error falls as predictions are restricted to the most confident or most in-domain ones."""

from chemlm.logs import step_log
from chemlm.report.uncertainty import write_uncertainty_report
from chemlm.tasks import TaskSpec

with step_log(snakemake):
    write_uncertainty_report(
        task=TaskSpec.from_config(snakemake.wildcards.task, snakemake.params.task),
        split=snakemake.wildcards.split,
        checkpoints=snakemake.params.checkpoints,
        baselines=snakemake.params.baselines,
        seeds=snakemake.params.instances,
        method=snakemake.params.method,
        inputs=snakemake.input,
        figure_png=snakemake.output.figure,
        table_csv=snakemake.output.table,
    )
