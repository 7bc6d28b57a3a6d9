"""Drawings of atom attributions: each molecule with every model's atom weights as a colour map (RDKit's similarity
map drawing), the models side by side on the same molecule."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
from rdkit import Chem
from rdkit.Chem.Draw import SimilarityMaps, rdMolDraw2D

from chemlm.io import atomic_path

CELL = 320  # pixels per drawing
TITLE_CHARACTERS = 40  # of a model's name (its folder) above its drawing


def weight_map_png(smiles: str, weights: np.ndarray) -> bytes:
    """The molecule drawn with its atom weights as a colour map (positive green, negative pink, RDKit's default)."""
    molecule = Chem.MolFromSmiles(smiles)
    if molecule is None or molecule.GetNumAtoms() != len(weights):
        raise ValueError(f"{smiles}: {len(weights)} atom weights for {0 if molecule is None else molecule.GetNumAtoms()} atoms")
    drawer = rdMolDraw2D.MolDraw2DCairo(CELL, CELL)
    if len(weights) < 2 or not np.abs(weights).any():
        # drawn plain: RDKit's map needs two atoms, and its colour scale divides by the largest weight
        drawer.DrawMolecule(rdMolDraw2D.PrepareMolForDrawing(molecule))
    else:
        SimilarityMaps.GetSimilarityMapFromWeights(molecule, [float(weight) for weight in weights], draw2d=drawer)
    drawer.FinishDrawing()
    return drawer.GetDrawingText()


def draw_molecule(mol_id: str, atoms: pd.DataFrame, molecules: pd.DataFrame, out_png: str | Path) -> None:
    """One molecule, every model's weights side by side, each titled with the model and the output it explains."""
    from matplotlib.figure import Figure

    rows = molecules[molecules["id"] == mol_id]
    figure = Figure(figsize=(3.2 * len(rows), 3.6))
    for axis, row in zip(np.atleast_1d(figure.subplots(1, len(rows))), rows.itertuples()):
        weights = atoms[(atoms["model"] == row.model) & (atoms["id"] == mol_id)].sort_values("atom")["weight"].to_numpy()
        axis.imshow(png_pixels(weight_map_png(row.smiles, weights)))
        name = row.model if len(row.model) <= TITLE_CHARACTERS else "…" + row.model[-TITLE_CHARACTERS:]
        axis.set_title(f"{name}\n{row.explained}", fontsize=7)
        axis.axis("off")
    figure.suptitle(f"{mol_id}: {rows['smiles'].iloc[0]}", fontsize=8)
    with atomic_path(out_png) as temporary:
        figure.savefig(temporary, format="png", dpi=100)


def png_pixels(png: bytes) -> np.ndarray:
    from matplotlib.image import imread

    return imread(io.BytesIO(png), format="png")


def draw_grid(selected: pd.DataFrame, atoms: pd.DataFrame, molecules: pd.DataFrame, out_png: str | Path) -> None:
    """The selected molecules as rows (with why each was chosen) and the models as columns, each cell the molecule
    drawn with that model's atom weights."""
    from matplotlib.figure import Figure

    models = list(dict.fromkeys(molecules["model"]))
    figure = Figure(figsize=(2.6 * len(models), 2.8 * max(len(selected), 1)))
    axes = np.atleast_2d(figure.subplots(max(len(selected), 1), len(models), squeeze=False))
    for row, chosen in enumerate(selected.itertuples()):
        for column, model in enumerate(models):
            axis = axes[row, column]
            axis.axis("off")
            weights = atoms[(atoms["model"] == model) & (atoms["id"] == chosen.id)].sort_values("atom")["weight"].to_numpy()
            axis.imshow(png_pixels(weight_map_png(chosen.smiles, weights)))
            explained = molecules[(molecules["model"] == model) & (molecules["id"] == chosen.id)]["explained"].iloc[0]
            axis.set_title(f"{model}: {explained}" if row == 0 else explained, fontsize=6)
            if column == 0:
                axis.text(-0.05, 0.5, f"{chosen.id}\n{chosen.reason}", transform=axis.transAxes, ha="right", va="center", fontsize=7)
    figure.tight_layout()
    with atomic_path(out_png) as temporary:
        figure.savefig(temporary, format="png", dpi=90)
