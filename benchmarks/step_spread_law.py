"""Which law for the wait for the slowest GPU fits the published multi-GPU rows best.

gpuwise prices the wait as E[max of n normals] standard deviations of one GPU's step, the deviation
growing with the square root of the step (``gpuwise.predict.parallel.sync_wait_s``). This compares
σ ∝ step^(1 − α) for α from 0 (a spread proportional to the step) to 1 (a fixed jitter in seconds), each
with one spread per workload family fitted by least squares on the log scaling efficiencies of the
published multi-GPU rows against their single-GPU rows (``gpuwise.predict.fit.scaling_pairs``, with the
shipped constants), and prints each law's summed squared error. α = 0.5 is the shipped law.

    python benchmarks/step_spread_law.py
"""

from __future__ import annotations

import math

from scipy.optimize import minimize_scalar

from gpuwise.hardware.catalog import load_catalog
from gpuwise.predict.fit import ScalingPair, scaling_pairs, shipped_efficiency
from gpuwise.predict.parallel import SPREAD_REFERENCE_S, slowest_of
from gpuwise.predict.published import load_published
from gpuwise.predict.step import ProfileCache
from gpuwise.validate import mapped_rows

ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)


def predicted(pair: ScalingPair, spread: float, alpha: float) -> float:
    """The scaling efficiency with a deviation of spread × (0.1 s)^α × step^(1 − α) (α = 0.5: ``sync_wait_s``)."""
    wait = spread * slowest_of(pair.num_gpus) * SPREAD_REFERENCE_S ** alpha * pair.compute_s ** (1 - alpha)
    return pair.compute_s / (pair.compute_s + pair.communication_s + wait)


def family_error(members: list[ScalingPair], alpha: float) -> float:
    """The least summed squared log error one spread for the family reaches."""
    def loss(log_spread: float) -> float:
        return sum(math.log(predicted(m, math.exp(log_spread), alpha) / m.measured) ** 2 for m in members)

    return float(minimize_scalar(loss, bounds=(math.log(1e-4), math.log(5.0)), method="bounded").fun)


def main() -> None:
    catalog = load_catalog()
    rows, _ = mapped_rows(load_published(), catalog)
    pairs = scaling_pairs(rows, catalog, shipped_efficiency(), ProfileCache())
    families: dict[str, list[ScalingPair]] = {}
    for pair in pairs:
        families.setdefault(pair.family, []).append(pair)
    print(f"{len(pairs)} multi-GPU rows with a single-GPU partner, {len(families)} families")
    for family, members in sorted(families.items()):
        measured = [m.measured for m in members]
        collectives = [predicted(m, 0.0, 0.5) for m in members]
        print(f"  {family}: published scaling {min(measured):.0%}-{max(measured):.0%} of linear; "
              f"the collectives alone {min(collectives):.1%}-{max(collectives):.1%}")
    for alpha in ALPHAS:
        total = sum(family_error(members, alpha) for members in families.values())
        print(f"alpha {alpha:.2f}: summed squared log error {total:.4f}")


if __name__ == "__main__":
    main()
