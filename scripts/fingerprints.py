"""Adapter: ECFP4 fingerprints of a task's molecules for the fingerprint baselines."""

from chemlm.fingerprints import write_ecfp4
from chemlm.isolation import Isolation
from chemlm.logs import step_log

with step_log(snakemake):
    write_ecfp4(snakemake.input[0], snakemake.output[0], isolation=Isolation(snakemake.threads, snakemake.params.rdkit_time_limit))
