"""How long the quick commands take, as a user runs them: wall time of the whole process, Python start-up
included, and whether torch was imported (it must not be for these).

    python benchmarks/cli_startup.py [--repeats 5] [--out benchmarks/results/cli_startup.json]

Target: each under 1 s. Runs ``python -m gpuwise`` from this checkout (no install needed). Times depend on
the machine's load; the file records the machine and the date with them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES = (["--help"], ["--version"], ["gpus"], ["workloads"], ["plan", "--help"], ["train", "--help"])


def run_once(args: list[str]) -> tuple[float, bool]:
    """Wall seconds of one run, and whether it imported torch (from ``-X importtime``)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "gpuwise", *args], capture_output=True,
                          text=True, env=env, check=False)
    wall_s = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"gpuwise {' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    torch = any(line.rsplit("|", 1)[-1].strip() == "torch" for line in proc.stderr.splitlines())
    return wall_s, torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None, help="Also write the results here as JSON.")
    args = parser.parse_args()
    rows = []
    print(f"{'command':<24} {'median':>8} {'max':>8}  torch imported")
    for case in CASES:
        runs = [run_once(case) for _ in range(args.repeats)]
        times = [t for t, _ in runs]
        row = {"command": "gpuwise " + " ".join(case), "median_s": statistics.median(times), "max_s": max(times),
               "torch_imported": any(torch for _, torch in runs), "repeats": args.repeats}
        rows.append(row)
        print(f"{row['command']:<24} {row['median_s']:>7.2f}s {row['max_s']:>7.2f}s  {row['torch_imported']}")
    if args.out:
        record = {"measured_at": datetime.now(UTC).isoformat(timespec="seconds"), "cpu_count": os.cpu_count(),
                  "python": platform.python_version(), "loadavg_1min": os.getloadavg()[0], "cases": rows}
        args.out.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
