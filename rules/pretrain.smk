# Pre-training on a SMILES corpus (MLM or MTR); a checkpoint with source `pretrained:<name>` fine-tunes the result.
# Its helper functions are in common.smk.


rule pretrain_corpus:
    input:
        unpack(pretrain_corpus_inputs),
    output:
        smiles="results/pretrain/corpus/smiles.csv",
        qc="results/pretrain/corpus/qc.json",
    log:
        "logs/pretrain/corpus.log",
    benchmark:
        "benchmarks/pretrain_corpus.tsv"
    conda:
        "../envs/chemistry.yaml"
    threads: 4
    params:
        # the corpus settings only: changing a model's training settings does not rebuild the corpus
        pretrain={key: value for key, value in PRETRAIN.items() if key != "models"},
        isomeric_smiles=config["featurize"]["isomeric_smiles"],
    script:
        "../scripts/pretrain_corpus.py"


rule pretrain_descriptors:
    input:
        smiles="results/pretrain/corpus/smiles.csv",
        names=MTR_DESCRIPTORS,
    output:
        targets="results/pretrain/corpus/descriptors.npz",
        qc="results/pretrain/corpus/descriptors.json",
    log:
        "logs/pretrain/descriptors.log",
    benchmark:
        "benchmarks/pretrain_descriptors.tsv"
    conda:
        "../envs/chemistry.yaml"
    threads: 16
    script:
        "../scripts/pretrain_descriptors.py"


rule pretrain:
    input:
        unpack(pretrain_inputs),
    output:
        model=directory("results/pretrain/{objective}-{size}/{pretrained}/model"),
        history="results/pretrain/{objective}-{size}/{pretrained}/history.csv",
        run="results/pretrain/{objective}-{size}/{pretrained}/run.json",
    log:
        "logs/pretrain/{objective}-{size}/{pretrained}.log",
    benchmark:
        "benchmarks/pretrain/{objective}-{size}/{pretrained}.tsv"
    wildcard_constraints:
        objective="mlm|mtr",
        size="chemberta2|small",
        pretrained="|".join(PRETRAIN_MODELS),
    conda:
        "../envs/training.yaml"
    threads: 4
    resources:
        gpu=1,
    params:
        entry=lambda wildcards: PRETRAIN_MODELS[wildcards.pretrained],
        seed=PRETRAIN.get("seed"),
    script:
        "../scripts/pretrain.py"
