"""Tasks whose answer is known, to check attributions against (Sanchez-Lengeling et al., NeurIPS 2020): a molecule's
label is a SMARTS rule (it matches every `present` pattern and no `absent` one), and the atoms that decide it are
those the `present` patterns match. An attribution method is scored per positive molecule by the AUROC of its atom
weights against those atoms; random weights score about 0.5.
"""

from __future__ import annotations

import gzip
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from rdkit import Chem, rdBase

from chemlm.io import InputError, write_csv
from chemlm.metrics import auroc

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SmartsRule:
    """A label rule: every `present` pattern matches and no `absent` one does."""

    present: tuple[str, ...]
    absent: tuple[str, ...] = ()

    def patterns(self) -> tuple[list[Chem.Mol], list[Chem.Mol]]:
        compiled = []
        for group in (self.present, self.absent):
            patterns = [Chem.MolFromSmarts(text) for text in group]
            bad = [text for text, pattern in zip(group, patterns) if pattern is None]
            if bad:
                raise InputError(f"SMARTS '{bad[0]}' cannot be read")
            compiled.append(patterns)
        return compiled[0], compiled[1]

    def label(self, molecule: Chem.Mol) -> bool:
        present, absent = self.patterns()
        return all(molecule.HasSubstructMatch(pattern) for pattern in present) and not any(molecule.HasSubstructMatch(pattern) for pattern in absent)

    def decisive_atoms(self, molecule: Chem.Mol) -> set[int]:
        """The atoms any `present` pattern matches: where a positive molecule's label comes from."""
        present, _ = self.patterns()
        return {atom for pattern in present for match in molecule.GetSubstructMatches(pattern) for atom in match}


def read_corpus_sample(corpus: str | Path, molecules: int, seed: int) -> list[str]:
    """A seeded sample of `molecules` parseable SMILES of a one-SMILES-per-line corpus (plain or gzipped)."""
    opener = gzip.open if str(corpus).endswith(".gz") else open
    with opener(corpus, "rt") as handle:
        lines = [line.split()[0] for line in handle if line.strip()]
    order = np.random.default_rng(seed).permutation(len(lines))
    chosen = []
    with rdBase.BlockLogs():
        for index in order:
            if Chem.MolFromSmiles(lines[index]) is not None:
                chosen.append(lines[index])
            if len(chosen) == molecules:
                break
    return chosen


def write_rule_task(corpus: str | Path, rule: SmartsRule, molecules: int, seed: int, out_csv: str | Path) -> None:
    """A task table (`smiles`, `label`) of a corpus sample labelled by `rule`."""
    smiles = read_corpus_sample(corpus, molecules, seed)
    labels = [int(rule.label(Chem.MolFromSmiles(text))) for text in smiles]
    logger.info("%d molecules, %d positive (%s; not %s)", len(smiles), sum(labels), ", ".join(rule.present), ", ".join(rule.absent) or "-")
    write_csv(pd.DataFrame({"smiles": smiles, "label": labels}), out_csv)


def atom_auroc(weights: Sequence[float], decisive: set[int]) -> float:
    """AUROC of the atom weights against the decisive atoms; NaN where every atom or none is decisive."""
    truth = np.isin(np.arange(len(weights)), sorted(decisive)).astype(float)
    return auroc(truth, np.asarray(weights, dtype=float), context=None)
