"""Adapter: the pre-training corpus, canonical and deduplicated, downstream test molecules removed, with a holdout."""

from chemlm.corpus import CorpusSettings, build_corpus
from chemlm.io import write_csv, write_json
from chemlm.logs import step_log

with step_log(snakemake.log[0]):
    corpus = build_corpus(
        snakemake.input.corpus,
        list(zip(snakemake.input.test_molecules, snakemake.input.test_splits)),
        CorpusSettings.from_config(snakemake.params.pretrain, snakemake.params.isomeric_smiles),
        workers=snakemake.threads,
    )
    write_json(corpus.qc, snakemake.output.qc)
    write_csv(corpus.table, snakemake.output.smiles)
