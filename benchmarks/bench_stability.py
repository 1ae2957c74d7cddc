"""Is `gpuwise bench` repeatable? Run the same CPU bench several times, each in a fresh
process as a user would, and report the spread of the medians.

    python benchmarks/bench_stability.py [--runs 5] [--workload resnet18] [--batch-size 16]

Target (issue 3): the spread of the medians, (max - min) / median of the medians, within 10%.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workload", default="resnet18")
    parser.add_argument("--batch-size", default="16")
    parser.add_argument("--steps", default="10")
    parser.add_argument("--warmup", default="3")
    args = parser.parse_args()
    exe = shutil.which("gpuwise")
    assert exe, "install gpuwise first (pip install -e .)"
    medians: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "stability.db"
        command = [exe, "bench", args.workload, "--device", "cpu", "--batch-size", args.batch_size,
                   "--steps", args.steps, "--warmup", args.warmup, "--db", str(db), "--json"]
        print(f"command: {' '.join(command[1:-3])} (x{args.runs}, each a fresh process)")
        print("| run | median step (ms) | p10–p90 (ms) | samples/s |")
        print("|---|---|---|---|")
        for run in range(1, args.runs + 1):
            out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            result = json.loads(out)["results"][0]
            t = result["timing"]
            medians.append(t["median_s"])
            print(f"| {run} | {t['median_s'] * 1e3:.1f} | {t['p10_s'] * 1e3:.1f}–{t['p90_s'] * 1e3:.1f} | "
                  f"{result['samples_per_s']:.1f} |")
    center = statistics.median(medians)
    spread = (max(medians) - min(medians)) / center
    print(f"\nmedian of medians {center * 1e3:.1f} ms; spread of medians (max-min)/median = {100 * spread:.1f}% "
          f"(target <= 10%: {'met' if spread <= 0.10 else 'NOT met'})")


if __name__ == "__main__":
    main()
