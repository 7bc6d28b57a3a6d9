"""The pre-training corpus (canonical, deduplicated, every downstream task molecule removed, holdout) and the MTR
descriptor targets (ChemBERTa-2's 199 descriptors in its order, normalised with the training part)."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pandas as pd
import pytest
from rdkit import Chem
from rdkit.Chem import Descriptors

from chemlm.config import CorpusSettings
from chemlm.corpus import build_corpus, canonicalise, prepare_corpus, read_smiles_lines, task_molecule_smiles
from chemlm.descriptors import compute_descriptors, load_descriptor_names, normalise
from chemlm.featurize import parse_all
from chemlm.io import InputError
from chemlm.isolation import Isolation
from helpers import REPO, demo_molecules

DESCRIPTOR_LIST = REPO / "resources" / "chemberta2-mtr-descriptors.json"
# Two molecules of ChemBERTa-2's MTR training data with their 199 descriptor values, no header, as published in
# seyonechithrananda/bert-loves-chemistry chemberta/data/pubchem_descriptors_sample_1k_clean.csv (rows 1 and 7).
MTR_ROWS = REPO / "tests" / "data" / "chemberta2_mtr_training_rows.csv"
SETTINGS = CorpusSettings(exclude_task_molecules=True, holdout_fraction=0.25, max_molecules=0, seed=0, isomeric_smiles=True)


def test_task_molecules_are_removed_by_canonical_form_and_everything_is_counted():
    lines = ["CCO", "OCC", "c1ccccc1O", "Oc1ccccc1", "C1CC1", "CC(=O)O", "CCN", "not_smiles", "CCCC", "CCCl"]
    task = {"CCO", "Oc1ccccc1", "CCCCCCCC"}  # canonical; the corpus writes the first two differently too
    corpus = prepare_corpus(lines, task, SETTINGS, blank_lines=2)
    assert corpus.qc["lines"] == 12 and corpus.qc["blank_lines"] == 2
    assert corpus.qc["invalid"] == 1 and corpus.qc["invalid_examples"] == ["not_smiles"]
    assert corpus.qc["duplicates"] == 2  # OCC repeats CCO, Oc1ccccc1 repeats c1ccccc1O
    assert corpus.qc["task_molecules_removed"] == 2 and corpus.qc["task_molecules"] == 3
    assert corpus.qc["molecules"] == 5 and sorted(corpus.table["smiles"]) == ["C1CC1", "CC(=O)O", "CCCC", "CCCl", "CCN"]
    kept = prepare_corpus(lines, task, CorpusSettings(False, 0.25, 0, 0, True))
    assert kept.qc["task_molecules_removed"] is None and {"CCO", "Oc1ccccc1"} <= set(kept.table["smiles"])


def test_sample_and_holdout_follow_the_seed():
    lines = [f"C{'C' * n}O" for n in range(200)]
    settings = CorpusSettings(True, 0.1, 50, 3, True)
    first, again = prepare_corpus(lines, set(), settings), prepare_corpus(lines, set(), settings)
    other = prepare_corpus(lines, set(), CorpusSettings(True, 0.1, 50, 4, True))
    assert first.table.equals(again.table) and not first.table.equals(other.table)
    assert first.qc["left_out_by_max_molecules"] == 150 and len(first.table) == 50
    assert first.table["fold"].value_counts().to_dict() == {"train": 45, "holdout": 5}
    with pytest.raises(InputError, match="holdout_fraction"):
        prepare_corpus(lines[:3], set(), CorpusSettings(True, 0.1, 0, 0, True))


def test_task_molecules_are_every_molecule_of_every_task(tmp_path):
    """All folds of every task: no split method or seed changes what pre-training may see."""
    molecules = demo_molecules(40)
    molecules["smiles"] = [parsed.canonical for parsed in parse_all(molecules["smiles"].tolist(), True)]
    molecules = molecules.dropna(subset=["smiles"])  # as featurize writes molecules.csv: valid molecules only
    molecules.iloc[:25].to_csv(tmp_path / "first.csv", index=False)
    molecules.iloc[20:].to_csv(tmp_path / "second.csv", index=False)
    assert task_molecule_smiles([tmp_path / "first.csv", tmp_path / "second.csv"]) == set(molecules["smiles"])


def test_canonical_forms_match_task_featurization():
    smiles = demo_molecules(120)["smiles"].tolist()
    assert canonicalise(smiles, True, isolation=Isolation(2)) == [parsed.canonical for parsed in parse_all(smiles, True)]


def test_corpus_file_plain_or_gzipped_first_field(tmp_path):
    text = "CCO ethanol\n\n  c1ccccc1\nCCN\tamine\n"
    (tmp_path / "plain.txt").write_text(text)
    (tmp_path / "packed.txt.gz").write_bytes(gzip.compress(text.encode()))
    for name in ("plain.txt", "packed.txt.gz"):
        assert read_smiles_lines(tmp_path / name) == (["CCO", "c1ccccc1", "CCN"], 1)
    corpus = build_corpus(tmp_path / "plain.txt", [], CorpusSettings(False, 0.34, 0, 0, True))
    assert corpus.qc["molecules"] == 3
    with pytest.raises(InputError, match="no SMILES"):
        (tmp_path / "empty.txt").write_text("\n\n")
        read_smiles_lines(tmp_path / "empty.txt")


def test_descriptor_list_is_chemberta2s_199_rdkit_descriptors(shared_dir):
    names = load_descriptor_names(DESCRIPTOR_LIST)
    assert len(names) == 199 == len(set(names))
    assert names[:6] == ("MaxEStateIndex", "MinEStateIndex", "MaxAbsEStateIndex", "MinAbsEStateIndex", "qed", "MolWt")
    assert "Ipc" not in names and not any(name.startswith("BCUT2D") for name in names)
    reference = json.loads((shared_dir / "models" / "ChemBERTa-77M-MTR" / "config.json").read_text())
    listed = json.loads(DESCRIPTOR_LIST.read_text())
    assert listed["norm_mean"] == reference["norm_mean"] and listed["norm_std"] == reference["norm_std"]
    assert len(reference["id2label"]) == 199


def test_descriptors_reproduce_chemberta2_training_rows_in_order():
    names = load_descriptor_names(DESCRIPTOR_LIST)
    rows = pd.read_csv(MTR_ROWS, header=None)
    ours = compute_descriptors(rows[0].tolist(), names)
    published = rows.iloc[:, 1:].to_numpy(dtype=float)
    differs = ~np.isclose(ours, published, rtol=1e-4, atol=1e-4)
    # RDKit changed NumHAcceptors since (the bromo-benzimidazole of row 2 counts 2 acceptors now, 3 then)
    assert [names[column] for row, column in zip(*np.nonzero(differs))] == ["NumHAcceptors"]
    assert ours[0, names.index("MolWt")] == pytest.approx(Descriptors.MolWt(Chem.MolFromSmiles(rows[0][0])))


def test_unknown_descriptor_name_is_an_input_error(tmp_path):
    listing = tmp_path / "names.json"
    listing.write_text(json.dumps({"names": ["MolWt", "NoSuchDescriptor"]}))
    with pytest.raises(InputError, match="'NoSuchDescriptor' is not an RDKit descriptor"):
        load_descriptor_names(listing)


def test_normalisation_uses_the_training_part_and_marks_non_finite_values():
    values = np.array([[1.0, 5.0, 0.0], [3.0, 5.0, np.inf], [np.nan, 5.0, 2.0], [100.0, 7.0, 4.0]])
    train = np.array([True, True, True, False])
    result = normalise(values, train, ("a", "b", "c"))
    np.testing.assert_allclose(result.mean, [2.0, 5.0, 1.0])
    np.testing.assert_allclose(result.std, [1.0, 1.0, 1.0])  # b is constant in training: sd 1, not 0
    expected = np.array([[-1, 0, -1], [1, 0, np.nan], [np.nan, 0, 1], [98, 2, 3]], dtype=np.float32)
    np.testing.assert_array_equal(result.targets, expected)
    assert result.targets.dtype == np.float32
    assert result.qc["non_finite_values"] == 2 and result.qc["molecules_with_non_finite"] == 2
    assert result.qc["non_finite_by_descriptor"] == {"a": 1, "c": 1} and result.qc["constant_in_training"] == ["b"]
