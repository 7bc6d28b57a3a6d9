"""Where each atom of a SMILES is written, so that token attributions of any tokenizer become atom attributions.

A SMILES is read lexically, as RDKit reads it: atoms are numbered in the order they are written (RDKit's atom index
of `Chem.MolFromSmiles(smiles)`), a bracket atom's element, isotope, chirality, hydrogens and charge inside its
brackets belong to it, and a plain explicit hydrogen `[H]` is no atom of its own (RDKit folds it into its neighbour),
unless the molecule is hydrogen alone. Everything else is a non-atom kind: ring closures (`1`, `%10`), bonds
(`-=#$:/\\~`), branches (`(`, `)`), the brackets themselves and fragment dots. A token (any tokenizer: ChemBERTa-2's
characters, where `Cl` is two tokens, or a regex tokenizer's whole `[nH]`) belongs to the atom whose characters it
covers, else to the non-atom kind of its characters; its attribution goes there.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ATOM, RING, BOND, BRANCH, BRACKET, DOT, SPECIAL = "atom", "ring closure", "bond", "branch", "bracket", "dot", "special token"
NON_ATOM_KINDS = (RING, BOND, BRANCH, BRACKET, DOT, SPECIAL)

LEXEME = re.compile(
    r"(?P<bracket>\[[^\]]*\])|(?P<organic>Br|Cl|[BCNOSPFI]|[bcnops]|\*)|(?P<ring>%\d\d|\d)|(?P<bond>[-=#$:/\\~])"
    r"|(?P<branch>[()])|(?P<dot>\.)"
)


@dataclass(frozen=True)
class CharacterMap:
    """Per character of a SMILES: the atom it belongs to (-1: none) and its kind (`ATOM` or a non-atom kind)."""

    smiles: str
    atom: np.ndarray
    kind: tuple[str, ...]
    n_atoms: int


def map_characters(smiles: str) -> CharacterMap:
    """The atom and kind of each character of `smiles`; raises ValueError on a character no SMILES has there."""
    atom = np.full(len(smiles), -1, dtype=int)
    kind = [""] * len(smiles)
    atoms: list[tuple[int, int, bool]] = []  # (start, end, is a plain [H]) in the order written
    position = 0
    while position < len(smiles):
        match = LEXEME.match(smiles, position)
        if match is None:
            raise ValueError(f"SMILES {smiles!r}: cannot read character {position + 1} ({smiles[position]!r})")
        start, end = match.span()
        group = match.lastgroup
        if group == "bracket":
            kind[start] = kind[end - 1] = BRACKET
            atoms.append((start + 1, end - 1, smiles[start + 1 : end - 1] == "H"))
        elif group == "organic":
            atoms.append((start, end, False))
        else:
            kind[start:end] = [{"ring": RING, "bond": BOND, "branch": BRANCH, "dot": DOT}[group]] * (end - start)
        position = end
    only_hydrogen = all(plain_hydrogen for *_, plain_hydrogen in atoms)
    number = 0
    for start, end, plain_hydrogen in atoms:
        kept = only_hydrogen or not plain_hydrogen
        kind[start:end] = [ATOM if kept else BRACKET] * (end - start)
        atom[start:end] = number if kept else -1
        number += kept
    return CharacterMap(smiles, atom, tuple(kind), number)


def token_spans(smiles: str, tokens: Sequence[str]) -> list[tuple[int, int] | None]:
    """The characters each token covers, found in order (a tokenizer that drops characters, as ChemBERTa-2's drops
    those missing from its vocabulary, leaves them to no token); None for a token not in the SMILES (special tokens)."""
    spans: list[tuple[int, int] | None] = []
    position = 0
    for token in tokens:
        found = smiles.find(token, position) if token else -1
        if found < 0:
            spans.append(None)
            continue
        spans.append((found, found + len(token)))
        position = found + len(token)
    return spans


@dataclass(frozen=True)
class AtomAttribution:
    """A molecule's attribution per atom (RDKit's order for its SMILES as written) and the share of the total absolute
    attribution that went to each non-atom kind."""

    weights: np.ndarray
    non_atom_share: dict[str, float]


def atom_attribution(smiles: str, tokens: Sequence[str], attributions: Sequence[float]) -> AtomAttribution:
    """Token attributions summed per atom: a token covering an atom's characters gives it its attribution (a token
    covering two atoms, as a multi-atom token would, splits it evenly); the others count by their kind."""
    if len(tokens) != len(attributions):
        raise ValueError(f"{len(tokens)} tokens but {len(attributions)} attributions")
    characters = map_characters(smiles)
    weights = np.zeros(characters.n_atoms)
    by_kind = dict.fromkeys(NON_ATOM_KINDS, 0.0)
    for span, value in zip(token_spans(smiles, tokens), attributions):
        if span is None:
            by_kind[SPECIAL] += abs(value)
            continue
        covered = sorted(set(characters.atom[span[0] : span[1]]) - {-1})
        if covered:
            weights[covered] += value / len(covered)
        else:
            by_kind[characters.kind[span[0]]] += abs(value)
    total = float(np.abs(weights).sum() + sum(by_kind.values()))
    return AtomAttribution(weights, {name: value / total if total else 0.0 for name, value in by_kind.items()})
