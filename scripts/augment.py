"""Adapter: each molecule of a task as several SMILES, its canonical SMILES first (SMILES enumeration)."""

from chemlm.augment import write_variants
from chemlm.isolation import Isolation
from chemlm.logs import step_log

with step_log(snakemake):
    write_variants(snakemake.input[0], snakemake.params.variants, snakemake.params.isomeric_smiles, snakemake.output[0],
                   isolation=Isolation(snakemake.threads, snakemake.params.rdkit_time_limit))
