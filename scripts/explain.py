"""Adapter: explain a task's split's chosen test molecules with every model of its first split instance."""

from chemlm.explain.task_explanations import ExplainedModels, write_task_explanations
from chemlm.logs import step_log
from chemlm.tasks import TaskSpec

with step_log(snakemake):
    settings = snakemake.params.settings
    inputs = dict(snakemake.input.items())
    write_task_explanations(
        TaskSpec.from_config(snakemake.wildcards.task, snakemake.params.task),
        {key.removeprefix("predictions_"): str(path) for key, path in inputs.items() if key.startswith("predictions_")},
        ExplainedModels.from_inputs(inputs),
        snakemake.input.molecules,
        settings["molecules"],
        settings["steps"],
        settings["baseline"],
        snakemake.output.selected,
        snakemake.output.atoms,
        snakemake.output.explained,
        snakemake.output.drawing,
        {tuple(name.split("/", 1)): path for name, path in snakemake.params.libraries.items()},
    )
