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


# LightGBM's features: ECFP4 counts and the 199 RDKit descriptors ChemBERTa-2's MTR model regresses.
rule descriptors:
    input:
        molecules=layout.data_file("molecules.csv"),
        names=MTR_DESCRIPTORS,
    output:
        layout.baseline_features("lgbm"),
    log:
        layout.log("descriptors"),
    benchmark:
        layout.benchmark("descriptors")
    conda:
        "../envs/chemistry.yaml"
    threads: 4
    params:
        rdkit_time_limit=STUDY.rdkit_time_limit,
    script:
        "../scripts/descriptors.py"


rule baseline:
    input:
        unpack(fold_inputs),
        features=baseline_features,
    output:
        predictions=layout.baseline_predictions(),
        calibration=layout.baseline_file("calibration.json"),
        settings=layout.baseline_file("settings.json"),
    log:
        layout.log("baseline"),
    benchmark:
        layout.benchmark("baseline")
    wildcard_constraints:
        baseline=FEATURE_BASELINE,
    conda:
        "../envs/plotting.yaml"
    threads: 4
    params:
        task=task_of,
        seed=model_seed,
        trees=STUDY.baseline_trees,
        # (trials, Sobol seed) of the baseline's search on the validation fold, or none
        search=baseline_search,
    script:
        "../scripts/baseline.py"


# A baseline's models stored for scoring libraries (config `predict`): trained again as the baseline rule trained
# them, once per split instance, so that every shard of a library is scored by the same models.
rule baseline_model:
    input:
        unpack(fold_inputs),
        features=baseline_features,
        settings=layout.baseline_file("settings.json"),
    output:
        layout.baseline_file("model.skops"),
    log:
        layout.log("baseline_model"),
    benchmark:
        layout.benchmark("baseline_model")
    wildcard_constraints:
        baseline=FEATURE_BASELINE,
    conda:
        "../envs/plotting.yaml"
    threads: 4
    params:
        task=task_of,
        seed=model_seed,
    script:
        "../scripts/baseline_model.py"


# chemprop's D-MPNN (chemlm.models.mpnn), in its own env: it needs RDKit and torch together. Its model folder, kept
# for scoring libraries, is safetensors weights and a JSON description.
rule chemprop:
    input:
        unpack(fold_inputs),
    output:
        predictions=layout.baseline_predictions(baseline="chemprop"),
        calibration=layout.baseline_file("calibration.json", baseline="chemprop"),
        settings=layout.baseline_file("settings.json", baseline="chemprop"),
        history=layout.baseline_file("history.csv", baseline="chemprop"),
        model=directory(layout.baseline_file("model", baseline="chemprop")),
    log:
        layout.log("chemprop"),
    benchmark:
        layout.benchmark("chemprop")
    conda:
        "../envs/chemprop.yaml"
    threads: 4
    resources:
        gpu=1,
    params:
        task=task_of,
        seed=model_seed,
        settings=STUDY.chemprop,
        isomeric_smiles=STUDY.isomeric_smiles,
        search=baseline_search({"baseline": "chemprop"}),
    script:
        "../scripts/chemprop.py"
