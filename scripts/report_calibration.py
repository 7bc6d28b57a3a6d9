"""Adapter: the test fold's reliability diagram, Brier score and calibration error before and after calibration."""

from chemlm.logs import step_log
from chemlm.report.calibration import write_calibration_report
from chemlm.tasks import TaskSpec

with step_log(snakemake):
    write_calibration_report(
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
