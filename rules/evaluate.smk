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
        seed=model_seed,
        bootstrap_samples=STUDY.bootstrap_samples,
    script:
        "../scripts/evaluate.py"


rule summarize:
    input:
        metrics_files(),
    output:
        summary=layout.SUMMARY,
        per_instance=layout.PER_INSTANCE,
    log:
        layout.log("summarize"),
    benchmark:
        layout.benchmark("summarize")
    conda:
        "../envs/plotting.yaml"
    script:
        "../scripts/summarize.py"


# Every pair of models over the split instances (chemlm.comparison), one job for the whole study: its figures are
# small and the ranks across tasks need every task.
rule compare:
    input:
        layout.PER_INSTANCE,
    output:
        table=layout.COMPARISON,
        figures=[
            report(
                path,
                caption="../report/comparison.rst",
                category="Comparison",
                subcategory=task,
                labels={"task": task, "split": split},
            )
            for (task, split), path in layout.comparison_figures(STUDY).items()
        ],
        ranks=report(
            layout.RANKS,
            caption="../report/ranks.rst",
            category="Comparison",
            labels={"figure": "ranks across tasks"},
        ),
    log:
        layout.log("compare"),
    benchmark:
        layout.benchmark("compare")
    conda:
        "../envs/plotting.yaml"
    params:
        tasks={task: task_params(spec) for task, spec in STUDY.tasks.items()},
        splits=list(STUDY.splits),
        settings=STUDY.compare.to_dict(),
        metric=STUDY.report.metric,
        # the (task, split) of each of output.figures, in their order
        figures=[list(key) for key in layout.comparison_figures(STUDY)],
    script:
        "../scripts/compare.py"


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
