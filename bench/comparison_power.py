"""How often the comparison finds a difference (chemlm.comparison), by simulation: 5x5 cross-validation studies
(25 split instances) of 4 models whose metric shares an instance effect (what the split makes easy or hard) and has
its own noise, as in tests/test_comparison.py. With no true difference: the family-wise false-positive rate of
Tukey's HSD after repeated-measures ANOVA and of Conover's test with Holm's correction, each test alone (both should
be about alpha, 0.05; the workflow's choice between them by the ANOVA's checks, and its gate of Conover by Friedman's
test, only make fewer findings). With one model better by one sd of a model's metric over the instances: the power of each to find that pair.

  .venv/bin/python bench/comparison_power.py [--studies 1000] [--instances 25] [--models 4]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from chemlm.comparison import conover_p_values, rm_anova, tukey_intervals  # noqa: E402

INSTANCE_SD = 0.02  # the split instance's effect on every model
NOISE_SD = 0.02  # each model's own noise on an instance


def simulate(studies: int, instances: int, models: int, shift: float, seed: int) -> tuple[float, float, float, float]:
    """(Tukey: any pair significant, the shifted pair significant; Conover: the same), as fractions of `studies`."""
    rng = np.random.default_rng(seed)
    found = np.zeros(4)
    for _ in range(studies):
        values = 0.8 + rng.normal(0, INSTANCE_SD, (instances, 1)) + rng.normal(0, NOISE_SD, (instances, models))
        values[:, 0] += shift
        table = pd.DataFrame(values, columns=[f"m{index}" for index in range(models)])
        tukey = {(first, second): lower > 0 or upper < 0
                 for first, second, _, lower, upper in tukey_intervals(table, rm_anova(table), 0.05)}
        conover = conover_p_values(table) < 0.05
        found += [any(tukey.values()), tukey[("m0", "m1")], bool(conover.to_numpy()[np.triu_indices(models, 1)].any()),
                  bool(conover.loc["m0", "m1"])]
    return tuple(found / studies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--studies", type=int, default=1000)
    parser.add_argument("--instances", type=int, default=25)
    parser.add_argument("--models", type=int, default=4)
    args = parser.parse_args()
    one_sd = float(np.hypot(INSTANCE_SD, NOISE_SD))
    null = simulate(args.studies, args.instances, args.models, 0.0, 1)
    shifted = simulate(args.studies, args.instances, args.models, one_sd, 2)
    print(f"{args.studies} simulated studies, {args.instances} split instances, {args.models} models, alpha 0.05")
    print(f"no true difference: any pair significant: Tukey {null[0]:.3f}, Conover-Holm {null[2]:.3f}")
    print(f"one model better by one sd ({one_sd:.4f}): that pair found: Tukey {shifted[1]:.3f}, Conover-Holm {shifted[3]:.3f}")


if __name__ == "__main__":
    main()
