"""The MLPerf BERT check in detail: what RESULTS.md and docs/accuracy.md quote about it.

    python benchmarks/mlperf_bert.py

For the 8-GPU BERT-large runs of ``gpuwise/data/published_mlperf_training.csv``, by GPU: the measured
throughputs (their range over submitters and rounds) and step (samples per GPU / throughput per GPU), the
model's prediction with the shipped constants for the pipeline ``gpuwise validate`` predicts (the step and its
parts); each GPU's measured and predicted ratio to the H100 and the H200; and the cross-GPU pairs that predict
a Blackwell GPU from a Hopper one (``gpuwise validate --frozen`` makes the pairs). Fits nothing. About 30 s.
"""

from __future__ import annotations

from collections import defaultdict
from importlib import resources
from pathlib import Path

from gpuwise.hardware.catalog import load_catalog
from gpuwise.predict.constants import shipped_efficiency
from gpuwise.predict.fit import row_pipeline, row_profile
from gpuwise.predict.published import load_published
from gpuwise.predict.step import ProfileCache, gpu_step, throughput
from gpuwise.validate import MODEL, mapped_rows, stats, validate_frozen

FILE = Path(str(resources.files("gpuwise.data").joinpath("published_mlperf_training.csv")))
GPUS = 8


def main() -> None:
    catalog, eff, profiles = load_catalog(), shipped_efficiency(), ProfileCache()
    mapped, _ = mapped_rows(load_published(FILE), catalog, profiles)
    by_gpu = defaultdict(list)
    for m in mapped:
        if m.workload == "bert-large" and m.row.num_gpus == GPUS:
            by_gpu[m.row.gpu].append(m)
    print(f"MLPerf BERT-large on {GPUS} GPUs ({FILE.name}), sequences/s over all GPUs; the model with the shipped "
          "constants")
    predicted, measured = {}, {}
    for gpu, rows in by_gpu.items():
        m = rows[0]  # same batch on every row of a GPU here: one prediction
        assert all(r.batch_size == m.batch_size for r in rows), gpu
        p = row_profile(m, profiles)
        step = gpu_step(p, catalog.get(gpu), eff, num_gpus=GPUS, gpus_per_node=GPUS, pipeline=row_pipeline(m, p))
        predicted[gpu] = throughput(p, step, tokens=False)
        measured[gpu] = sorted(r.row.throughput for r in rows)
        low, high = measured[gpu][0], measured[gpu][-1]
        c = step.compute
        print(f"  {gpu:<15} {len(rows)} runs, measured {low:,.0f}-{high:,.0f} (step {m.batch_size * GPUS / high:.3f}-"
              f"{m.batch_size * GPUS / low:.3f} s); predicted {predicted[gpu]:,.0f}, step {step.step_s:.3f} s = "
              f"compute-bound {c.compute_bound_s:.3f} + memory-bound {c.memory_bound_s:.3f} + kernel latency "
              f"{c.latency_s:.3f} + the rest")
    for base in ("H100-SXM5-80GB", "H200-SXM-141GB"):
        print(f"against {base}: measured ratio (lowest-highest over the runs), predicted ratio")
        for gpu in by_gpu:
            if gpu != base:
                lo = measured[gpu][0] / measured[base][-1]
                hi = measured[gpu][-1] / measured[base][0]
                print(f"  {gpu:<15} {lo:.2f}-{hi:.2f}x, predicted {predicted[gpu] / predicted[base]:.2f}x")
    pairs = validate_frozen(catalog, published=[FILE], profiles=profiles).pairs
    from_hopper = [p for p in pairs if p.generation == "Blackwell" and catalog.get(p.from_gpu).generation == "Hopper"]
    s = stats([p.errors()[MODEL] for p in from_hopper])
    signed = sorted(p.errors()[MODEL] for p in from_hopper)
    print(f"Blackwell predicted from Hopper: {s.count} pairs, |error| median {s.median:.1%}, p90 {s.p90:.1%}; "
          f"signed median {signed[len(signed) // 2]:+.1%}")


if __name__ == "__main__":
    main()
