# Scoring libraries of new molecules (config `predict`): each library is read, canonicalised and fingerprinted once
# (chemistry env), its similarity to each task's training fold is computed, and the seeds' models of every
# checkpoint (training env, no RDKit) and baseline score it as an ensemble. Helper functions are in common.smk.


rule library:
    input:
        library_source,
    output:
        molecules=layout.library_file("molecules.csv.gz"),
        fingerprints=layout.library_file("ecfp4.npy"),
        qc=layout.library_file("qc.json"),
    log:
        layout.log("library"),
    benchmark:
        layout.benchmark("library")
    conda:
        "../envs/chemistry.yaml"
    threads: 4
    params:
        library=library_of,
        isomeric_smiles=STUDY.isomeric_smiles,
        # the seeded random SMILES of each molecule that test-time augmentation averages over (chemlm.augment)
        random_smiles=STUDY.library_random_smiles,
        rdkit_time_limit=STUDY.rdkit_time_limit,
    script:
        "../scripts/library.py"


rule library_similarity:
    input:
        unpack(library_similarity_inputs),
    output:
        layout.library_similarity(),
    log:
        layout.log("library_similarity"),
    benchmark:
        layout.benchmark("library_similarity")
    conda:
        "../envs/plotting.yaml"
    threads: 4
    script:
        "../scripts/library_similarity.py"


rule predict:
    input:
        unpack(predict_inputs),
    output:
        layout.library_predictions(model="{checkpoint}"),
    log:
        layout.log("predict"),
    benchmark:
        layout.benchmark("predict")
    conda:
        "../envs/training.yaml"
    threads: 4
    resources:
        gpu=1,
    params:
        calibration=STUDY.calibration,
    script:
        "../scripts/predict.py"


rule predict_baseline:
    input:
        unpack(predict_baseline_inputs),
    output:
        layout.library_predictions(model="{baseline}"),
    log:
        layout.log("predict_baseline"),
    benchmark:
        layout.benchmark("predict_baseline")
    conda:
        "../envs/plotting.yaml"
    threads: 4
    params:
        task=task_of,
        # the model seed of each split instance, in the order of input.splits
        seeds=lambda wildcards: [
            instance.seed for instance in STUDY.instances(wildcards.split)
        ],
        calibration=STUDY.calibration,
    script:
        "../scripts/predict_baseline.py"


rule depict_predictions:
    input:
        layout.library_predictions(),
    output:
        report(
            layout.prediction_figure(),
            caption="../report/predictions.rst",
            category="Predictions",
            subcategory="{task}",
            labels={"library": "{library}", "split": "{split}", "model": "{model}"},
        ),
    log:
        layout.log("depict_predictions"),
    benchmark:
        layout.benchmark("depict_predictions")
    conda:
        "../envs/chemistry.yaml"
    params:
        top=STUDY.predict.top if STUDY.predict else None,
    script:
        "../scripts/depict_predictions.py"
