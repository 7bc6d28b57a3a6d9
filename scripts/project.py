"""Adapter: one projection method's 2-D coordinates and figure of one model's embeddings before and after fine-tuning."""

from chemlm.logs import step_log
from chemlm.projection import write_projection
from chemlm.tasks import TaskSpec

with step_log(snakemake):
    wildcards = snakemake.wildcards
    write_projection(
        zeroshot_npz=snakemake.input.zeroshot,
        finetuned_npz=snakemake.input.finetuned,
        molecules_csv=snakemake.input.molecules,
        task=TaskSpec.from_config(wildcards.task, snakemake.params.task),
        method=wildcards.method,
        seed=snakemake.params.seed,
        table_csv=snakemake.output.table,
        figure_png=snakemake.output.figure,
        title=f"{wildcards.task} / {wildcards.checkpoint} / {wildcards.split} / {wildcards.instance}",
        predictions_csv=snakemake.input.get("predictions"),
        metrics_json=snakemake.input.get("metrics"),
    )
