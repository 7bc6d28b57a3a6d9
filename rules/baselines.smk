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


# A baseline's models stored for scoring libraries (config `predict`): trained again as the baseline rule trained
# them, once per split instance, so that every shard of a library is scored by the same models.
rule baseline_model:
    input:
        unpack(fold_inputs),
        fingerprints=layout.data_file("ecfp4.npz"),
        settings=layout.baseline_file("settings.json"),
    output:
        layout.baseline_file("model.skops"),
    log:
        layout.log("baseline_model"),
    benchmark:
        layout.benchmark("baseline_model")
    conda:
        "../envs/plotting.yaml"
    threads: 4
    params:
        task=task_of,
        seed=model_seed,
    script:
        "../scripts/baseline_model.py"
