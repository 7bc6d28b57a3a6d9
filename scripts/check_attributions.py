"""Adapter: score every model's atom attributions on a rule task's positive test molecules against the known answer."""

from chemlm.explain.ground_truth import SmartsRule
from chemlm.explain.task_explanations import write_attribution_check
from chemlm.logs import step_log
from chemlm.tasks import TaskSpec


def named(prefix: str) -> dict[str, str]:
    return {key.removeprefix(prefix): str(path) for key, path in snakemake.input.items() if key.startswith(prefix)}


with step_log(snakemake):
    settings, rule = snakemake.params.settings, snakemake.params.rule
    descriptor_names = ()
    if "descriptor_names" in snakemake.input.keys():
        from chemlm.descriptors import load_descriptor_names

        descriptor_names = load_descriptor_names(snakemake.input.descriptor_names)
    write_attribution_check(
        TaskSpec.from_config(snakemake.wildcards.task, snakemake.params.task),
        SmartsRule(tuple(rule["present"]), tuple(rule["absent"])),
        snakemake.input.molecules,
        snakemake.input.split,
        named("transformer_"),
        named("baseline_"),
        {"chemprop": snakemake.input.chemprop} if "chemprop" in snakemake.input.keys() else {},
        settings["checked_molecules"],
        settings["steps"],
        settings["baseline"],
        descriptor_names,
        snakemake.params.seed,
        snakemake.output.per_molecule,
        snakemake.output.summary,
    )
