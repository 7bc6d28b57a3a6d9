"""Adapter: assign each molecule of a task to train, valid or test for one split method and split instance."""

from chemlm.folds import SplitInstance
from chemlm.io import read_csv, read_json, write_csv, write_json
from chemlm.logs import step_log
from chemlm.splits import assign_folds, read_clusters, read_predefined_folds, split_summary
from chemlm.tasks import TaskSpec

with step_log(snakemake):
    task = TaskSpec.from_config(snakemake.wildcards.task, snakemake.params.task)
    molecules = read_csv(snakemake.input.molecules, dtype={"mol_id": str})
    instance = SplitInstance(**snakemake.params.instance)
    clusters = read_clusters(snakemake.input.clusters, molecules) if "clusters" in snakemake.input.keys() else None
    predefined = read_predefined_folds(snakemake.input.predefined, molecules) if "predefined" in snakemake.input.keys() else None
    assignment = assign_folds(molecules, task, snakemake.wildcards.split, tuple(snakemake.params.fractions), instance, clusters, predefined)
    summary = split_summary(molecules, assignment, task, instance, clusters)
    if predefined is not None:
        summary["predefined"] = read_json(snakemake.input.predefined_found)
    write_json(summary, snakemake.output.summary)
    write_csv(assignment, snakemake.output.assignment)
