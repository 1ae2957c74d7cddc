"""The CPU step-time prediction against real `gpuwise bench` runs on this CPU.

    python benchmarks/cpu_prediction.py --measure [--steps 5]   # bench ROWS, write the benches file
    python benchmarks/cpu_prediction.py                          # held-out error on the benches file
    python benchmarks/cpu_prediction.py --from-db results.db     # make the benches file from stored CPU benches

Target (issue 4): local CPU step time, median error <= 15% against `gpuwise bench`. The CPU's
ceilings are measured (`gpuwise calibrate`); the efficiency constants relative to them are fitted
(`python -m gpuwise.predict.cpu_fit`). The error reported here is held out: each workload is
predicted by constants fitted on the benches of the other workloads only. The shipped constants'
in-sample error is printed beside it. Measure on an otherwise idle machine: CPU times on a shared
2-core machine swing by several x (the p10-p90 columns show it).
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from gpuwise.bench.calibrate import cached_ceilings
from gpuwise.bench.run import BenchConfig, bench
from gpuwise.config import OptimizerName, Precision
from gpuwise.hardware.local import cpu_model
from gpuwise.predict.cpu_fit import (
    BenchSet,
    CpuBench,
    held_out_by_workload,
    load_benches,
    profile_bench,
    shipped_cpu_efficiency,
)
from gpuwise.predict.step import cpu_step
from gpuwise.store import open_store

BENCHES = Path(__file__).parent / "results" / "cpu_benches.json"


@dataclass(frozen=True)
class Row:
    workload: str
    batch_size: int
    seq_len: int | None = None
    image_size: int | None = None
    precision: str = "fp32"
    optimizer: str = "adamw"


# Every family, several batch sizes, both CPU precisions: enough variety that holding one
# workload out still leaves each kind of op in the fit.
ROWS = [
    Row("resnet18", 16), Row("resnet18", 4), Row("resnet50", 8), Row("mobilenet_v3_large", 16),
    Row("efficientnet_b0", 8), Row("vit_b_16", 4), Row("unet", 1, image_size=256),
    Row("fcn_resnet50", 1, image_size=256), Row("ssd300", 2), Row("gpt2", 2, seq_len=256),
    Row("gpt2", 1, seq_len=128), Row("bert-base", 8, seq_len=128), Row("gnmt", 8, seq_len=50),
    Row("deepspeech2", 2, seq_len=200), Row("resnet18", 16, precision="amp-bf16"),
    Row("gpt2", 2, seq_len=256, precision="amp-bf16"), Row("llama-1b", 1, seq_len=128, optimizer="sgd"),
    # Small steps, as people train on a CPU: there the per-op dispatch weighs most.
    Row("resnet18", 16, image_size=64), Row("mobilenet_v3_large", 4, image_size=96), Row("gpt2", 2, seq_len=64),
    Row("bert-base", 2, seq_len=32),
]


def machine() -> str:
    return f"{cpu_model()}, {os.cpu_count()} logical CPUs"


def bench_set_from_db(db: Path, command: str) -> BenchSet:
    """Every stored CPU bench in ``db`` (the newest of each setting) with the ceilings stored there."""
    ceilings = cached_ceilings("cpu", db)
    newest: dict[tuple[object, ...], CpuBench] = {}
    with open_store(db) as store:
        for r in store.results(device="cpu"):
            b = CpuBench(
                workload=r.workload, batch_size=r.batch_size, precision=r.precision, optimizer=r.optimizer,
                seq_len=r.seq_len, image_size=r.image_size, median_s=r.timing.median_s, p10_s=r.timing.p10_s,
                p90_s=r.timing.p90_s,
            )
            newest[(b.workload, b.batch_size, b.precision, b.optimizer, b.seq_len, b.image_size)] = b
    return BenchSet(
        ceilings=ceilings, benches=tuple(newest.values()), machine=machine(),
        measured_at=datetime.now(UTC).isoformat(timespec="seconds"), command=command,
    )


def measure(steps: int, command: str) -> BenchSet:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "cpu_prediction.db"
        cached_ceilings("cpu", db)
        for row in ROWS:
            print(f"bench {row}", file=sys.stderr, flush=True)
            config = BenchConfig.of(
                workload=row.workload, batch_size=row.batch_size, precision=Precision.parse(row.precision),
                optimizer=OptimizerName.parse(row.optimizer), seq_len=row.seq_len, image_size=row.image_size,
                steps=steps, warmup=2,
            )
            bench(config, store_path=db)
        return bench_set_from_db(db, command)


def report(bench_set: BenchSet) -> None:
    c = bench_set.ceilings
    print(f"Benches: {len(bench_set.benches)} on {bench_set.machine}, measured {bench_set.measured_at} "
          f"(`{bench_set.command}`)")
    print(f"CPU ceilings then: {', '.join(f'{k} {v:.3f}' for k, v in c.matmul_tflops.items())} TFLOP/s, "
          f"{c.memory_gbps:.1f} GB/s copy")
    shipped = shipped_cpu_efficiency()
    print(f"Shipped constants: {shipped.source}\n")
    profiles = [profile_bench(b) for b in bench_set.benches]
    held = held_out_by_workload(bench_set.benches, profiles, c)
    print("| step | measured median (ms) | p10–p90 (ms) | held-out prediction (ms) | error | shipped (ms) | error |")
    print("|---|---|---|---|---|---|---|")
    held_errors, shipped_errors = [], []
    for (b, predicted), p in zip(held, [profiles[bench_set.benches.index(b)] for b, _ in held], strict=True):
        in_sample = cpu_step(p, c, shipped).step_s
        e_held, e_in = predicted / b.median_s - 1, in_sample / b.median_s - 1
        held_errors.append(abs(e_held))
        shipped_errors.append(abs(e_in))
        print(f"| {b.label} | {b.median_s * 1e3:.0f} | {b.p10_s * 1e3:.0f}–{b.p90_s * 1e3:.0f} | "
              f"{predicted * 1e3:.0f} | {100 * e_held:+.0f}% | {in_sample * 1e3:.0f} | {100 * e_in:+.0f}% |")
    print(f"\nheld out by workload: median |error| {100 * statistics.median(held_errors):.1f}%, "
          f"p90 {100 * statistics.quantiles(held_errors, n=10)[-1]:.1f}% over {len(held_errors)} steps "
          "(target: median <= 15%)")
    print(f"shipped constants, in sample: median |error| {100 * statistics.median(shipped_errors):.1f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--measure", action="store_true", help="Bench ROWS now and write the benches file.")
    parser.add_argument("--from-db", type=Path, help="Write the benches file from the CPU benches stored in a DB.")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--benches", type=Path, default=BENCHES)
    args = parser.parse_args()
    command = "python benchmarks/cpu_prediction.py " + shlex.join(sys.argv[1:])
    if args.measure or args.from_db:
        bench_set = measure(args.steps, command) if args.measure else bench_set_from_db(args.from_db, command)
        args.benches.parent.mkdir(parents=True, exist_ok=True)
        import json

        args.benches.write_text(json.dumps(bench_set.to_dict(), indent=1) + "\n")
        print(f"wrote {len(bench_set.benches)} benches to {args.benches}", file=sys.stderr)
    report(load_benches(args.benches))


if __name__ == "__main__":
    main()
