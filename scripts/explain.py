"""Adapter: explain a task's split's chosen test molecules with every model of its first split instance."""

from chemlm.explain.task_explanations import write_task_explanations
from chemlm.logs import step_log
from chemlm.tasks import TaskSpec


def named(prefix: str) -> dict[str, str]:
    """The inputs named <prefix>_<model>, by model."""
    return {key.removeprefix(prefix): str(path) for key, path in snakemake.input.items() if key.startswith(prefix)}


with step_log(snakemake):
    settings = snakemake.params.settings
    descriptor_names = ()
    if "descriptor_names" in snakemake.input.keys():
        from chemlm.descriptors import load_descriptor_names

        descriptor_names = load_descriptor_names(snakemake.input.descriptor_names)
    write_task_explanations(
        TaskSpec.from_config(snakemake.wildcards.task, snakemake.params.task),
        named("predictions_"),
        named("transformer_"),
        named("baseline_"),
        {"chemprop": snakemake.input.chemprop} if "chemprop" in snakemake.input.keys() else {},
        snakemake.input.molecules,
        settings["molecules"],
        settings["steps"],
        settings["baseline"],
        descriptor_names,
        snakemake.output.selected,
        snakemake.output.atoms,
        snakemake.output.explained,
        snakemake.output.drawing,
        {tuple(name.split("/", 1)): path for name, path in snakemake.params.libraries.items()},
    )
