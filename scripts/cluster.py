"""Adapter: Butina clusters of a task's molecules by ECFP4, the groups of the cluster_cv split."""

from chemlm.clusters import write_clusters
from chemlm.logs import step_log

with step_log(snakemake):
    write_clusters(snakemake.input.molecules, snakemake.input.fingerprints, snakemake.output[0])
