"""Adapter: ECFP4 counts and RDKit's 2-D descriptors of a library shard's rows, for scoring it with LightGBM."""

from chemlm.descriptors import write_library_features
from chemlm.isolation import Isolation
from chemlm.logs import step_log

with step_log(snakemake):
    write_library_features(snakemake.input.molecules, snakemake.input.names, snakemake.output[0],
                           isolation=Isolation(snakemake.threads, snakemake.params.rdkit_time_limit))
