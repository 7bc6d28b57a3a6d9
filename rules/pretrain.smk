# Pre-training on a SMILES corpus (MLM or MTR); a checkpoint with source `pretrained:<name>` fine-tunes the result.
# Its helper functions are in common.smk. Its jobs come first when cores are short (`priority`): the fine-tuning of
# every pre-trained checkpoint waits for them.


rule pretrain_corpus:
    input:
        unpack(pretrain_corpus_inputs),
    output:
        smiles=layout.CORPUS_SMILES,
        qc=layout.CORPUS_QC,
    log:
        layout.log("pretrain_corpus"),
    benchmark:
        layout.benchmark("pretrain_corpus")
    priority: 10
    conda:
        "../envs/chemistry.yaml"
    threads: 4
    params:
        # the corpus settings only: changing a model's training settings does not rebuild the corpus
        corpus=STUDY.corpus.to_dict() if STUDY.corpus else None,
        rdkit_time_limit=STUDY.rdkit_time_limit,
    script:
        "../scripts/pretrain_corpus.py"


rule pretrain_descriptors:
    input:
        smiles=layout.CORPUS_SMILES,
        names=MTR_DESCRIPTORS,
    output:
        targets=layout.CORPUS_DESCRIPTORS,
        qc=layout.CORPUS_DESCRIPTORS_QC,
    log:
        layout.log("pretrain_descriptors"),
    benchmark:
        layout.benchmark("pretrain_descriptors")
    priority: 10
    conda:
        "../envs/chemistry.yaml"
    threads: 16
    params:
        rdkit_time_limit=STUDY.rdkit_time_limit,
    script:
        "../scripts/pretrain_descriptors.py"


rule pretrain:
    input:
        unpack(pretrain_inputs),
    output:
        model=directory(layout.pretrain_file("model")),
        history=layout.pretrain_file("history.csv"),
        run=layout.pretrain_file("run.json"),
    log:
        layout.log("pretrain"),
    benchmark:
        layout.benchmark("pretrain")
    priority: 10
    conda:
        "../envs/training.yaml"
    threads: 4
    resources:
        gpu=1,
    params:
        spec=pretrain_spec,
        seed=STUDY.corpus.seed if STUDY.corpus else None,
        # not an output, so Snakemake keeps it when a job is killed: the rerun resumes from it
        state_dir=layout.pretrain_file("resume-state"),
    script:
        "../scripts/pretrain.py"
