rule evaluate:
    input:
        model_predictions,
    output:
        "results/{task}/metrics/{model}/{split}/seed{seed}.json",
    log:
        "logs/evaluate/{task}/{model}/{split}/seed{seed}.log",
    benchmark:
        "benchmarks/evaluate/{task}/{model}/{split}/seed{seed}.tsv"
    conda:
        "../envs/plotting.yaml"
    params:
        task=task_entry,
        bootstrap_samples=config["evaluate"]["bootstrap_samples"],
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
    benchmark:
        "benchmarks/summarize.tsv"
    conda:
        "../envs/plotting.yaml"
    script:
        "../scripts/summarize.py"
