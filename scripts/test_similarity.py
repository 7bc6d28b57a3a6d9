"""Adapter: every test molecule's highest ECFP4 Tanimoto similarity to its seed's training fold."""

from chemlm.logs import step_log
from chemlm.similarity import write_test_similarity

with step_log(snakemake):
    write_test_similarity(snakemake.input.molecules, snakemake.input.split, snakemake.input.fingerprints, snakemake.output[0])
