"""Adapter: a library shard's rows canonicalised (RDKit, in isolated workers), fingerprinted and, for test-time
augmentation, given their seeded random SMILES, chunk by chunk."""

from chemlm.io import write_json
from chemlm.isolation import Isolation
from chemlm.library import write_library
from chemlm.logs import step_log

with step_log(snakemake):
    library = snakemake.params.library
    counts = write_library(
        snakemake.input[0], library["smiles_column"], library.get("id_column"), snakemake.params.isomeric_smiles,
        snakemake.output.molecules, snakemake.output.fingerprints, isolation=Isolation(snakemake.threads, snakemake.params.rdkit_time_limit),
        random_smiles=snakemake.params.random_smiles, rows=tuple(snakemake.params.rows),
    )
    write_json(counts, snakemake.output.qc)
