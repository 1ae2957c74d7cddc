"""How long `gpuwise.plan.plan` takes once the step is profiled: the whole catalog, every count.

    python benchmarks/plan_speed.py [--repeats 5] [--db PATH]

Target: the whole catalog in under 1 s once profiled. The first call of each case
profiles the step once per distinct batch size (and, on a fresh results store, calibrates the
CPU once); the timed calls reuse those profiles (``ProfileCache``) and do everything else
again: load the catalog, read the results store and the cached CPU ceilings, make and cost
every option, the Pareto front and the recommendation.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from gpuwise.plan import PlanConfig, ProfileCache, plan

CASES = [
    PlanConfig.of(workload="resnet50", dataset_size=1_281_167, epochs=90),
    PlanConfig.of(workload="resnet50", dataset_size=1_281_167, epochs=90, batch_size=512, deadline_s=6 * 3600.0),
    PlanConfig.of(workload="llama-7b", dataset_size=2e9, unit="token", epochs=1, seq_len=4096, deadline_s=48 * 3600.0,
               budget_usd=5000.0),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--db", type=Path, default=None, help="Results store [default: a temporary file].")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "results.db"
        print("| case | options | profiles made | first call, profiling (s) | plan median (s) | min–max (s) |")
        print("|---|---|---|---|---|---|")
        for config in CASES:
            profiles = ProfileCache()
            start = time.perf_counter()
            first = plan(config, store_path=db, profiles=profiles)
            first_s = time.perf_counter() - start
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                plan(config, store_path=db, profiles=profiles)
                times.append(time.perf_counter() - start)
            name = f"{config.workload} batch {first.requested_batch_size}" + (
                f", deadline {config.deadline_s / 3600:g} h" if config.deadline_s else ""
            ) + (f", budget ${config.budget_usd:,.0f}" if config.budget_usd else "")
            print(
                f"| {name} | {len(first.options)} | {len(first.profiled_batches)} "
                f"({', '.join(map(str, first.profiled_batches))}) | {first_s:.1f} | {statistics.median(times):.3f} | "
                f"{min(times):.3f}–{max(times):.3f} |"
            )


if __name__ == "__main__":
    main()
