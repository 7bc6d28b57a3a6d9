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
    script:
        "../scripts/explain.py"
