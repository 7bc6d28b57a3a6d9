# The study report, built last: results/report/index.html (self-contained) and summary.md. Its figures are
# wrapped in report() as well, for `snakemake --report report.html`.


rule report_figures:
    input:
        summary="results/summary.csv",
        per_seed="results/metrics.csv",
    output:
        curves=report(
            "results/report/figures/{task}/{split}/test_curves.png",
            caption="../report/test_curves.rst",
            category="Test-set curves",
            subcategory="{task}",
            labels={"task": "{task}", "split": "{split}"},
        ),
        learning=report(
            "results/report/figures/{task}/{split}/learning_curves.png",
            caption="../report/learning_curves.rst",
            category="Learning curves",
            subcategory="{task}",
            labels={"task": "{task}", "split": "{split}"},
        ),
    log:
        "logs/report_figures/{task}/{split}.log",
    benchmark:
        "benchmarks/report_figures/{task}/{split}.tsv"
    conda:
        "../envs/plotting.yaml"
    params:
        config=config,
    script:
        "../scripts/report_figures.py"


rule report:
    input:
        unpack(report_inputs),
    output:
        html="results/report/index.html",
        markdown="results/report/summary.md",
    log:
        "logs/report.log",
    benchmark:
        "benchmarks/report.tsv"
    conda:
        "../envs/plotting.yaml"
    params:
        config=config,
        benchmarks="benchmarks",
        repository=workflow.basedir,
    script:
        "../scripts/report.py"
