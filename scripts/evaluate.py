"""Adapter: test-set metrics of one fine-tuned checkpoint or fingerprint baseline from its predictions."""

from chemlm.evaluate import write_metrics
from chemlm.logs import step_log
from chemlm.tasks import TaskSpec

with step_log(snakemake):
    write_metrics(
        predictions_csv=snakemake.input[0],
        out_json=snakemake.output[0],
        task=TaskSpec.from_config(snakemake.wildcards.task, snakemake.params.task),
        checkpoint=snakemake.wildcards.model,
        split=snakemake.wildcards.split,
        instance=snakemake.wildcards.instance,
        seed=snakemake.params.seed,
        bootstrap_samples=snakemake.params.bootstrap_samples,
    )
