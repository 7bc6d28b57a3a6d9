# Hyper-parameter search (config `search`): every trial is a job, known when the DAG is built (chemlm.search); the
# best trial on the validation fold gives the settings every seed's fine-tuning uses. Helpers are in common.smk.


rule search_trial:
    input:
        unpack(fold_inputs),
        unpack(variant_inputs),
        checkpoint_files=checkpoint_files,
    output:
        layout.trial_file("json"),
    log:
        layout.log("search_trial"),
    benchmark:
        layout.benchmark("search_trial")
    conda:
        "../envs/training.yaml"
    threads: 4
    resources:
        gpu=1,
    params:
        task=task_of,
        checkpoint=checkpoint_of,
        hyperparameters=trial_params,
        state_dir=layout.trial_file("resume-state"),
    script:
        "../scripts/search_trial.py"


rule search_select:
    input:
        search_trial_results,
    output:
        layout.search_file("best.json"),
    log:
        layout.log("search_select"),
    benchmark:
        layout.benchmark("search_select")
    conda:
        "../envs/plotting.yaml"
    params:
        maximise=lambda wildcards: STUDY.task_type(wildcards.task).value != "regression",
    script:
        "../scripts/search_select.py"


rule report_search:
    input:
        lambda wildcards: [
            layout.search_file("best.json", checkpoint=checkpoint)
            for checkpoint in STUDY.checkpoints
            if STUDY.searched(wildcards.task, checkpoint)
        ],
    output:
        report(
            layout.report_figure(figure="search"),
            caption="../report/search.rst",
            category="Search",
            subcategory="{task}",
            labels={"task": "{task}", "split": "{split}"},
        ),
    log:
        layout.log("report_search"),
    benchmark:
        layout.benchmark("report_search")
    conda:
        "../envs/plotting.yaml"
    params:
        task=task_of,
        checkpoints=lambda wildcards: [
            checkpoint
            for checkpoint in STUDY.checkpoints
            if STUDY.searched(wildcards.task, checkpoint)
        ],
    script:
        "../scripts/report_search.py"
