"""Atom-level explanations: the SMILES character and token map against RDKit's atom order."""

from __future__ import annotations

import re

import numpy as np
import torch
import pytest
from rdkit import Chem

from chemlm.io import InputError
from chemlm.explain.smiles_map import ATOM, BOND, BRACKET, BRANCH, DOT, RING, SPECIAL, atom_attribution, map_characters, token_spans

HARD_SMILES = [
    "ClCC(Br)c1ccc(Cl)cc1",  # Cl and Br: two characters, one atom
    "c1cc[nH]c1",  # a bracket aromatic atom with its hydrogen
    "C[N+](=O)[O-]",  # charges in brackets
    "C1CC2CC3CC4CC5CC6CC7CC8CC9CC%10CC%11CCC%11C%10C9C8C7C6C5C4C3C2C1",  # two-digit ring closures
    "N[C@@H](C)C(=O)O",  # stereo
    "C/C=C/C",  # directional bonds
    "[Na+].[Cl-]",  # two fragments
    "[2H]C([2H])([2H])O",  # isotopes are atoms
    "[H]OC([H])=O",  # a plain explicit hydrogen is no atom of its own
    "[H][H]",  # ... unless the molecule is hydrogen alone
    "[13CH3]c1ccccc1",
]


def rdkit_symbols(smiles: str) -> list[str]:
    return [atom.GetSymbol() for atom in Chem.MolFromSmiles(smiles).GetAtoms()]


@pytest.mark.parametrize("smiles", HARD_SMILES)
def test_each_atom_is_where_rdkit_numbers_it(smiles):
    characters = map_characters(smiles)
    symbols = rdkit_symbols(smiles)
    assert characters.n_atoms == len(symbols)
    for index, symbol in enumerate(symbols):
        written = "".join(character for character, atom in zip(smiles, characters.atom) if atom == index)
        # the characters of atom `index` name its element (aromatic atoms in lower case)
        assert re.match(rf"^\d*{symbol}", written, flags=re.IGNORECASE), (smiles, index, symbol, written)


def test_non_atom_characters_have_their_kind():
    characters = map_characters("C1=CC(Cl)=C[nH]1.[Na+]")
    kinds = dict(zip(range(len(characters.smiles)), characters.kind))
    assert [kinds[i] for i in (1, 2, 5, 8, 11, 15, 16, 21)] == [RING, BOND, BRANCH, BRANCH, BRACKET, RING, DOT, BRACKET]
    assert characters.kind[6:8] == (ATOM, ATOM) and characters.atom[6] == characters.atom[7] == 3  # Cl is atom 3


def test_chemberta2_character_tokens_and_regex_tokens_give_the_same_atom_weights():
    """ChemBERTa-2's tokenizer reads `Cl` as C (dropping l) and [nH] as n: a character token's attribution goes to its
    atom; a regex tokenizer's whole `Cl` or `[nH]` gives the same atom the same weight."""
    smiles = "Clc1cc[nH]c1"
    characters = ["<s>", "C", "c", "1", "c", "c", "n", "c", "1", "</s>"]
    regex = ["<s>", "Cl", "c", "1", "c", "c", "[nH]", "c", "1", "</s>"]
    values = [0.5, 2.0, 1.0, 0.25, 1.0, 1.0, 3.0, 1.0, 0.25, 0.5]
    assert token_spans(smiles, characters)[1] == (0, 1) and token_spans(smiles, characters)[6] == (7, 8)
    by_characters, by_regex = atom_attribution(smiles, characters, values), atom_attribution(smiles, regex, values)
    assert by_characters.weights.tolist() == by_regex.weights.tolist() == [2.0, 1.0, 1.0, 1.0, 3.0, 1.0]
    total = sum(abs(value) for value in values)
    assert by_characters.non_atom_share[RING] == pytest.approx(0.5 / total)
    assert by_characters.non_atom_share[SPECIAL] == pytest.approx(1.0 / total)
    assert by_regex.non_atom_share[BRACKET] == 0.0  # the whole [nH] token is the atom's


def test_a_bond_token_counts_as_a_bond_and_a_dropped_bracket_as_nothing():
    weights = atom_attribution("C=[N+]", ["C", "=", "N", "+"], [1.0, -0.5, 2.0, 1.0])
    assert weights.weights.tolist() == [1.0, 3.0] and weights.non_atom_share[BOND] == pytest.approx(0.5 / 4.5)
    with pytest.raises(ValueError, match="2 attributions"):
        atom_attribution("CC", ["C", "C", "C"], [1.0, 1.0])
    with pytest.raises(ValueError, match="cannot read character 2"):
        map_characters("C?C")
    assert np.isclose(sum(atom_attribution("CCO", ["C", "C", "O"], [1, 1, 1]).non_atom_share.values()), 0.0)


@pytest.fixture(scope="module")
def binary_model(tmp_path_factory):
    from test_predict import fine_tune
    from test_training import TASKS

    return fine_tune(tmp_path_factory.mktemp("explain"), TASKS["binary"], 0) / "model"


def test_integrated_gradients_are_complete_and_map_to_atoms(binary_model):
    from chemlm.explain.gradients import integrated_gradients
    from chemlm.predict import FineTunedModel

    model = FineTunedModel.load(binary_model)
    smiles = ["Clc1ccc(CC(=O)O)cc1", "C[N+](=O)[O-]"]
    found = integrated_gradients(model, smiles, steps=32)
    for text, attribution in zip(smiles, found):
        assert attribution.complete, (text, attribution.delta)
        assert attribution.values.sum() == pytest.approx(attribution.output - attribution.baseline_output, abs=0.05 * abs(attribution.output - attribution.baseline_output) + 1e-3)
        probability = float(model.predict([text], torch.device("cpu"))[0, 0])
        assert attribution.output == pytest.approx(np.log(probability / (1 - probability)), abs=1e-4)  # the log-odds
        atoms = atom_attribution(text, attribution.tokens, attribution.values)
        assert len(atoms.weights) == Chem.MolFromSmiles(text).GetNumAtoms()
        assert atoms.weights.sum() + sum_of_non_atoms(text, attribution) == pytest.approx(attribution.values.sum())
    with pytest.raises(InputError, match="no class or label 'sweet'"):
        integrated_gradients(model, smiles, target="sweet")


def sum_of_non_atoms(smiles, attribution) -> float:
    """The signed attribution of the tokens that cover no atom."""
    characters = map_characters(smiles)
    return sum(value for span, value in zip(token_spans(smiles, attribution.tokens), attribution.values)
               if span is None or (characters.atom[span[0]:span[1]] < 0).all())


def test_fingerprint_atom_weights_are_rdkits_similarity_map_weights_on_our_features():
    from rdkit import DataStructs
    from rdkit.Chem.Draw import SimilarityMaps

    from chemlm.explain.fingerprints import atom_weights, environment_counts
    from chemlm.fingerprints import ecfp4_chunk

    smiles = "Clc1ccc(CC(=O)N2CCOCC2)cc1"
    molecule = Chem.MolFromSmiles(smiles)
    full, _ = environment_counts(molecule)
    assert ((full > 0).astype(np.uint8) == ecfp4_chunk([smiles])[0]).all()
    assert (np.minimum(full, 255) == ecfp4_chunk([smiles], counts=True)[0]).all()
    coefficients = np.random.default_rng(0).normal(size=2048)

    def linear(rows):
        return rows @ coefficients

    def as_array(vector):
        array = np.zeros(2048)
        DataStructs.ConvertToNumpyArray(vector, array)
        return array

    expected = SimilarityMaps.GetAtomicWeightsForModel(
        molecule, lambda mol, atom: SimilarityMaps.GetMorganFingerprint(mol, atom, radius=2, fpType="bv", nBits=2048),
        lambda vector: linear(as_array(vector)[None, :])[0])
    assert atom_weights(molecule, linear)[1] == pytest.approx(expected)


def test_a_model_that_looks_at_chlorine_alone_weighs_the_chlorine_alone():
    """A model whose prediction is the chlorine atom's radius-0 bit: the chlorine gets weight 1, every other atom 0;
    with counts and descriptors (LightGBM's features) the same, the descriptors left as they are."""
    from rdkit.Chem import rdFingerprintGenerator

    from chemlm.explain.fingerprints import atom_weights

    molecule = Chem.MolFromSmiles("Clc1ccc(CC(=O)O)cc1")
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    output = rdFingerprintGenerator.AdditionalOutput()
    output.AllocateBitInfoMap()
    generator.GetFingerprint(molecule, additionalOutput=output)
    chlorine_bit = next(bit for bit, environments in output.GetBitInfoMap().items() if (0, 0) in environments)  # atom 0, radius 0
    output, weights = atom_weights(molecule, lambda rows: rows[:, chlorine_bit].astype(float))
    assert output == 1.0
    assert weights.tolist() == [1.0] + [0.0] * (molecule.GetNumAtoms() - 1)
    descriptors = np.array([7.0, 3.0])
    counted = atom_weights(molecule, lambda rows: rows[:, chlorine_bit] + rows[:, -2], counts=True, descriptors=descriptors)[1]
    assert counted.tolist() == weights.tolist()


@pytest.mark.integration
def test_the_explain_command_on_a_model_folder_alone_in_a_fresh_directory(binary_model, chlorine_models, tmp_path):
    """Two copies of a model side by side on a .smi file (one invalid row, counted and left out) and on --smiles."""
    import shutil
    import subprocess
    import sys

    import pandas as pd

    fresh = tmp_path / "fresh"
    for name in ("model-a", "model-b"):
        shutil.copytree(binary_model, fresh / name)
    shutil.copy(chlorine_models[0] / "lgbm.skops", fresh / "lgbm.skops")
    (fresh / "molecules.smi").write_text("OCC ethanol\nnot_smiles bad\nClc1ccccc1 chlorobenzene\n")
    run = subprocess.run([sys.executable, "-m", "chemlm.cli", "explain", "--model", "model-a", "--model", "model-b", "--model", "lgbm.skops",
                          "--input", "molecules.smi", "--output", "out", "--steps", "16"], cwd=fresh, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "2 molecules explained into out" in run.stderr
    molecules = pd.read_csv(fresh / "out" / "molecules.csv")
    assert molecules[["model", "id", "smiles"]].values.tolist() == [
        [model, name, smiles] for model in ("model-a", "model-b", "lgbm.skops") for name, smiles in (("ethanol", "CCO"), ("chlorobenzene", "Clc1ccccc1"))]
    transformers = molecules["model"] != "lgbm.skops"
    assert (molecules[transformers]["explained"] == "log-odds of HIV_active=1").all() and molecules[transformers]["complete"].all()
    assert (molecules[~transformers]["explained"] == "probability of chlorine=1").all()
    atoms = pd.read_csv(fresh / "out" / "atoms.csv")
    assert len(atoms) == 3 * (3 + 7)
    a, b = (atoms[atoms["model"] == name]["weight"].to_numpy() for name in ("model-a", "model-b"))
    assert np.allclose(a, b)  # the same weights: the same model, deterministic
    assert pd.read_csv(fresh / "out" / "invalid.csv")["id"].tolist() == ["bad"]
    assert {path.name for path in (fresh / "out" / "drawings").iterdir()} == {"ethanol.png", "chlorobenzene.png"}
    run = subprocess.run([sys.executable, "-m", "chemlm.cli", "explain", "--model", "model-a", "--smiles", "CCN", "--output", "one",
                          "--target", "nothing"], cwd=fresh, capture_output=True, text=True, timeout=300)
    assert run.returncode == 2 and "no class or label 'nothing'" in run.stderr.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def chlorine_models(tmp_path_factory) -> tuple:
    """(folder, descriptor names): an ECFP4 forest and LightGBM trained on 'contains chlorine' (the answer built into
    the labels), stored in the folder as ecfp4_rf.skops and lgbm.skops."""
    directory = tmp_path_factory.mktemp("chlorine")
    return directory, chlorine_baselines(directory)


def chlorine_baselines(directory) -> tuple[str, ...]:
    from chemlm.baselines import fit_baseline, save_fitted
    from chemlm.descriptors import compute_descriptors, load_descriptor_names
    from chemlm.fingerprints import ecfp4
    from chemlm.tasks import TaskSpec, TaskType
    from helpers import REPO, demo_molecules

    molecules = demo_molecules(240)[["mol_id", "smiles"]]
    molecules = molecules[[Chem.MolFromSmiles(text) is not None for text in molecules["smiles"]]].reset_index(drop=True)
    molecules["chlorine"] = molecules["smiles"].str.contains("Cl").astype(float)
    molecules["fold"] = np.where(np.arange(len(molecules)) % 5 == 0, "valid", "train")
    task = TaskSpec("chlorine", "-", "smiles", ("chlorine",), TaskType.BINARY)
    bits, _ = ecfp4(molecules["smiles"].tolist(), molecules["mol_id"].tolist())
    counts, _ = ecfp4(molecules["smiles"].tolist(), molecules["mol_id"].tolist(), counts=True)
    names = load_descriptor_names(REPO / "resources" / "chemberta2-mtr-descriptors.json")
    with_descriptors = np.hstack([counts, compute_descriptors(molecules["smiles"].tolist(), names)])
    for baseline, values, settings in (("ecfp4_rf", bits, {"n_estimators": 50, "max_features": "sqrt"}),
                                       ("lgbm", with_descriptors, {"num_leaves": 7, "learning_rate": 0.1, "n_estimators": 50, "feature_fraction": 1.0})):
        save_fitted(fit_baseline(baseline, task, molecules, values, 0, 1, settings), directory / f"{baseline}.skops")
    return names


def test_a_forest_that_learned_chlorine_weighs_the_chlorine_most_and_is_explained_from_its_stored_file(chlorine_models):
    """The stored baselines read back without their task (the stored file names it) and explained: the chlorine atom
    has the largest weight."""
    import pandas as pd

    from chemlm.explain.fingerprints import explain_fingerprint_models

    tmp_path, names = chlorine_models
    smiles = "Clc1ccc(CC(=O)NCCO)cc1"
    atoms, explained = explain_fingerprint_models({str(tmp_path / name): tmp_path / name for name in ("ecfp4_rf.skops", "lgbm.skops")},
                                                  pd.DataFrame({"id": ["m"], "smiles": [smiles]}), descriptor_names=names)
    assert explained["explained"].tolist() == ["probability of chlorine=1"] * 2 and (explained["output"] > 0.5).all()
    for path in ("ecfp4_rf.skops", "lgbm.skops"):
        weights = atoms[atoms["model"] == str(tmp_path / path)].sort_values("atom")["weight"].to_numpy()
        assert len(weights) == Chem.MolFromSmiles(smiles).GetNumAtoms() and int(np.argmax(weights)) == 0, (path, weights)  # atom 0: Cl
    with pytest.raises(InputError, match="no class or label 'sweet'"):
        explain_fingerprint_models({"rf": tmp_path / "ecfp4_rf.skops"}, pd.DataFrame({"id": ["m"], "smiles": [smiles]}), target="sweet")


def write_predictions(path, rows: dict) -> str:
    import pandas as pd

    table = pd.DataFrame(rows)
    table.insert(1, "fold", "test")
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False)
    return str(path)


def test_the_molecules_chosen_are_those_the_reasons_name(tmp_path):
    """Binary: m1 the models disagree on, m2 the most confident true positive, m3 the most confident false positive,
    m4 the most uncertain; each molecule listed once, under the first reason that picks it."""
    import pandas as pd

    from chemlm.explain.selection import select_molecules
    from chemlm.tasks import TaskSpec, TaskType

    task = TaskSpec("hiv", "-", "smiles", ("active",), TaskType.BINARY)
    ids = ["m1", "m2", "m3", "m4", "m5"]
    truth = [1.0, 1.0, 0.0, 0.0, 0.0]
    paths = {"a": write_predictions(tmp_path / "a.csv", {"mol_id": ids, "y:active": truth, "p:active": [0.9, 0.95, 0.8, 0.52, 0.1]}),
             "b": write_predictions(tmp_path / "b.csv", {"mol_id": ids[::-1], "y:active": truth[::-1], "p:active": [0.1, 0.49, 0.7, 0.9, 0.1]})}
    pd.DataFrame({"mol_id": ids, "smiles": ["C", "CC", "CCC", "CCCC", "CCCCC"]}).to_csv(tmp_path / "molecules.csv", index=False)
    selected = select_molecules(paths, tmp_path / "molecules.csv", task, 1)
    assert selected[["id", "reason"]].values.tolist() == [["m1", "models disagree"], ["m2", "confident true positive"],
                                                          ["m3", "confident false positive"], ["m4", "most uncertain"]]
    assert selected["mean"].tolist() == pytest.approx([0.5, 0.925, 0.75, 0.505]) and selected["smiles"].tolist() == ["C", "CC", "CCC", "CCCC"]


def test_multiclass_molecules_are_explained_for_their_true_class(tmp_path):
    import pandas as pd

    from chemlm.explain.selection import select_molecules
    from chemlm.tasks import TaskSpec, TaskType

    task = TaskSpec("taste", "-", "smiles", ("taste",), TaskType.MULTICLASS)
    ids = ["s1", "s2", "b1"]
    paths = {"a": write_predictions(tmp_path / "a.csv", {"mol_id": ids, "y:taste": ["sweet", "sweet", "bitter"],
                                                          "p:bitter": [0.1, 0.8, 0.45], "p:sweet": [0.9, 0.2, 0.55]})}
    pd.DataFrame({"mol_id": ids, "smiles": ["C", "CC", "CCC"]}).to_csv(tmp_path / "molecules.csv", index=False)
    selected = select_molecules(paths, tmp_path / "molecules.csv", task, 1)
    # one model: no disagreement to rank (sd 0 for all); s1 is the surest right, s2 the surest wrong, b1 the least sure
    assert selected[["id", "reason", "target"]].values.tolist() == [["s1", "confident true positive", "sweet"],
                                                                       ["s2", "confident false positive", "sweet"], ["b1", "most uncertain", "bitter"]]


def test_rule_tasks_label_by_smarts_and_know_the_decisive_atoms(tmp_path):
    import math

    import pandas as pd

    from chemlm.explain.ground_truth import SmartsRule, atom_auroc, write_rule_task

    benzene = SmartsRule(("c1ccccc1",))
    amide_without_halogen = SmartsRule(("[CX3](=O)[NX3]",), ("[F,Cl,Br,I]",))
    phenol, amide, chloro_amide = (Chem.MolFromSmiles(text) for text in ("Oc1ccccc1", "CC(=O)NC", "ClCC(=O)NC"))
    assert benzene.label(phenol) and not benzene.label(Chem.MolFromSmiles("OC1CCCCC1"))
    assert benzene.decisive_atoms(phenol) == {1, 2, 3, 4, 5, 6}
    assert amide_without_halogen.label(amide) and not amide_without_halogen.label(chloro_amide)
    assert amide_without_halogen.decisive_atoms(amide) == {1, 2, 3}
    assert atom_auroc([0.1, 0.9, 0.8, 0.7, 0.0], {1, 2, 3}) == 1.0
    assert atom_auroc([0.9, 0.1, 0.2, 0.3, 1.0], {1, 2, 3}) == 0.0
    assert math.isnan(atom_auroc([0.3, 0.2], {0, 1}))
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("Oc1ccccc1\nCC(=O)NC\nnot_smiles\nClCC(=O)NC\nCCO\n")
    write_rule_task(corpus, benzene, 10, 0, tmp_path / "benzene.csv")
    table = pd.read_csv(tmp_path / "benzene.csv")
    assert sorted(table["smiles"]) == sorted(["Oc1ccccc1", "CC(=O)NC", "ClCC(=O)NC", "CCO"])  # the invalid line is left out
    assert dict(zip(table["smiles"], table["label"])) == {"Oc1ccccc1": 1, "CC(=O)NC": 0, "ClCC(=O)NC": 0, "CCO": 0}
    with pytest.raises(InputError, match="SMARTS 'c1cc' cannot be read"):
        SmartsRule(("c1cc",)).label(phenol)


def test_attributions_are_scored_against_the_known_answer_beside_random_ones(chlorine_models, tmp_path):
    """The forest that learned 'contains chlorine' finds the chlorine atoms (atom AUROC above 0.9); LightGBM less so
    (its halogen descriptors, which no atom's removal changes, carry part of the answer), yet above random weights,
    which score about 0.5."""
    import pandas as pd

    from chemlm.explain.ground_truth import SmartsRule
    from chemlm.explain.task_explanations import RANDOM, ExplainedModels, write_attribution_check
    from chemlm.tasks import TaskSpec, TaskType
    from helpers import demo_molecules

    models, names = chlorine_models
    molecules = demo_molecules(240)[["mol_id", "smiles"]]
    molecules = molecules[[Chem.MolFromSmiles(text) is not None for text in molecules["smiles"]]].reset_index(drop=True)
    molecules["chlorine"] = molecules["smiles"].str.contains("Cl").astype(float)
    molecules.to_csv(tmp_path / "molecules.csv", index=False)
    folds = np.array(["train", "valid", "test", "test"])[np.arange(len(molecules)) % 4]
    pd.DataFrame({"mol_id": molecules["mol_id"], "fold": folds}).to_csv(tmp_path / "split.csv", index=False)
    task = TaskSpec("chlorine", "-", "smiles", ("chlorine",), TaskType.BINARY)
    stored = ExplainedModels(baselines={"ecfp4_rf": models / "ecfp4_rf.skops", "lgbm": models / "lgbm.skops"}, descriptor_names=names)
    write_attribution_check(task, SmartsRule(("[Cl]",)), tmp_path / "molecules.csv", tmp_path / "split.csv", stored, 20, 16, "pad", 0,
                            tmp_path / "per_molecule.csv", tmp_path / "summary.csv")
    summary = pd.read_csv(tmp_path / "summary.csv").set_index("model")
    assert list(summary.index) == ["ecfp4_rf", "lgbm", RANDOM]
    assert summary.loc["ecfp4_rf", "atom_auroc_mean"] > 0.9
    assert 0.35 < summary.loc[RANDOM, "atom_auroc_mean"] < 0.65 < summary.loc["lgbm", "atom_auroc_mean"]
    per_molecule = pd.read_csv(tmp_path / "per_molecule.csv")
    positives = int(((folds == "test") & (molecules["chlorine"] == 1)).sum())
    assert per_molecule.groupby("model", sort=False).size().tolist() == [min(20, positives)] * 3


def test_a_rule_task_needs_the_task_that_reads_it():
    from chemlm.config import ConfigError, Study
    from helpers import tiny_config

    config = {**tiny_config(), "rule_tasks": {"benzene": {"corpus": "corpus.txt", "present": ["c1ccccc1"]}}}
    with pytest.raises(ConfigError, match="config key 'tasks.benzene': the rule task 'benzene' needs a task that reads it"):
        Study.from_config(config)
    config["tasks"] = {**config["tasks"], "benzene": {"source": "results/rule_tasks/benzene.csv", "smiles_column": "smiles",
                                                      "label_columns": ["label"], "type": "binary"}}
    study = Study.from_config(config)
    assert study.rule_tasks["benzene"] == {"corpus": "corpus.txt", "present": ["c1ccccc1"], "absent": [], "molecules": 20000, "seed": 0}


def test_each_models_top_library_molecules_join_the_chosen_ones_once(tmp_path):
    import pandas as pd

    from chemlm.explain.selection import library_tops

    columns = {"row": [0, 1, 2], "id": ["a", "b", "c"], "input_smiles": ["CCO", "x", "CCN"], "smiles": ["CCO", "", "CCN"],
               "valid": [True, False, True], "reason": ["", "invalid SMILES", ""]}
    pd.DataFrame({**columns, "mean:active": [0.2, None, 0.9], "sd:active": [0.1, None, 0.05], "calibrated:active": [0.1, None, 0.6]}).to_csv(tmp_path / "m1.csv", index=False)
    pd.DataFrame({**columns, "mean:active": [0.8, None, 0.7], "sd:active": [0.0, None, 0.0], "calibrated:active": [0.5, None, 0.4]}).to_csv(tmp_path / "m2.csv", index=False)
    tops = library_tops({("lib", "MLM"): tmp_path / "m1.csv", ("lib", "ecfp4_rf"): tmp_path / "m2.csv"}, 1)
    assert tops[["id", "smiles", "reason", "target"]].values.tolist() == [["lib:c", "CCN", "top of lib by MLM", "active"],
                                                                           ["lib:a", "CCO", "top of lib by ecfp4_rf", "active"]]
    assert tops["mean"].tolist() == [0.9, 0.8]
    assert library_tops({("lib", "MLM"): tmp_path / "m1.csv", ("lib", "x"): tmp_path / "m1.csv"}, 1)["id"].tolist() == ["lib:c"]


def test_a_molecule_of_one_atom_or_without_weights_is_drawn_plain():
    from chemlm.explain.drawing import weight_map_png

    for smiles, weights in (("C", [0.5]), ("CCO", [0.0, 0.0, 0.0]), ("CCO", [0.1, -0.2, 0.3])):
        assert weight_map_png(smiles, np.array(weights)).startswith(b"\x89PNG")
    with pytest.raises(ValueError, match="2 atom weights for 3 atoms"):
        weight_map_png("CCO", np.array([0.1, 0.2]))
