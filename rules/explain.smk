# Atom-level explanations of one task's split (chemlm.explain): the test molecules worth a look, explained by every
# fine-tuned transformer and fingerprint baseline of the first split instance, drawn side by side for the report.
rule explain:
    input:
        unpack(explain_inputs),
    output:
        selected=layout.explain_file("selected.csv"),
        atoms=layout.explain_file("atoms.csv"),
        explained=layout.explain_file("explanations.csv"),
        drawing=layout.explain_file("explanations.png"),
    log:
        layout.log("explain"),
    benchmark:
        layout.benchmark("explain")
    conda:
        "../envs/explain.yaml"
    params:
        task=task_of,
        settings=STUDY.config.get("explain"),
        libraries=library_top_predictions,
    script:
        "../scripts/explain.py"


# A task whose answer is known (chemlm.explain.ground_truth): a corpus sample labelled by SMARTS patterns.
rule rule_task:
    input:
        lambda wildcards: STUDY.rule_tasks[wildcards.name]["corpus"],
    output:
        layout.rule_task(),
    log:
        layout.log("rule_task"),
    benchmark:
        layout.benchmark("rule_task")
    conda:
        "../envs/chemistry.yaml"
    params:
        rule=lambda wildcards: STUDY.rule_tasks[wildcards.name],
    script:
        "../scripts/rule_task.py"


# Attributions against the known answer of a rule task: each model's mean atom AUROC beside random attributions.
rule check_attributions:
    input:
        unpack(check_attribution_inputs),
    output:
        per_molecule=layout.explain_file("atom_auroc.csv"),
        summary=layout.explain_file("attribution_check.csv"),
    log:
        layout.log("check_attributions"),
    benchmark:
        layout.benchmark("check_attributions")
    wildcard_constraints:
        task=one_of(STUDY.rule_tasks),
    conda:
        "../envs/explain.yaml"
    params:
        task=task_of,
        rule=lambda wildcards: STUDY.rule_tasks[wildcards.task],
        settings=STUDY.config.get("explain"),
        seed=STUDY.seeds[0],
    script:
        "../scripts/check_attributions.py"
