rule finetune:
    input:
        unpack(finetune_inputs),
    output:
        model=directory(layout.finetune_file("model")),
        history=layout.finetune_file("history.csv"),
        predictions=layout.finetune_file("predictions.csv"),
        run=layout.finetune_file("run.json"),
        calibration=layout.finetune_file("calibration.json"),
    log:
        layout.log("finetune"),
    benchmark:
        layout.benchmark("finetune")
    conda:
        "../envs/training.yaml"
    threads: 4
    resources:
        gpu=1,
    params:
        task=task_of,
        checkpoint=checkpoint_of,
        hyperparameters=finetune_params,
        seed=model_seed,
        isomeric_smiles=STUDY.isomeric_smiles,
        random_smiles=lambda wildcards: STUDY.test_time_random_smiles(wildcards.task),
        # not an output, so Snakemake keeps it when a job is killed: the rerun resumes from it
        state_dir=layout.finetune_file("resume-state"),
    script:
        "../scripts/finetune.py"
