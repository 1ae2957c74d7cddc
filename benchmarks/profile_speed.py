"""How long `gpuwise profile` takes, as a user runs it: wall time of the whole command
(Python start-up included) and its peak RSS.

    python benchmarks/profile_speed.py [--repeats 3]

Targets (issue 2): resnet50 under 5 s; llama-7b --seq-len 2048 under 20 s; llama-70b with
peak RSS under 2 GiB — on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import time

CASES: list[tuple[list[str], str]] = [
    (["profile", "resnet50"], "wall < 5 s"),
    (["profile", "llama-7b", "--seq-len", "2048"], "wall < 20 s"),
    (["profile", "llama-70b"], "peak RSS < 2 GiB"),
]


def run_once(args: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (GiB) of one run of the gpuwise command."""
    exe = shutil.which("gpuwise")
    assert exe, "install gpuwise first (pip install -e .)"
    start = time.perf_counter()
    proc = subprocess.Popen([exe, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall_s = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"gpuwise {' '.join(args)} failed: {proc.stderr.read().decode() if proc.stderr else ''}")
    return wall_s, usage.ru_maxrss / 1024**2  # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print("| command | target | wall median (s) | wall min–max (s) | peak RSS (GiB) | runs |")
    print("|---|---|---|---|---|---|")
    for case, target in CASES:
        runs = [run_once(case) for _ in range(args.repeats)]
        walls = [w for w, _ in runs]
        rss = max(r for _, r in runs)
        print(
            f"| `gpuwise {' '.join(case)}` | {target} | {statistics.median(walls):.2f} | "
            f"{min(walls):.2f}–{max(walls):.2f} | {rss:.2f} | {len(runs)} |"
        )


if __name__ == "__main__":
    main()
