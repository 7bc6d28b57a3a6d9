"""Adapter: how well one model's test-set embeddings separate the labels, before and after fine-tuning."""

from chemlm.logs import step_log
from chemlm.projection import write_separation
from chemlm.tasks import TaskSpec

with step_log(snakemake):
    wildcards = snakemake.wildcards
    write_separation(
        zeroshot_npz=snakemake.input.zeroshot,
        finetuned_npz=snakemake.input.finetuned,
        molecules_csv=snakemake.input.molecules,
        task=TaskSpec.from_config(wildcards.task, snakemake.params.task),
        probe_folds=snakemake.params.probe_folds,
        seed=snakemake.params.seed,
        separation_json=snakemake.output[0],
        title=f"{wildcards.task} / {wildcards.checkpoint} / {wildcards.split} / {wildcards.instance}",
    )
