# The study report, built last: results/report/index.html (self-contained) and summary.md. Its rules declare every
# file the report reads as input (chemlm.layout.report_inputs), and the report reads no other. Its figures are
# wrapped in report() as well, for `snakemake --report report.html`.


rule report_figures:
    input:
        unpack(report_figure_inputs),
    output:
        curves=report(
            layout.report_figure(figure="test_curves"),
            caption="../report/test_curves.rst",
            category="Test-set curves",
            subcategory="{task}",
            labels={"task": "{task}", "split": "{split}"},
        ),
        learning=report(
            layout.report_figure(figure="learning_curves"),
            caption="../report/learning_curves.rst",
            category="Learning curves",
            subcategory="{task}",
            labels={"task": "{task}", "split": "{split}"},
        ),
    log:
        layout.log("report_figures"),
    benchmark:
        layout.benchmark("report_figures")
    conda:
        "../envs/plotting.yaml"
    params:
        task=task_of,
        checkpoints=list(STUDY.checkpoints),
        baselines=list(STUDY.baselines),
        instances=instance_names,
    script:
        "../scripts/report_figures.py"


rule report_calibration:
    input:
        unpack(report_calibration_inputs),
    output:
        figure=report(
            layout.report_figure(figure="calibration"),
            caption="../report/calibration.rst",
            category="Calibration",
            subcategory="{task}",
            labels={"task": "{task}", "split": "{split}"},
        ),
        table=layout.report_figure(figure="calibration", extension="csv"),
    log:
        layout.log("report_calibration"),
    benchmark:
        layout.benchmark("report_calibration")
    conda:
        "../envs/plotting.yaml"
    params:
        task=task_of,
        checkpoints=list(STUDY.checkpoints),
        baselines=list(STUDY.baselines),
        instances=instance_names,
        method=STUDY.calibration,
    script:
        "../scripts/report_calibration.py"


rule report_uncertainty:
    input:
        unpack(report_uncertainty_inputs),
    output:
        figure=report(
            layout.report_figure(figure="uncertainty"),
            caption="../report/uncertainty.rst",
            category="Uncertainty",
            subcategory="{task}",
            labels={"task": "{task}", "split": "{split}"},
        ),
        table=layout.report_figure(figure="uncertainty", extension="csv"),
    log:
        layout.log("report_uncertainty"),
    benchmark:
        layout.benchmark("report_uncertainty")
    conda:
        "../envs/plotting.yaml"
    params:
        task=task_of,
        checkpoints=list(STUDY.checkpoints),
        baselines=list(STUDY.baselines),
        instances=instance_names,
        method=STUDY.calibration,
    script:
        "../scripts/report_uncertainty.py"


rule report:
    input:
        unpack(report_inputs),
    output:
        html=layout.REPORT_HTML,
        markdown=layout.REPORT_MARKDOWN,
    log:
        layout.log("report"),
    benchmark:
        layout.benchmark("report")
    conda:
        "../envs/plotting.yaml"
    params:
        config=STUDY.config,
        repository=workflow.basedir,
    script:
        "../scripts/report.py"
