# Scoring libraries of new molecules (config `predict`): each library is cut into shards of `predict.shard_size`
# rows when the workflow is planned (scatter); each shard is read, canonicalised and fingerprinted once (chemistry
# env), its similarity to each task's training fold is computed, and the seeds' models of every checkpoint (training
# env, no RDKit) and baseline score it as an ensemble, one job per shard and model; the shards' scores are merged into
# one file per model (gather). With `predict.engine` onnx or onnx-int8, each fine-tuned model is exported once
# (export_onnx, checked on its test fold) and its export scores. Helper functions are in common.smk.


rule library:
    input:
        library_source,
    output:
        molecules=layout.library_shard_file("molecules.csv.gz"),
        fingerprints=layout.library_shard_file("ecfp4.npy"),
        qc=layout.library_shard_file("qc.json"),
    log:
        layout.log("library"),
    benchmark:
        layout.benchmark("library")
    conda:
        "../envs/chemistry.yaml"
    threads: 4
    params:
        library=library_of,
        # [start, stop) of the shard's rows; stop is None for the last shard, which reads to the end
        rows=shard_rows_of,
        isomeric_smiles=STUDY.isomeric_smiles,
        # the seeded random SMILES of each molecule that test-time augmentation averages over (chemlm.augment)
        random_smiles=STUDY.library_random_smiles,
        rdkit_time_limit=STUDY.rdkit_time_limit,
    script:
        "../scripts/library.py"


# A shard's ECFP4 counts and RDKit descriptors, where LightGBM scores the library.
rule library_descriptors:
    input:
        molecules=layout.library_shard_file("molecules.csv.gz"),
        names=MTR_DESCRIPTORS,
    output:
        layout.library_features("lgbm"),
    log:
        layout.log("library_descriptors"),
    benchmark:
        layout.benchmark("library_descriptors")
    conda:
        "../envs/chemistry.yaml"
    threads: 4
    params:
        rdkit_time_limit=STUDY.rdkit_time_limit,
    script:
        "../scripts/library_descriptors.py"


rule library_qc:
    input:
        library_shard_qcs,
    output:
        layout.library_qc(),
    log:
        layout.log("library_qc"),
    benchmark:
        layout.benchmark("library_qc")
    conda:
        "../envs/chemistry.yaml"
    script:
        "../scripts/library_qc.py"


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
    params:
        first_row=lambda wildcards: shard_rows_of(wildcards)[0],
    script:
        "../scripts/library_similarity.py"


rule export_onnx:
    input:
        unpack(fold_inputs),
        model=layout.finetune_file("model"),
    output:
        directory(layout.exported_model()),
    log:
        layout.log("export_onnx"),
    benchmark:
        layout.benchmark("export_onnx")
    conda:
        "../envs/training.yaml"
    threads: 4
    script:
        "../scripts/export_onnx.py"


rule predict:
    input:
        unpack(predict_inputs),
    output:
        layout.shard_predictions(model="{checkpoint}"),
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
        layout.shard_predictions(model="{baseline}"),
    log:
        layout.log("predict_baseline"),
    benchmark:
        layout.benchmark("predict_baseline")
    wildcard_constraints:
        baseline=FEATURE_BASELINE,
    conda:
        "../envs/plotting.yaml"
    threads: 4
    params:
        task=task_of,
        calibration=STUDY.calibration,
    script:
        "../scripts/predict_baseline.py"


rule predict_chemprop:
    input:
        unpack(predict_chemprop_inputs),
    output:
        layout.shard_predictions(model="chemprop"),
    log:
        layout.log("predict_chemprop"),
    benchmark:
        layout.benchmark("predict_chemprop")
    conda:
        "../envs/chemprop.yaml"
    threads: 4
    resources:
        gpu=1,
    params:
        calibration=STUDY.calibration,
    script:
        "../scripts/predict_chemprop.py"


rule merge_predictions:
    input:
        shard_predictions,
    output:
        layout.library_predictions(),
    log:
        layout.log("merge_predictions"),
    benchmark:
        layout.benchmark("merge_predictions")
    conda:
        "../envs/chemistry.yaml"
    params:
        shard_size=STUDY.predict.shard_size if STUDY.predict else None,
    script:
        "../scripts/merge_predictions.py"


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
