rule fingerprints:
    input:
        "results/{task}/data/molecules.csv",
    output:
        "results/{task}/data/ecfp4.npz",
    log:
        "logs/fingerprints/{task}.log",
    benchmark:
        "benchmarks/fingerprints/{task}.tsv"
    conda:
        "../envs/chemistry.yaml"
    script:
        "../scripts/fingerprints.py"


rule baseline:
    input:
        molecules="results/{task}/data/molecules.csv",
        split="results/{task}/splits/{split}/seed{seed}.csv",
        fingerprints="results/{task}/data/ecfp4.npz",
    output:
        baseline_dir("predictions.csv"),
    log:
        "logs/baseline/{task}/{baseline}/{split}/seed{seed}.log",
    benchmark:
        "benchmarks/baseline/{task}/{baseline}/{split}/seed{seed}.tsv"
    conda:
        "../envs/plotting.yaml"
    threads: 4
    params:
        task=task_entry,
        trees=config["baseline_trees"],
    script:
        "../scripts/baseline.py"
