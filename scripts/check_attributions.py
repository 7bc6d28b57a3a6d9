"""Adapter: score every model's atom attributions on a rule task's positive test molecules against the known answer."""

from chemlm.explain.ground_truth import SmartsRule
from chemlm.explain.task_explanations import ExplainedModels, write_attribution_check
from chemlm.logs import step_log
from chemlm.tasks import TaskSpec

with step_log(snakemake):
    settings, rule = snakemake.params.settings, snakemake.params.rule
    write_attribution_check(
        TaskSpec.from_config(snakemake.wildcards.task, snakemake.params.task),
        SmartsRule(tuple(rule["present"]), tuple(rule["absent"])),
        snakemake.input.molecules,
        snakemake.input.split,
        ExplainedModels.from_inputs(dict(snakemake.input.items())),
        settings["checked_molecules"],
        settings["steps"],
        settings["baseline"],
        snakemake.params.seed,
        snakemake.output.per_molecule,
        snakemake.output.summary,
    )
