"""Adapter: the pre-training corpus, canonical and deduplicated, every downstream task's molecules removed, with a
holdout."""

from chemlm.config import CorpusSettings
from chemlm.corpus import build_corpus
from chemlm.io import write_csv, write_json
from chemlm.isolation import Isolation
from chemlm.logs import step_log

with step_log(snakemake):
    corpus = build_corpus(
        snakemake.input.corpus,
        snakemake.input.task_molecules,
        CorpusSettings(**snakemake.params.corpus),
        isolation=Isolation(snakemake.threads, snakemake.params.rdkit_time_limit),
    )
    write_json(corpus.qc, snakemake.output.qc)
    write_csv(corpus.table, snakemake.output.smiles)
