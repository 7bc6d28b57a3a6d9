"""Adapter: a corpus sample labelled by a rule_tasks entry's SMARTS patterns."""

from chemlm.explain.ground_truth import SmartsRule, write_rule_task
from chemlm.logs import step_log

with step_log(snakemake):
    rule = snakemake.params.rule
    write_rule_task(snakemake.input[0], SmartsRule(tuple(rule["present"]), tuple(rule["absent"])), rule["molecules"], rule["seed"],
                    snakemake.output[0])
