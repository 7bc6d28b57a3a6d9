rule evaluate:
    input:
        finetune_dir("predictions.csv"),
    output:
        "results/{task}/metrics/{checkpoint}/{split}/seed{seed}.json",
    params:
        task=task_entry,
        bootstrap_samples=config["evaluate"]["bootstrap_samples"],
    log:
        "logs/evaluate/{task}/{checkpoint}/{split}/seed{seed}.log",
    conda:
        "../envs/plotting.yaml"
    script:
        "../scripts/evaluate.py"


rule summarize:
    input:
        metrics_files(),
    output:
        summary="results/summary.csv",
        per_seed="results/metrics.csv",
    log:
        "logs/summarize.log",
    conda:
        "../envs/plotting.yaml"
    script:
        "../scripts/summarize.py"
