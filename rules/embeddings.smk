rule embed:
    input:
        unpack(embed_inputs),
    output:
        embeddings_dir("{stage}.npz"),
    log:
        "logs/embed/{task}/{checkpoint}/{split}/seed{seed}/{stage}.log",
    benchmark:
        "benchmarks/embed/{task}/{checkpoint}/{split}/seed{seed}/{stage}.tsv"
    conda:
        "../envs/training.yaml"
    threads: 4
    resources:
        gpu=1,
    params:
        task=task_entry,
        checkpoint=checkpoint_entry,
        pooling=config["embed"]["pooling"],
        batch_size=config["embed"]["batch_size"],
        max_length=lambda wildcards: finetune_params(wildcards)["max_length"],
    script:
        "../scripts/embed.py"


rule project:
    input:
        unpack(projection_inputs),
    output:
        tables=[projection_dir(f"{method}.csv") for method in PROJECTIONS],
        figures=[
            report(
                projection_dir(f"{method}.png"),
                caption="../report/projections.rst",
                category="Embeddings",
                subcategory="{task}",
                labels={
                    "model": "{checkpoint}",
                    "split": "{split}",
                    "seed": "{seed}",
                    "projection": method,
                },
            )
            for method in PROJECTIONS
        ],
        separation=projection_dir("separation.json"),
    log:
        "logs/project/{task}/{checkpoint}/{split}/seed{seed}.log",
    benchmark:
        "benchmarks/project/{task}/{checkpoint}/{split}/seed{seed}.tsv"
    conda:
        "../envs/plotting.yaml"
    params:
        task=task_entry,
        methods=PROJECTIONS,
        probe_folds=config["project"]["probe_folds"],
    script:
        "../scripts/project.py"
