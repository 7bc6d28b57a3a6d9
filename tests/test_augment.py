"""SMILES enumeration: seeded variants with the canonical SMILES first, training on them (one a molecule per epoch, or
all), test-time averaging that early stopping and calibration share, and the counts in run.json."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import torch
from rdkit import Chem

from chemlm.augment import write_variants
from chemlm.isolation import Isolation
from chemlm.models.finetuning import EncodedFold, finetune
from helpers import demo_molecules, write_fold_files
from test_baselines import parsable
from test_training import PARAMS, SCRATCH, TASKS


def prepared(tmp_path, count: int = 4):
    molecules = parsable(demo_molecules())
    molecules["smiles"] = [Chem.MolToSmiles(Chem.MolFromSmiles(smiles)) for smiles in molecules["smiles"]]  # as featurize writes
    molecules_csv, split_csv = write_fold_files(molecules, tmp_path)
    write_variants(molecules_csv, count, True, tmp_path / "variants.csv", isolation=Isolation(2))
    return molecules, molecules_csv, split_csv


def test_variants_are_seeded_spellings_of_the_same_molecule_canonical_first(tmp_path):
    molecules, molecules_csv, _ = prepared(tmp_path)
    variants = pd.read_csv(tmp_path / "variants.csv", dtype={"mol_id": str})
    first = variants[variants["variant"] == 0].set_index("mol_id")["smiles"]
    assert first.loc[molecules["mol_id"]].tolist() == molecules["smiles"].tolist()
    assert variants.groupby("mol_id")["variant"].max().max() == 3 and variants.groupby("mol_id").size().mean() > 3
    for smiles, canonical in zip(variants["smiles"], variants["mol_id"].map(molecules.set_index("mol_id")["smiles"])):
        assert Chem.MolToSmiles(Chem.MolFromSmiles(smiles)) == canonical
    write_variants(molecules_csv, 4, True, tmp_path / "again.csv")
    assert (tmp_path / "again.csv").read_text() == (tmp_path / "variants.csv").read_text()


def run(tmp_path, molecules_csv, split_csv, name, **changes):
    out = tmp_path / name
    params = replace(PARAMS, max_epochs=2, **changes)
    finetune(molecules_csv, split_csv, TASKS["binary"], SCRATCH, params, 0, out / "model", out / "history.csv", out / "predictions.csv",
             out / "run.json", out / "state", out / "calibration.json", variants_csv=tmp_path / "variants.csv", random_smiles=3)
    return json.loads((out / "run.json").read_text()), pd.read_csv(out / "predictions.csv")


def test_training_and_test_time_augmentation_are_counted_and_deterministic(tmp_path):
    _, molecules_csv, split_csv = prepared(tmp_path)
    plain, plain_predictions = run(tmp_path, molecules_csv, split_csv, "plain")
    assert plain["smiles_per_molecule"] == {"train": 1.0, "valid": 1.0, "test": 1.0}
    augmented, predictions = run(tmp_path, molecules_csv, split_csv, "augmented", augment=4, test_time_augment=4)
    assert 3 < augmented["smiles_per_molecule"]["train"] <= 4 and 3 < augmented["smiles_per_molecule"]["test"] <= 4
    assert augmented["fold_sizes"] == plain["fold_sizes"] and len(predictions) == len(plain_predictions)
    assert not np.allclose(predictions["p:HIV_active"], plain_predictions["p:HIV_active"])
    again, predictions_again = run(tmp_path, molecules_csv, split_csv, "again", augment=4, test_time_augment=4)
    pd.testing.assert_frame_equal(predictions, predictions_again)
    every, _ = run(tmp_path, molecules_csv, split_csv, "every", augment=4, augment_mode="all")
    assert every["smiles_per_molecule"]["valid"] == 1.0


def test_predictions_average_each_molecules_variants_in_logit_space():
    fold = EncodedFold(np.array(["a", "b"]), [[1], [2], [3], [4]], np.zeros((2, 1)), np.array([0, 0, 0, 1]))
    logits = torch.tensor([[0.0, 1.0], [0.0, 2.0], [0.0, 3.0], [0.0, -1.0]])
    torch.testing.assert_close(fold.per_molecule(logits), torch.tensor([[0.0, 2.0], [0.0, -1.0]]))
    assert fold.first.tolist() == [0, 3] and fold.variants.tolist() == [3, 1]


def test_a_smiles_rdkit_cannot_read_back_has_no_draws_and_is_its_own_variant():
    from chemlm.augment import random_smiles_chunk
    from chemlm.variants import distinct_variants

    drawn = random_smiles_chunk(["OCC", "C1CC"], 3, True)
    assert len(drawn[0]) == 3 and drawn[1] == []
    assert distinct_variants("C1CC", drawn[1], 4) == ["C1CC"]
