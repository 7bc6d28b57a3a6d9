# Fine-tune chemical language models on molecular property tasks and report how well they do.
# Run: snakemake --profile profiles/default [--configfile config/demo.yaml]


# The published study, unless --configfile names another config (which then replaces it, not merges in).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/finetune.smk"
include: "rules/evaluate.smk"


rule all:
    input:
        all_targets(),
    default_target: True
