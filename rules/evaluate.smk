rule evaluate:
    input:
        model_predictions,
    output:
        layout.metrics(),
    log:
        layout.log("evaluate"),
    benchmark:
        layout.benchmark("evaluate")
    conda:
        "../envs/plotting.yaml"
    params:
        task=task_of,
        bootstrap_samples=STUDY.bootstrap_samples,
    script:
        "../scripts/evaluate.py"


rule summarize:
    input:
        metrics_files(),
    output:
        summary=layout.SUMMARY,
        per_seed=layout.PER_SEED,
    log:
        layout.log("summarize"),
    benchmark:
        layout.benchmark("summarize")
    conda:
        "../envs/plotting.yaml"
    script:
        "../scripts/summarize.py"


rule test_similarity:
    input:
        unpack(fold_inputs),
        fingerprints=layout.data_file("ecfp4.npz"),
    output:
        layout.test_similarity(),
    log:
        layout.log("test_similarity"),
    benchmark:
        layout.benchmark("test_similarity")
    conda:
        "../envs/plotting.yaml"
    script:
        "../scripts/test_similarity.py"
