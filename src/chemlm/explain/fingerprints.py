"""Atom weights of the fingerprint models: each atom's weight is the change in the prediction when the ECFP4
environments that contain it are removed from the molecule's fingerprint, as RDKit's
SimilarityMaps.GetAtomicWeightsForModel computes it, on the workflow's own features (chemlm.fingerprints: Morgan
radius 2, 2,048 folded bits; LightGBM's folded counts beside its whole-molecule descriptors, which stay as they are).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from rdkit import Chem
from rdkit.Chem import rdFingerprintGenerator

from chemlm.explain.explanations import ATOM_COLUMNS, MOLECULE_COLUMNS, output_position, targets_of
from chemlm.fingerprints import ECFP4_BITS, ECFP4_RADIUS, MAX_COUNT
from chemlm.io import InputError
from chemlm.tasks import prediction_header


def environment_counts(molecule: Chem.Mol) -> tuple[np.ndarray, np.ndarray]:
    """(folded ECFP4 counts (bits), per atom the count each bit loses without the environments containing it
    (atoms x bits)). A bit vector is the counts above 0."""
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=ECFP4_RADIUS, fpSize=ECFP4_BITS)
    output = rdFingerprintGenerator.AdditionalOutput()
    output.AllocateBitInfoMap()
    counts = generator.GetCountFingerprintAsNumPy(molecule, additionalOutput=output).astype(np.int64)
    lost = np.zeros((molecule.GetNumAtoms(), ECFP4_BITS), dtype=np.int64)
    for bit, environments in output.GetBitInfoMap().items():
        for center, radius in environments:
            if radius == 0:
                members = {center}
            else:
                atom_map: dict[int, int] = {}
                Chem.PathToSubmol(molecule, Chem.FindAtomEnvironmentOfRadiusN(molecule, radius, center), atomMap=atom_map)
                members = set(atom_map)
            for atom in members:
                lost[atom, bit] += 1
    return counts, lost


def atom_weights(molecule: Chem.Mol, predict: Callable[[np.ndarray], np.ndarray], counts: bool = False,
                 descriptors: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """(the prediction, each atom's weight): `predict` of the whole molecule's features, and that minus `predict` of
    them without the atom's environments. `predict` maps feature rows (n, features) to one output per row; features are ECFP4 bits, or with
    `counts` the folded counts (capped as chemlm.fingerprints caps them) followed by `descriptors`."""
    full, lost = environment_counts(molecule)
    without = np.maximum(full[None, :] - lost, 0)
    if counts:
        rows = np.minimum(np.vstack([full[None, :], without]), MAX_COUNT)
        if descriptors is not None:
            rows = np.hstack([rows, np.repeat(descriptors[None, :], len(rows), axis=0)])
    else:
        # a bit vector loses every bit an environment containing the atom sets (SimilarityMaps' xor)
        rows = np.vstack([full[None, :] > 0, (full[None, :] > 0) & (lost == 0)]).astype(np.uint8)
    predicted = np.asarray(predict(rows), dtype=float).reshape(len(rows))
    return float(predicted[0]), predicted[0] - predicted[1:]


def explain_fingerprint_models(models: Mapping[str, str | Path], molecules: pd.DataFrame, target: str | None = None,
                               descriptor_names: tuple[str, ...] = ()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(atoms, molecules) tables, as chemlm.explain.explanations writes them, of named stored fingerprint baselines
    (`model.skops`: the ECFP4 forest and logistic regression, LightGBM, whose descriptors `descriptor_names` lists)
    for `molecules` (`id`, canonical `smiles`, optionally each one's `target`). The output explained is the
    prediction: a probability or a value."""
    from chemlm.baselines import load_fitted
    from chemlm.descriptors import compute_descriptors
    from chemlm.tasks import TaskType

    atom_rows, molecule_rows = [], []
    for model, path in models.items():
        fitted = load_fitted(Path(path))
        names = [column.removeprefix(prediction_header("")) for column in fitted.columns]
        counts = fitted.baseline == "lgbm"
        if counts and not descriptor_names:
            raise InputError(f"{path}: a LightGBM baseline reads RDKit descriptors: name their list")
        for mol_id, smiles, wanted in zip(molecules["id"], molecules["smiles"], targets_of(molecules, target)):
            column = output_position(names, wanted, f"baseline '{fitted.baseline}'")
            name, kind = names[column], fitted.task.type
            explained = (f"probability of {name}=1" if kind in (TaskType.BINARY, TaskType.MULTILABEL)
                         else f"probability of class {name}" if kind is TaskType.MULTICLASS else f"predicted {name}")
            descriptors = compute_descriptors([smiles], descriptor_names)[0] if counts else None
            output, weights = atom_weights(Chem.MolFromSmiles(smiles), lambda rows: fitted.predict(rows)[:, column], counts, descriptors)
            atom_rows += [[model, mol_id, atom, float(weight)] for atom, weight in enumerate(weights)]
            molecule_rows.append([model, mol_id, smiles, explained, output, *([None] * (len(MOLECULE_COLUMNS) - 5))])
    return pd.DataFrame(atom_rows, columns=ATOM_COLUMNS), pd.DataFrame(molecule_rows, columns=MOLECULE_COLUMNS)
