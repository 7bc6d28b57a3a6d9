rule download_dataset:
    output:
        layout.download(),
    log:
        layout.log("download_dataset"),
    benchmark:
        layout.benchmark("download_dataset")
    conda:
        "../envs/chemistry.yaml"
    params:
        task=task_of,
    script:
        "../scripts/download_dataset.py"


rule ingest:
    input:
        task_source,
    output:
        layout.data_file("table.csv"),
    log:
        layout.log("ingest"),
    benchmark:
        layout.benchmark("ingest")
    conda:
        "../envs/chemistry.yaml"
    threads: 4
    params:
        task=task_of,
        rdkit_time_limit=STUDY.rdkit_time_limit,
    script:
        "../scripts/ingest.py"


rule featurize:
    input:
        layout.data_file("table.csv"),
    output:
        molecules=layout.data_file("molecules.csv"),
        qc=layout.data_file("qc.json"),
        invalid=layout.data_file("invalid.csv"),
        duplicates=layout.data_file("duplicates.csv"),
    log:
        layout.log("featurize"),
    benchmark:
        layout.benchmark("featurize")
    conda:
        "../envs/chemistry.yaml"
    threads: 4
    params:
        task=task_of,
        isomeric_smiles=STUDY.isomeric_smiles,
        rdkit_time_limit=STUDY.rdkit_time_limit,
    script:
        "../scripts/featurize.py"


rule split:
    input:
        unpack(split_inputs),
    output:
        assignment=layout.split_file("csv"),
        summary=layout.split_file("json"),
    log:
        layout.log("split"),
    benchmark:
        layout.benchmark("split")
    conda:
        "../envs/chemistry.yaml"
    params:
        task=task_of,
        fractions=list(STUDY.fractions),
        instance=split_instance,
    script:
        "../scripts/split.py"


rule augment:
    input:
        layout.data_file("molecules.csv"),
    output:
        layout.data_file("variants.csv"),
    log:
        layout.log("augment"),
    benchmark:
        layout.benchmark("augment")
    conda:
        "../envs/chemistry.yaml"
    threads: 4
    params:
        variants=lambda wildcards: STUDY.smiles_variants(wildcards.task),
        isomeric_smiles=STUDY.isomeric_smiles,
        rdkit_time_limit=STUDY.rdkit_time_limit,
    script:
        "../scripts/augment.py"


# Butina clusters of ECFP4 (1,024 bits, Tanimoto distance 0.65), the groups of the cluster_cv split: once per task.
rule cluster:
    input:
        molecules=layout.data_file("molecules.csv"),
        fingerprints=layout.data_file("ecfp4.npz"),
    output:
        layout.data_file("clusters.csv"),
    log:
        layout.log("cluster"),
    benchmark:
        layout.benchmark("cluster")
    conda:
        "../envs/plotting.yaml"
    script:
        "../scripts/cluster.py"


# The folds published with the data (tasks.<name>.folds) matched to the molecules by canonical SMILES: once per task.
rule predefined_folds:
    input:
        unpack(predefined_fold_inputs),
    output:
        assignment=layout.data_file("predefined_folds.csv"),
        found=layout.data_file("predefined_folds.json"),
    log:
        layout.log("predefined_folds"),
    benchmark:
        layout.benchmark("predefined_folds")
    conda:
        "../envs/chemistry.yaml"
    threads: 2
    params:
        task=task_of,
        folds=lambda wildcards: STUDY.config["tasks"][wildcards.task]["folds"],
        isomeric_smiles=STUDY.isomeric_smiles,
        rdkit_time_limit=STUDY.rdkit_time_limit,
    script:
        "../scripts/predefined_folds.py"
