rule finetune:
    input:
        unpack(
            lambda wildcards: {
                "molecules": "results/{task}/data/molecules.csv",
                "split": "results/{task}/splits/{split}/seed{seed}.csv",
                "checkpoint_files": checkpoint_files(wildcards),
            }
        ),
    output:
        model=directory(finetune_dir("model")),
        history=finetune_dir("history.csv"),
        predictions=finetune_dir("predictions.csv"),
        run=finetune_dir("run.json"),
    log:
        "logs/finetune/{task}/{checkpoint}/{split}/seed{seed}.log",
    benchmark:
        "benchmarks/finetune/{task}/{checkpoint}/{split}/seed{seed}.tsv"
    conda:
        "../envs/training.yaml"
    threads: 4
    resources:
        gpu=1,
    params:
        task=task_entry,
        checkpoint=checkpoint_entry,
        hyperparameters=finetune_params,
    script:
        "../scripts/finetune.py"
