# Fine-tune chemical language models on molecular property tasks and report how well they do.
# Run: snakemake --profile profiles/default [--configfile config/demo.yaml]


# The published study, unless --configfile names another config (which then replaces it, not merges in).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


# The front page of `snakemake --report report.html`.
report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/pretrain.smk"
include: "rules/search.smk"
include: "rules/finetune.smk"
include: "rules/evaluate.smk"
include: "rules/embeddings.smk"
include: "rules/baselines.smk"
include: "rules/predict.smk"
include: "rules/explain.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        all_targets(),
