"""Which SMILES variants of a molecule a model reads: its canonical SMILES, then the distinct ones among its seeded
random SMILES in the order drawn. Plain Python, so fine-tuning and scoring (training environment, no RDKit) make the
same variants as the chemistry environment that draws them (chemlm.augment).

A molecule's first `count` variants come from its first `count - 1` draws. The draws of a larger count start with
those of a smaller one, so whoever holds a molecule's draws and knows `count` makes the same variants.
"""

from __future__ import annotations

from collections.abc import Sequence

SEED = 20240601  # of every random SMILES draw; a model folder records it


def distinct_variants(canonical: str, random_smiles: Sequence[str], count: int) -> list[str]:
    """A molecule's first `count` variants: its canonical SMILES, then the distinct random SMILES of its first
    `count - 1` draws (fewer when the molecule has fewer spellings)."""
    drawn = random_smiles[: max(0, count - 1)]
    return [canonical, *dict.fromkeys(spelling for spelling in drawn if spelling != canonical)]
