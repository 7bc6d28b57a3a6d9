rule download_dataset:
    output:
        "resources/datasets/{task}/{filename}",
    log:
        "logs/download_dataset/{task}/{filename}.log",
    benchmark:
        "benchmarks/download_dataset/{task}/{filename}.tsv"
    conda:
        "../envs/chemistry.yaml"
    params:
        url=lambda wildcards: task_entry(wildcards)["source"],
        sha256=lambda wildcards: task_entry(wildcards)["sha256"],
    script:
        "../scripts/download_dataset.py"


rule ingest:
    input:
        task_table_source,
    output:
        "results/{task}/data/table.csv",
    log:
        "logs/ingest/{task}.log",
    benchmark:
        "benchmarks/ingest/{task}.tsv"
    conda:
        "../envs/chemistry.yaml"
    params:
        task=task_entry,
    script:
        "../scripts/ingest.py"


rule featurize:
    input:
        "results/{task}/data/table.csv",
    output:
        molecules="results/{task}/data/molecules.csv",
        qc="results/{task}/data/qc.json",
        invalid="results/{task}/data/invalid.csv",
        duplicates="results/{task}/data/duplicates.csv",
    log:
        "logs/featurize/{task}.log",
    benchmark:
        "benchmarks/featurize/{task}.tsv"
    conda:
        "../envs/chemistry.yaml"
    params:
        task=task_entry,
        isomeric_smiles=config["featurize"]["isomeric_smiles"],
    script:
        "../scripts/featurize.py"


rule split:
    input:
        "results/{task}/data/molecules.csv",
    output:
        assignment="results/{task}/splits/{split}/seed{seed}.csv",
        summary="results/{task}/splits/{split}/seed{seed}.json",
    log:
        "logs/split/{task}/{split}/seed{seed}.log",
    benchmark:
        "benchmarks/split/{task}/{split}/seed{seed}.tsv"
    conda:
        "../envs/chemistry.yaml"
    params:
        task=task_entry,
        fractions=config["split"]["fractions"],
    script:
        "../scripts/split.py"
