"""Adapter: every pair of models compared over the split instances, per task, split and metric; figures and ranks."""

from chemlm.config import CompareSettings
from chemlm.logs import step_log
from chemlm.report.comparison import write_study_comparison
from chemlm.tasks import TaskSpec

with step_log(snakemake):
    tasks = {name: TaskSpec.from_config(name, entry) for name, entry in snakemake.params.tasks.items()}
    splits = snakemake.params.splits
    figures = {(task, split): path for (task, split), path in zip(snakemake.params.figures, snakemake.output.figures)}
    write_study_comparison(
        per_instance_csv=snakemake.input[0],
        tasks=tasks,
        splits=splits,
        settings=CompareSettings(**snakemake.params.settings),
        preferred=snakemake.params.metric,
        comparison_csv=snakemake.output.table,
        figures=figures,
        ranks_png=snakemake.output.ranks,
    )
