"""Adapter: RDKit featurization of a task's table into molecules, QC counts, invalid rows and duplicates."""

from chemlm.featurize import featurize
from chemlm.io import read_csv, write_csv, write_json
from chemlm.isolation import Isolation
from chemlm.logs import step_log
from chemlm.tasks import TaskSpec

with step_log(snakemake):
    task = TaskSpec.from_config(snakemake.wildcards.task, snakemake.params.task)
    table = read_csv(snakemake.input[0], dtype={"mol_id": str, "smiles": str}, keep_default_na=False, na_values=[""])
    result = featurize(table, task, isomeric=snakemake.params.isomeric_smiles, isolation=Isolation(snakemake.threads, snakemake.params.rdkit_time_limit))
    write_csv(result.invalid, snakemake.output.invalid)
    write_csv(result.duplicates, snakemake.output.duplicates)
    write_json(result.qc, snakemake.output.qc)
    write_csv(result.molecules, snakemake.output.molecules)
