"""Adapter: 2-D projections, figures and separation numbers of one model's embeddings before and after fine-tuning."""

from chemlm.logs import step_log
from chemlm.projection import write_projections
from chemlm.tasks import TaskSpec

with step_log(snakemake.log[0]):
    wildcards = snakemake.wildcards
    write_projections(
        zeroshot_npz=snakemake.input.zeroshot,
        finetuned_npz=snakemake.input.finetuned,
        molecules_csv=snakemake.input.molecules,
        task=TaskSpec.from_config(wildcards.task, snakemake.params.task),
        methods=snakemake.params.methods,
        probe_folds=snakemake.params.probe_folds,
        seed=int(wildcards.seed),
        tables=snakemake.output.tables,
        figures=snakemake.output.figures,
        separation_json=snakemake.output.separation,
        title=f"{wildcards.task} / {wildcards.checkpoint} / {wildcards.split} / seed {wildcards.seed}",
        predictions_csv=snakemake.input.get("predictions"),
        metrics_json=snakemake.input.get("metrics"),
    )
