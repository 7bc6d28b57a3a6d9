rule download_dataset:
    output:
        "resources/datasets/{task}/{filename}",
    params:
        url=lambda wildcards: task_entry(wildcards)["source"],
        sha256=lambda wildcards: task_entry(wildcards)["sha256"],
    log:
        "logs/download_dataset/{task}/{filename}.log",
    conda:
        "../envs/chemistry.yaml"
    script:
        "../scripts/download_dataset.py"


rule ingest:
    input:
        task_table_source,
    output:
        "results/{task}/data/table.csv",
    params:
        task=task_entry,
    log:
        "logs/ingest/{task}.log",
    conda:
        "../envs/chemistry.yaml"
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
    params:
        task=task_entry,
        isomeric_smiles=config["featurize"]["isomeric_smiles"],
    log:
        "logs/featurize/{task}.log",
    conda:
        "../envs/chemistry.yaml"
    script:
        "../scripts/featurize.py"


rule split:
    input:
        "results/{task}/data/molecules.csv",
    output:
        assignment="results/{task}/splits/{split}/seed{seed}.csv",
        summary="results/{task}/splits/{split}/seed{seed}.json",
    params:
        task=task_entry,
        fractions=config["split"]["fractions"],
    log:
        "logs/split/{task}/{split}/seed{seed}.log",
    conda:
        "../envs/chemistry.yaml"
    script:
        "../scripts/split.py"
