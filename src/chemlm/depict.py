"""The top-ranked molecules of a scored library, drawn as 2-D structures with RDKit (one PNG grid)."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
from rdkit import Chem
from rdkit.Chem.Draw import rdMolDraw2D

from chemlm.io import atomic_path
from chemlm.scoring import rank_column, top_predictions

logger = logging.getLogger(__name__)

COLUMNS_PER_ROW = 4
CELL = (300, 260)


def legend(row: pd.Series, rank: str) -> str:
    name = rank.split(":", 1)[1]
    text = f"{row['id']}: {row[f'mean:{name}']:.3g} ± {row[f'sd:{name}']:.2g}"
    if pd.notna(row.get("max_similarity")):
        text += f", sim {row['max_similarity']:.2f}"
    return text


def draw_top_predictions(predictions_csv: str | Path, top: int, out_png: str | Path, title: str) -> None:
    table = top_predictions(predictions_csv, top)
    rank = rank_column(list(table.columns)) if len(table) else None
    molecules = [Chem.MolFromSmiles(smiles) for smiles in table.get("smiles", [])]
    rows = max(1, -(-len(molecules) // COLUMNS_PER_ROW))
    drawer = rdMolDraw2D.MolDraw2DCairo(CELL[0] * COLUMNS_PER_ROW, CELL[1] * rows, CELL[0], CELL[1])
    drawer.drawOptions().legendFontSize = 16
    if molecules:
        drawer.DrawMolecules(molecules, legends=[legend(row, rank) for _, row in table.iterrows()])
    drawer.FinishDrawing()
    with atomic_path(out_png) as temporary:
        temporary.write_bytes(drawer.GetDrawingText())
    logger.info("%s: %d top molecules drawn by %s", title, len(molecules), rank)
