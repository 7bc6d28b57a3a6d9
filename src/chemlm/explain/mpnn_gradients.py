"""Atom attributions of chemprop's D-MPNN: integrated gradients over its atom features, summed per atom.

chemprop builds each molecule's graph from RDKit's molecule of its SMILES, so its atoms are in RDKit's order, as every
other model's attributions are. The path runs from all-zero atom features (the bond features stay) to the molecule's,
by the midpoint rule; the output explained is a logit, as for the transformers (chemlm.explain.gradients): a binary or
multi-label task's label logit, a multi-class task's class logit, a regression task's (training-fold scaled) value.
Completeness is checked and the steps doubled where it fails, as there.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from chemlm.explain.explanations import ATOM_COLUMNS, MOLECULE_COLUMNS, explained_name, output_position, targets_of
from chemlm.explain.gradients import MAX_DOUBLINGS, is_complete
from chemlm.tasks import TaskType


def atom_integrated_gradients(folder, smiles: str, target: str | None, steps: int) -> tuple[np.ndarray, float, float, float, int]:
    """(attribution per atom, output, baseline output, completeness gap, steps) of one SMILES."""
    from chemlm.models.mpnn import batches

    model = folder.model.eval()
    names = folder.targets.classes if folder.targets.task_type is TaskType.MULTICLASS else folder.targets.labels
    position = output_position(names, target, "chemprop model")
    multiclass = folder.targets.task_type is TaskType.MULTICLASS
    graph, atom_descriptors, molecule_descriptors = next(batches([smiles], 1, torch.device("cpu")))
    features = graph.V.clone()
    start = torch.zeros_like(features)

    def output(atom_features: torch.Tensor) -> torch.Tensor:
        graph.V = atom_features
        logits = model.predictor.train_step(model.fingerprint(graph, atom_descriptors, molecule_descriptors))
        return logits[0, 0, position] if multiclass else logits[0, position]

    with torch.no_grad():
        at_input, at_baseline = float(output(features)), float(output(start))
    n_steps = steps
    for doubling in range(MAX_DOUBLINGS + 1):
        gradient = torch.zeros_like(features)
        for alpha in (torch.arange(n_steps, dtype=features.dtype) + 0.5) / n_steps:
            point = (start + alpha * (features - start)).requires_grad_(True)
            gradient += torch.autograd.grad(output(point), point)[0]
        per_atom = ((features - start) * gradient / n_steps).sum(dim=1).detach().double().numpy()
        gap = float(per_atom.sum() - (at_input - at_baseline))
        if is_complete(gap, at_input, at_baseline) or doubling == MAX_DOUBLINGS:
            break
        n_steps *= 2
    graph.V = features
    return per_atom, at_input, at_baseline, gap, n_steps


def explain_mpnn_models(models: Mapping[str, str | Path], molecules: pd.DataFrame, target: str | None = None,
                        steps: int = 50) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(atoms, molecules) tables, as chemlm.explain.explanations writes them, of named chemprop model folders."""
    from chemlm.models.mpnn import load_mpnn

    atom_rows, molecule_rows = [], []
    for name, path in models.items():
        folder = load_mpnn(Path(path))
        labels = folder.targets.labels
        for mol_id, smiles, wanted in zip(molecules["id"], molecules["smiles"], targets_of(molecules, target)):
            per_atom, at_input, at_baseline, gap, used = atom_integrated_gradients(folder, smiles, wanted, steps)
            explained = explained_name(folder.targets.task_type.value, wanted, labels)
            atom_rows += [[name, mol_id, atom, float(weight)] for atom, weight in enumerate(per_atom)]
            molecule_rows.append([name, mol_id, smiles, explained, at_input, at_baseline, gap, is_complete(gap, at_input, at_baseline), used,
                                  *([None] * (len(MOLECULE_COLUMNS) - 9))])
    return pd.DataFrame(atom_rows, columns=ATOM_COLUMNS), pd.DataFrame(molecule_rows, columns=MOLECULE_COLUMNS)
