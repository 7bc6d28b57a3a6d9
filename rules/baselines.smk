rule fingerprints:
    input:
        layout.data_file("molecules.csv"),
    output:
        layout.data_file("ecfp4.npz"),
    log:
        layout.log("fingerprints"),
    benchmark:
        layout.benchmark("fingerprints")
    conda:
        "../envs/chemistry.yaml"
    threads: 4
    params:
        rdkit_time_limit=STUDY.rdkit_time_limit,
    script:
        "../scripts/fingerprints.py"


rule baseline:
    input:
        unpack(fold_inputs),
        fingerprints=layout.data_file("ecfp4.npz"),
    output:
        predictions=layout.baseline_predictions(),
        calibration=layout.baseline_file("calibration.json"),
        settings=layout.baseline_file("settings.json"),
    log:
        layout.log("baseline"),
    benchmark:
        layout.benchmark("baseline")
    conda:
        "../envs/plotting.yaml"
    threads: 4
    params:
        task=task_of,
        seed=model_seed,
        trees=STUDY.baseline_trees,
        # (trials, Sobol seed) of the baselines' search on the validation fold, or none
        search=list(STUDY.baseline_search) if STUDY.baseline_search else None,
    script:
        "../scripts/baseline.py"
