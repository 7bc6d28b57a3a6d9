"""Scoring new molecules: seed ensembles keep every library row in order, calibration never sees test labels, the
`chemlm predict` command on a model folder alone, regression in the label's units, libraries larger than a chunk."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from chemlm import library
from chemlm.library import NOT_CANONICALISED, prepare_chunk, read_chunks, write_library
from chemlm.models.finetuning import finetune
from chemlm.cli import score_file
from chemlm.io import InputError, count_rows
from chemlm.models.checkpoints import CheckpointError
from chemlm.predict import ModelEnsemble, score_library
from chemlm.similarity import Reference, nearest
from helpers import demo_molecules, write_fold_files
from test_training import PARAMS, SCRATCH, TASKS

LIBRARY = "smiles,name\nCCO,ethanol\nnot a smiles,junk\n,empty\nc1ccccc1O,phenol\nOCC,ethanol again\nCCN,amine\n"


def fine_tune(directory, task, seed, molecules=None):
    molecules = demo_molecules() if molecules is None else molecules
    directory.mkdir(parents=True, exist_ok=True)
    molecules_csv, split_csv = write_fold_files(molecules, directory)
    out = directory / f"seed{seed}"
    finetune(molecules_csv, split_csv, task, SCRATCH, replace(PARAMS, max_epochs=2), seed, out / "model", out / "history.csv",
             out / "predictions.csv", out / "run.json", out / "state", out / "calibration.json")
    return out


@pytest.fixture(scope="module")
def binary_models(tmp_path_factory):
    directory = tmp_path_factory.mktemp("binary")
    return [fine_tune(directory, TASKS["binary"], seed) / "model" for seed in (0, 1, 2)]


def test_an_ensemble_keeps_every_row_in_order(binary_models, tmp_path):
    (tmp_path / "library.csv").write_text(LIBRARY)
    rows = score_file(binary_models, tmp_path / "library.csv", tmp_path / "scored.csv", id_column="name")
    scored = pd.read_csv(tmp_path / "scored.csv", dtype={"id": str}, keep_default_na=False, na_values=[""])
    assert rows == 6 and scored["row"].tolist() == list(range(6))
    assert scored["id"].tolist() == ["ethanol", "junk", "empty", "phenol", "ethanol again", "amine"]
    assert scored["valid"].tolist() == [True, False, False, True, True, True]
    assert scored["reason"][1].startswith("invalid SMILES") and scored["reason"][2] == "empty SMILES"
    assert scored["smiles"][4] == "CCO" and scored["input_smiles"][4] == "OCC"  # canonicalised: a duplicate of row 0
    assert list(scored.columns[6:]) == ["mean:HIV_active", "sd:HIV_active", "calibrated:HIV_active"]
    assert scored.loc[[1, 2], ["mean:HIV_active", "sd:HIV_active", "calibrated:HIV_active"]].isna().all().all()
    assert scored["mean:HIV_active"][0] == pytest.approx(scored["mean:HIV_active"][4])  # the same molecule
    valid = scored[scored["valid"]]
    assert valid["mean:HIV_active"].between(0, 1).all() and (valid["sd:HIV_active"] > 0).all()
    single = [ModelEnsemble([folder]).score(valid, None).mean[:, 0] for folder in binary_models]
    np.testing.assert_allclose(valid["mean:HIV_active"], np.mean(single, axis=0), rtol=1e-5)
    np.testing.assert_allclose(valid["sd:HIV_active"], np.std(single, axis=0, ddof=1), rtol=1e-4)


def test_calibration_never_sees_test_labels(tmp_path):
    """Fine-tuning with every test label flipped gives the same calibration, so the same calibrated scores."""
    molecules = demo_molecules()
    folds = np.arange(len(molecules)) % 5  # write_fold_files: 1 is the test fold
    poisoned = molecules.assign(HIV_active=np.where(folds == 1, 1 - molecules["HIV_active"], molecules["HIV_active"]))
    clean = fine_tune(tmp_path / "clean", TASKS["binary"], 0, molecules)
    dirty = fine_tune(tmp_path / "poisoned", TASKS["binary"], 0, poisoned)
    assert (clean / "calibration.json").read_text() == (dirty / "calibration.json").read_text()
    (tmp_path / "library.csv").write_text(LIBRARY)
    for out, folder in (("clean.csv", clean), ("poisoned.csv", dirty)):
        score_file([folder / "model"], tmp_path / "library.csv", tmp_path / out)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "clean.csv"), pd.read_csv(tmp_path / "poisoned.csv"))


def test_regression_is_scored_in_the_labels_units(tmp_path):
    molecules = demo_molecules()
    folder = fine_tune(tmp_path, TASKS["regression"], 0, molecules) / "model"
    scores = ModelEnsemble([folder]).score(pd.DataFrame({"smiles": molecules["smiles"].head(40)}), None)
    assert scores.calibrated is None and np.isnan(scores.sd).all()  # one model: no spread to speak of
    predicted_test = pd.read_csv(tmp_path / "seed0" / "predictions.csv")["p:length"]
    assert abs(scores.mean.mean() - molecules["length"].mean()) < 3 * molecules["length"].std()
    assert predicted_test.min() > 0  # lengths / 10: in the label's units, not standardised


@pytest.mark.integration
def test_the_command_on_a_model_folder_alone_in_a_fresh_directory(binary_models, tmp_path):
    folder = tmp_path / "fresh" / "my-model"
    shutil.copytree(binary_models[0], folder)
    (tmp_path / "fresh" / "library.smi").write_text("CCO ethanol\nnot_smiles bad\nc1ccccc1O phenol\n")
    run = subprocess.run(
        [str(sys.executable), "-m", "chemlm.cli", "predict", "--model", "my-model", "--input", "library.smi", "--output", "out.csv.gz",
         "--rdkit-time-limit", "5"],
        cwd=tmp_path / "fresh", capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    scored = pd.read_csv(tmp_path / "fresh" / "out.csv.gz", keep_default_na=False)
    assert scored["id"].tolist() == ["ethanol", "bad", "phenol"] and scored["valid"].tolist() == [True, False, True]
    assert "3 rows scored" in run.stderr


@pytest.mark.integration
def test_folders_that_are_not_one_tasks_models_stop_with_one_line(binary_models, tmp_path):
    (tmp_path / "library.csv").write_text(LIBRARY)
    other = fine_tune(tmp_path, TASKS["multilabel"], 0) / "model"
    for models, message in (
        ([binary_models[0], other], f"{other}: a model of task 'shape' (multilabel"),
        ([tmp_path], f"{tmp_path}: not a model folder (no config.json)"),
    ):
        run = subprocess.run([sys.executable, "-m", "chemlm.cli", "predict", *sum((["--model", str(m)] for m in models), []),
                              "--input", str(tmp_path / "library.csv"), "--output", str(tmp_path / "x.csv")],
                             capture_output=True, text=True, timeout=300)
        lines = run.stderr.strip().splitlines()
        assert run.returncode == 2 and lines[-1].startswith(f"chemlm: error: {message}"), run.stderr[-1000:]
        assert not (tmp_path / "x.csv").exists()


def test_without_rdkit_smiles_are_scored_as_given_and_said_so(tmp_path, monkeypatch):
    monkeypatch.setattr(library, "rdkit_available", lambda: False)
    (tmp_path / "library.smi").write_text("OCC\n\n")
    prepared = prepare_chunk(next(read_chunks(tmp_path / "library.smi")), True)
    assert prepared["smiles"].tolist() == ["OCC", ""] and prepared["valid"].tolist() == [True, False]
    assert prepared["reason"].tolist() == [NOT_CANONICALISED, "empty SMILES"]


def test_a_library_larger_than_one_chunk_with_its_applicability_domain(binary_models, tmp_path, monkeypatch):
    monkeypatch.setattr(library, "CHUNK_ROWS", 4)
    smiles = demo_molecules(40)["smiles"].tolist()[:22] + ["bad smiles"]
    (tmp_path / "library.smi").write_bytes(gzip.compress("\n".join(smiles).encode()))
    counts = write_library(tmp_path / "library.smi", "smiles", None, True, tmp_path / "molecules.csv.gz", tmp_path / "ecfp4.npy", chunk_rows=4)
    assert counts["rows"] == 23 and counts["invalid"] >= 1
    packed = np.load(tmp_path / "ecfp4.npy")
    assert packed.shape == (23, 256) and not packed[-1].any()
    reference = Reference.from_packed(packed[:10], np.array([f"t{i}" for i in range(10)]))
    similarity, index = nearest(reference, packed)
    valid = packed[:10].any(axis=1)  # the demo sample keeps SMILES RDKit rejects: their bits are all 0
    assert (similarity[:10][valid] == 1.0).all() and (index[:10][valid] == np.flatnonzero(valid)).all()
    assert (index[:10][~valid] == -1).all() and index[-1] == -1
    pd.DataFrame({"row": range(23), "max_similarity": similarity, "neighbour_id": np.where(index >= 0, reference.mol_ids[index], "")}).to_csv(
        tmp_path / "similarity.csv.gz", index=False)
    rows = score_library(binary_models, "isotonic", tmp_path / "molecules.csv.gz", tmp_path / "similarity.csv.gz", tmp_path / "scored.csv.gz")
    scored = pd.read_csv(tmp_path / "scored.csv.gz", keep_default_na=False, na_values=[""])
    assert rows == 23 and scored["row"].tolist() == list(range(23)) and scored["neighbour_id"][0] == "t0"
    whole = score_file(binary_models, tmp_path / "library.smi", tmp_path / "whole.csv", calibration_method="isotonic")
    assert whole == 23
    np.testing.assert_allclose(scored["mean:HIV_active"], pd.read_csv(tmp_path / "whole.csv")["mean:HIV_active"], rtol=1e-5)


def test_rows_are_counted_as_they_are_read(tmp_path):
    """The rows that decide the shards are the rows read_chunks numbers: every line of a .smi file (a blank one is an
    empty SMILES), a CSV's non-blank lines after its header."""
    (tmp_path / "library.smi").write_text("CCO a\n\nc1ccccc1\nCCN")
    (tmp_path / "library.csv.gz").write_bytes(gzip.compress(b"smiles,name\nCCO,a\n\nCCN,b\n"))
    for name, expected in (("library.smi", 4), ("library.csv.gz", 2)):
        assert count_rows(tmp_path / name) == expected == sum(len(chunk) for chunk in read_chunks(tmp_path / name, chunk_rows=1))
    assert [chunk["row"].tolist() for chunk in read_chunks(tmp_path / "library.smi", chunk_rows=3, start=1, stop=3)] == [[1, 2]]
    with pytest.raises(InputError, match="library.txt: file not found"):
        count_rows(tmp_path / "library.txt")


def score_in_shards(tmp_path, source, shard_size, score) -> list:
    """The library prepared, compared with the training fold and scored by `score(molecules, bits, similarity, out)`
    shard by shard, as the workflow's jobs do; the merged file's path."""
    from chemlm.config import shard_count
    from chemlm.scoring import merge_shards
    from chemlm.similarity import write_library_similarity

    task_dir = tmp_path / "task"
    shards = shard_count(count_rows(source), shard_size)
    outputs = []
    for shard in range(shards):
        start = shard * shard_size
        rows = (start, None if shard == shards - 1 else start + shard_size)
        directory = tmp_path / f"shard{shard}"
        directory.mkdir()
        write_library(source, "smiles", None, True, directory / "molecules.csv.gz", directory / "ecfp4.npy", rows=rows)
        write_library_similarity(task_dir / "molecules.csv", [task_dir / "split.csv"], task_dir / "ecfp4.npz", directory / "ecfp4.npy",
                                 directory / "similarity.csv.gz", first_row=start)
        score(directory / "molecules.csv.gz", directory / "ecfp4.npy", directory / "similarity.csv.gz", directory / "scored.csv.gz")
        outputs.append(directory / "scored.csv.gz")
    merge_shards(outputs, shard_size, tmp_path / "merged.csv.gz")
    return tmp_path / "merged.csv.gz"


def test_a_library_scored_in_shards_is_the_library_scored_whole(binary_models, tmp_path, monkeypatch):
    """Every model kind (fine-tuned folders, a stored baseline) writes the same bytes in 3 shards as in one when a
    shard is a whole number of scoring chunks (the default 100,000 rows are 10 chunks); with any other shard size a
    molecule's batch differs, and so may a fine-tuned model's float32 rounding, nothing else."""
    from chemlm import baselines, scoring
    from chemlm.fingerprints import write_ecfp4

    from rdkit import Chem

    task_dir = tmp_path / "whole" / "task"
    molecules = demo_molecules(60)
    molecules = molecules[[Chem.MolFromSmiles(text) is not None for text in molecules["smiles"]]]
    task_dir.mkdir(parents=True)
    molecules_csv, split_csv = write_fold_files(molecules, task_dir)
    write_ecfp4(molecules_csv, task_dir / "ecfp4.npz")
    (tmp_path / "sharded").mkdir()
    shutil.copytree(task_dir, tmp_path / "sharded" / "task")
    smiles = demo_molecules(80)["smiles"].tolist()[60:]
    smiles[5:5] = [""]  # an empty line: an invalid row
    smiles.append("bad smiles")
    (tmp_path / "library.smi").write_bytes(gzip.compress("\n".join(smiles).encode()))
    calibration, settings = tmp_path / "calibration.json", tmp_path / "settings.json"
    rule_predictions = baselines.train_baseline(molecules_csv, split_csv, task_dir / "ecfp4.npz", TASKS["binary"], "ecfp4_rf", 0, 20, 1,
                                                tmp_path / "predictions.csv", calibration, settings)
    fitted = baselines.write_fitted(molecules_csv, split_csv, task_dir / "ecfp4.npz", settings, TASKS["binary"], "ecfp4_rf", 0,
                                    tmp_path / "model.skops")
    table = baselines.load_fold_tables(molecules_csv, split_csv)
    bits = baselines.read_fingerprints(task_dir / "ecfp4.npz", table["mol_id"].to_numpy())
    stored = baselines.load_fitted(tmp_path / "model.skops", TASKS["binary"])
    np.testing.assert_array_equal(stored.predict(bits), fitted.predict(bits))
    test = (table["fold"] == "test").to_numpy()  # the stored model is the one whose test predictions were evaluated
    np.testing.assert_array_equal(stored.predict(bits[test])[:, 0], rule_predictions.loc[rule_predictions["fold"] == "test", "p:HIV_active"])

    def fine_tuned(molecules_gz, bits_npy, similarity, out):
        score_library(binary_models, "isotonic", molecules_gz, similarity, out)

    def baseline(molecules_gz, bits_npy, similarity, out):
        baselines.score_library([tmp_path / "model.skops"] * 2, [calibration] * 2, TASKS["binary"], "isotonic", molecules_gz, bits_npy, similarity, out)

    def scored_both_ways(score, shard_size):
        for directory in ("whole", "sharded"):
            for leftover in (tmp_path / directory).glob("shard*"):
                shutil.rmtree(leftover)
        whole = score_in_shards(tmp_path / "whole", tmp_path / "library.smi", 100, score)
        sharded = score_in_shards(tmp_path / "sharded", tmp_path / "library.smi", shard_size, score)
        assert len(list((tmp_path / "sharded").glob("shard*"))) == 3
        return whole, sharded

    monkeypatch.setattr(scoring, "LIBRARY_CHUNK_ROWS", 4)
    for score in (fine_tuned, baseline):
        whole, sharded = scored_both_ways(score, 8)
        assert gzip.decompress(sharded.read_bytes()) == gzip.decompress(whole.read_bytes()), score.__name__
        scored = pd.read_csv(whole, keep_default_na=False, na_values=[""])
        assert scored["row"].tolist() == list(range(22)) and scored["valid"].sum() <= 20 and not scored["valid"][5]
        assert scored["neighbour_id"][0].startswith("m")
    monkeypatch.setattr(scoring, "LIBRARY_CHUNK_ROWS", 10_000)
    whole, sharded = (pd.read_csv(path, keep_default_na=False, na_values=[""]) for path in scored_both_ways(fine_tuned, 9))
    scores = [column for column in whole.columns if column.split(":")[0] in ("mean", "sd")]
    calibrated = [column for column in whole.columns if column.startswith("calibrated:")]
    pd.testing.assert_frame_equal(sharded.drop(columns=scores + calibrated), whole.drop(columns=scores + calibrated))
    np.testing.assert_allclose(sharded[scores].to_numpy(float), whole[scores].to_numpy(float), rtol=1e-5, atol=1e-9)
    # The tiny models' scores lie within 1e-4 of each other, so their calibration is steep and magnifies the rounding
    np.testing.assert_allclose(sharded[calibrated].to_numpy(float), whole[calibrated].to_numpy(float), atol=1e-3)


def test_shards_that_do_not_line_up_are_not_merged(tmp_path):
    from chemlm.scoring import merge_shards

    for shard, rows in enumerate(([0, 1], [3, 4])):
        pd.DataFrame({"row": rows, "id": ["a", "b"]}).to_csv(tmp_path / f"{shard}.csv.gz", index=False)
    with pytest.raises(InputError, match=r"1.csv.gz: starts at row 3, not 2; rerun its scoring"):
        merge_shards([tmp_path / "0.csv.gz", tmp_path / "1.csv.gz"], 2, tmp_path / "merged.csv.gz")
    assert not (tmp_path / "merged.csv.gz").exists()


def test_a_file_that_is_not_a_stored_baseline_is_named(tmp_path):
    from chemlm.baselines import load_fitted

    (tmp_path / "model.skops").write_bytes(b"not a zip")
    with pytest.raises(InputError, match=r"model.skops: not a stored baseline \(BadZipFile"):
        load_fitted(tmp_path / "model.skops", TASKS["binary"])


def test_a_test_molecule_without_fingerprint_bits_has_no_neighbour(tmp_path):
    """RDKit crashed on it (its bits are all 0): similarity 0 and no neighbour, as a library row gets; never the
    last training molecule."""
    from chemlm.fingerprints import write_ecfp4
    from chemlm.similarity import write_test_similarity

    from rdkit import Chem

    molecules = demo_molecules(60)
    molecules = molecules[[Chem.MolFromSmiles(text) is not None for text in molecules["smiles"]]].head(40)
    molecules = molecules.assign(mol_id=[f"m{i}" for i in range(len(molecules))])
    molecules_csv, split_csv = write_fold_files(molecules, tmp_path)
    write_ecfp4(molecules_csv, tmp_path / "ecfp4.npz")
    with np.load(tmp_path / "ecfp4.npz") as data:
        arrays = dict(data)
    crashed = 1  # in the test fold (write_fold_files: position 1 of 5)
    arrays["bits"][crashed] = 0
    np.savez_compressed(tmp_path / "ecfp4.npz", **arrays)
    write_test_similarity(molecules_csv, split_csv, tmp_path / "ecfp4.npz", tmp_path / "similarity.csv")
    table = pd.read_csv(tmp_path / "similarity.csv", keep_default_na=False).set_index("mol_id")
    assert table.loc["m1", "max_similarity"] == 0 and table.loc["m1", "neighbour_id"] == ""
    others = table.drop(index="m1")
    assert (others["neighbour_id"] != "").all() and (others["max_similarity"] > 0).all()


def test_an_ensemble_of_the_same_model_has_sd_zero_not_rounding_noise():
    from chemlm.scoring import ensemble_scores

    probabilities = np.array([[0.2], [0.7]])
    same = ensemble_scores([probabilities, probabilities + 1.4e-16, probabilities - 6.8e-17], None)
    assert (same.sd == 0).all()
    values = np.array([[-3.2], [1500.0]])  # regression, in the label's units
    assert (ensemble_scores([values, values * (1 + 1e-12), values], None).sd == 0).all()
    small = np.array([[2e-7], [5e-7]])  # a label in small units: its seeds' disagreement is real
    assert (ensemble_scores([small * 0.5, small, small * 1.5], None).sd > 0).all()
    differ = ensemble_scores([probabilities, probabilities + 0.01, probabilities - 0.01], None)
    np.testing.assert_allclose(differ.sd, 0.01)
    assert np.isnan(ensemble_scores([probabilities], None).sd).all()


def tta_model(directory, task, molecules_csv, split_csv, **changes):
    """A model fine-tuned with test-time augmentation: 4 variants per molecule, made from 5 seeded draws."""
    finetune(molecules_csv, split_csv, task, SCRATCH, replace(PARAMS, test_time_augment=4, **changes), 0, directory / "model",
             directory / "history.csv", directory / "predictions.csv", directory / "run.json", directory / "state",
             directory / "calibration.json", variants_csv=molecules_csv.parent / "variants.csv", random_smiles=5)
    predictions = pd.read_csv(directory / "predictions.csv", dtype={"mol_id": str})
    test = predictions[predictions["fold"] == "test"]
    return directory / "model", test, test[[column for column in test.columns if column.startswith("p:")]].to_numpy()


def test_scoring_reproduces_test_time_augmented_predictions(tmp_path):
    """A model evaluated on 4 SMILES variants per molecule scores its own test fold as predictions.csv has it, from a
    library holding more draws than it reads, in the workflow's library and through `chemlm predict`; asked to read
    one SMILES per molecule, it gives other numbers. (Predicting the SMILES length: variants of other lengths matter.)"""
    from chemlm.library import add_random_smiles
    from test_augment import prepared

    molecules, molecules_csv, split_csv = prepared(tmp_path, count=6)
    model, test, expected = tta_model(tmp_path / "seed0", TASKS["regression"], molecules_csv, split_csv, max_epochs=30, patience=30,
                                      learning_rate=3e-3)
    recorded = json.loads((model / "config.json").read_text())["chemlm_inputs"]["test_time_augment"]
    assert recorded == {"variants": 4, "random_smiles": 5, "seed": 20240601}
    assert expected.std() > 1  # a model that reads its input: SMILES lengths in characters
    smiles = molecules.set_index("mol_id").loc[test["mol_id"], "smiles"].tolist()
    scores = ModelEnsemble([model]).score(add_random_smiles(pd.DataFrame({"smiles": smiles, "valid": True}), 8, True))
    np.testing.assert_allclose(scores.mean, expected, rtol=1e-5)

    (tmp_path / "test.smi").write_text("\n".join(smiles) + "\n")
    write_library(tmp_path / "test.smi", "smiles", None, True, tmp_path / "molecules.csv.gz", tmp_path / "ecfp4.npy", random_smiles=7)
    score_library([model], "platt", tmp_path / "molecules.csv.gz", None, tmp_path / "library.csv.gz")
    scored = pd.read_csv(tmp_path / "library.csv.gz")
    assert "random_smiles" not in scored.columns
    np.testing.assert_allclose(scored[["mean:length"]], expected, rtol=1e-5)
    score_file([model], tmp_path / "test.smi", tmp_path / "cli.csv")
    np.testing.assert_allclose(pd.read_csv(tmp_path / "cli.csv")[["mean:length"]], expected, rtol=1e-5)

    score_file([model], tmp_path / "test.smi", tmp_path / "single.csv", test_time_augment=False)
    assert np.abs(pd.read_csv(tmp_path / "single.csv")[["mean:length"]].to_numpy() - expected).max() > 0.5
    with pytest.raises(InputError, match="random_smiles=5"):
        ModelEnsemble([model]).score(pd.DataFrame({"smiles": smiles, "valid": True}))


def test_a_test_time_augmented_models_calibration_applies_to_augmented_scores_only(tmp_path):
    """The calibration was fitted on averages over variants: scoring applies it to such averages, and gives no
    calibrated probability for scores read from one SMILES per molecule."""
    from chemlm.calibration import apply
    from chemlm.library import add_random_smiles
    from test_augment import prepared

    molecules, molecules_csv, split_csv = prepared(tmp_path, count=6)
    task = TASKS["multilabel"]
    model, test, expected = tta_model(tmp_path / "seed0", task, molecules_csv, split_csv, max_epochs=2)
    smiles = molecules.set_index("mol_id").loc[test["mol_id"], "smiles"].tolist()
    scores = ModelEnsemble([model]).score(add_random_smiles(pd.DataFrame({"smiles": smiles, "valid": True}), 5, True))
    np.testing.assert_allclose(scores.mean, expected, rtol=0, atol=1e-6)
    calibration = json.loads((model.parent / "calibration.json").read_text())
    np.testing.assert_allclose(scores.calibrated, apply(calibration, "platt", task.label_columns, scores.mean), rtol=1e-12)
    single = ModelEnsemble([model], test_time_augment=False).score(pd.DataFrame({"smiles": smiles, "valid": True}))
    assert single.calibrated is None

    # a library's random SMILES are drawn with chemlm.variants.SEED: a model whose variants came from another seed stops
    config = json.loads((model / "config.json").read_text())
    config["chemlm_inputs"]["test_time_augment"]["seed"] = 7
    (model / "config.json").write_text(json.dumps(config))
    (tmp_path / "test.smi").write_text("\n".join(smiles) + "\n")
    write_library(tmp_path / "test.smi", "smiles", None, True, tmp_path / "molecules.csv.gz", tmp_path / "ecfp4.npy", random_smiles=5)
    with pytest.raises(CheckpointError, match="seed 7"):
        score_library([model], "platt", tmp_path / "molecules.csv.gz", None, tmp_path / "library.csv.gz")


def test_without_rdkit_a_test_time_augmented_model_needs_to_be_told(tmp_path, monkeypatch):
    from test_augment import prepared

    _, molecules_csv, split_csv = prepared(tmp_path, count=3)
    out = tmp_path / "seed0"
    finetune(molecules_csv, split_csv, TASKS["binary"], SCRATCH, replace(PARAMS, max_epochs=1, test_time_augment=2), 0,
             out / "model", out / "history.csv", out / "predictions.csv", out / "run.json", out / "state", out / "calibration.json",
             variants_csv=tmp_path / "variants.csv", random_smiles=2)
    (tmp_path / "library.csv").write_text(LIBRARY)
    monkeypatch.setattr(library, "rdkit_available", lambda: False)
    with pytest.raises(InputError, match="--no-test-time-augment"):
        score_file([out / "model"], tmp_path / "library.csv", tmp_path / "scored.csv")
    assert score_file([out / "model"], tmp_path / "library.csv", tmp_path / "scored.csv", test_time_augment=False) == 6


def test_a_ranking_says_when_its_top_scores_tie():
    from chemlm.scoring import ranking_ties

    flat = pd.DataFrame({"calibrated:HIV_active": 0.2586 + np.linspace(0, 5e-5, 12)})  # the demo's MLM once
    assert ranking_ties(flat).startswith("the top 12 scores lie within 5e-05 of each other (0.25860 to 0.25865)")
    some = pd.DataFrame({"calibrated:HIV_active": [0.9, 0.8, 0.80001, 0.5, 0.3]})
    assert ranking_ties(some) == "2 of the top 5 tie with another within 0.0001: their order among themselves is arbitrary"
    assert ranking_ties(pd.DataFrame({"calibrated:HIV_active": [0.9, 0.8, 0.5]})) is None
