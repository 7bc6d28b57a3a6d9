# One job per model: both stages' embeddings (the zero-shot one costs a second of a job that pays its imports anyway).
rule embed:
    input:
        unpack(embed_inputs),
    output:
        zeroshot=layout.embeddings(stage="zeroshot"),
        finetuned=layout.embeddings(stage="finetuned"),
    log:
        layout.log("embed"),
    benchmark:
        layout.benchmark("embed")
    conda:
        "../envs/training.yaml"
    threads: 4
    resources:
        gpu=1,
    params:
        task=task_of,
        checkpoint=checkpoint_of,
        seed=model_seed,
        pooling=STUDY.pooling,
        batch_size=STUDY.embed_batch_size,
        max_length=lambda wildcards: finetune_params(wildcards)["max_length"],
    script:
        "../scripts/embed.py"


# One job per projection method: adding a method computes it alone, removing one drops it from the report.
rule project:
    input:
        unpack(projection_inputs),
    output:
        table=layout.projection("csv"),
        figure=report(
            layout.projection("png"),
            caption="../report/projections.rst",
            category="Embeddings",
            subcategory="{task}",
            labels={
                "model": "{checkpoint}",
                "split": "{split}",
                "split instance": "{instance}",
                "projection": "{method}",
            },
        ),
    log:
        layout.log("project"),
    benchmark:
        layout.benchmark("project")
    conda:
        "../envs/plotting.yaml"
    params:
        task=task_of,
        seed=model_seed,
    script:
        "../scripts/project.py"


rule separation:
    input:
        unpack(separation_inputs),
    output:
        layout.separation(),
    log:
        layout.log("separation"),
    benchmark:
        layout.benchmark("separation")
    conda:
        "../envs/plotting.yaml"
    params:
        task=task_of,
        seed=model_seed,
        probe_folds=STUDY.probe_folds,
    script:
        "../scripts/separation.py"
