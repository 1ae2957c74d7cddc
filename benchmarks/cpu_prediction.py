"""The analytical CPU prediction against a real `gpuwise bench` on this CPU.

    python benchmarks/cpu_prediction.py [--steps 5]

Target (issue 4): local CPU step time, median error <= 15% against `gpuwise bench`. For each
row: calibrate this CPU once (cached), predict the step from the profile and the measured
ceilings (`gpuwise.predict.step.cpu_step`), then time the real step with the bench protocol.
Run it on an otherwise idle machine: CPU times on a shared 2-core machine swing by several x.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from gpuwise.bench.calibrate import cached_ceilings
from gpuwise.bench.run import BenchConfig, bench
from gpuwise.config import Precision
from gpuwise.predict.step import CPU_EFFICIENCY, cpu_step
from gpuwise.profile import profile

ROWS: list[tuple[str, int, dict[str, int], Precision]] = [
    ("resnet18", 16, {}, Precision.FP32),
    ("resnet50", 8, {}, Precision.FP32),
    ("mobilenet_v3_large", 16, {}, Precision.FP32),
    ("vit_b_16", 4, {}, Precision.FP32),
    ("gpt2", 2, {"seq_len": 256}, Precision.FP32),
    ("bert-base", 8, {"seq_len": 128}, Precision.FP32),
    ("gnmt", 8, {"seq_len": 50}, Precision.FP32),
    ("resnet18", 16, {}, Precision.AMP_BF16),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "cpu_prediction.db"
        ceilings = cached_ceilings("cpu", db)
        print(f"CPU ceilings: {ceilings.matmul_tflops} TFLOP/s, {ceilings.memory_gbps:.1f} GB/s; "
              f"efficiencies: {CPU_EFFICIENCY.source}")
        print("| workload | batch | precision | predicted (ms) | measured median (ms) | p10–p90 (ms) | error |")
        print("|---|---|---|---|---|---|---|")
        errors = []
        for name, batch, shape, precision in ROWS:
            p = profile(name, batch_size=batch, precision=precision, **shape)
            predicted = cpu_step(p, ceilings).step_s
            r = bench(BenchConfig(workload=name, batch_size=batch, precision=precision, steps=args.steps, warmup=2,
                                  **shape), store_path=db)
            t = r.timing
            error = predicted / t.median_s - 1
            errors.append(abs(error))
            print(f"| {name} | {batch} | {precision.value} | {predicted * 1e3:.0f} | {t.median_s * 1e3:.0f} | "
                  f"{t.p10_s * 1e3:.0f}–{t.p90_s * 1e3:.0f} | {100 * error:+.0f}% |")
    print(f"\nmedian |error| {100 * statistics.median(errors):.0f}% over {len(errors)} rows (target <= 15%)")


if __name__ == "__main__":
    main()
