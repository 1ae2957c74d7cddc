"""How much of a published step's memory traffic fits a GPU's L2: the reach of the cache model.

An op whose bytes fit ``L2_USABLE`` of a GPU's L2 streams at the L2's bandwidth
(``gpuwise.predict.roofline.traffic_s``). For each setting of the published single-GPU rows
(``gpuwise/data/published_training_throughput.csv``: workload, batch, precision) this prints the share
of the step's bytes in such ops for the L2 sizes of the catalog's GPUs (V100 and RTX 3090 6 MB, A100
40, H100/H200 50, RTX 4090 72, L40S 96).

    python benchmarks/l2_share.py
"""

from __future__ import annotations

from gpuwise.predict.fit import row_profile
from gpuwise.predict.published import load_published, map_row
from gpuwise.predict.step import L2_USABLE, ProfileCache

L2_MB = (6, 40, 50, 72, 96)


def main() -> None:
    profiles = ProfileCache()
    seen = set()
    sizes = ", ".join(f"{mb} MB" for mb in L2_MB)
    print(f"share of a step's bytes in ops that fit {L2_USABLE:.0%} of an L2 of {sizes}")
    for row in load_published():
        m = map_row(row)
        if isinstance(m, str) or row.num_gpus != 1 or (key := (m.workload, m.batch_size, m.precision)) in seen:
            continue
        seen.add(key)
        p = row_profile(m, profiles)
        total = sum(g.count * g.bytes for g in p.ops)
        shares = [sum(g.count * g.bytes for g in p.ops if g.bytes <= mb * 2**20 * L2_USABLE) / total for mb in L2_MB]
        print(f"{m.workload:18s} batch {m.batch_size:4d} {m.precision!s:9s} " + "  ".join(f"{s:4.0%}" for s in shares))


if __name__ == "__main__":
    main()
