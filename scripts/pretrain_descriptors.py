"""Adapter: RDKit descriptor targets of the pre-training corpus for MTR, normalised with the training part's mean and sd."""

from chemlm.descriptors import corpus_descriptor_targets, write_targets
from chemlm.io import write_json
from chemlm.isolation import Isolation
from chemlm.logs import step_log

with step_log(snakemake):
    targets = corpus_descriptor_targets(snakemake.input.smiles, snakemake.input.names, isolation=Isolation(snakemake.threads, snakemake.params.rdkit_time_limit))
    write_json(targets.qc, snakemake.output.qc)
    write_targets(targets, snakemake.output.targets)
