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


# chemprop's learned molecule vectors (the aggregation's output) at initialisation and trained, as `embed` writes a
# checkpoint's: projected and scored for separation by the same rules.
rule embed_chemprop:
    input:
        unpack(fold_inputs),
        model=layout.baseline_file("model", baseline="chemprop"),
    output:
        zeroshot=layout.embeddings(checkpoint="chemprop", stage="zeroshot"),
        finetuned=layout.embeddings(checkpoint="chemprop", stage="finetuned"),
    log:
        layout.log("embed_chemprop"),
    benchmark:
        layout.benchmark("embed_chemprop")
    conda:
        "../envs/chemprop.yaml"
    threads: 4
    params:
        seed=model_seed,
    script:
        "../scripts/embed_chemprop.py"


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
    wildcard_constraints:
        checkpoint=EMBEDDED_MODEL,
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
    wildcard_constraints:
        checkpoint=EMBEDDED_MODEL,
    conda:
        "../envs/plotting.yaml"
    params:
        task=task_of,
        seed=model_seed,
        probe_folds=STUDY.probe_folds,
    script:
        "../scripts/separation.py"
