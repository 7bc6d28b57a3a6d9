"""Adapter: the top-ranked molecules of a scored library, drawn with RDKit into one PNG."""

from chemlm.depict import draw_top_predictions
from chemlm.logs import step_log

with step_log(snakemake):
    draw_top_predictions(snakemake.input[0], snakemake.params.top, snakemake.output[0],
                         title=f"{snakemake.wildcards.task} / {snakemake.wildcards.library} / {snakemake.wildcards.model}")
