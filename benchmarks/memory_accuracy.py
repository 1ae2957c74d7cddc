"""How close is gpuwise's fake-tensor memory estimate to a real training step?

For each row (workload, batch size, precision) a fresh Python process:

1. estimates the step on fake tensors (``profile_step(fake=True)``): the peak of live
   storages and its breakdown;
2. runs a real warm-up step on the CPU (``profile_step(fake=False)``), so that the measured
   step is a steady-state one: library code paged in, oneDNN kernels JIT-compiled and cached;
3. runs the measured real step with the same live-storage tracker (``profile_step(fake=False)``),
   and around that step alone reads the process RSS: just before it (model, optimizer state
   and batch resident, gradients ``None``) and its high-water mark during it (reset by
   writing 5 to ``/proc/self/clear_refs``, read as ``VmHWM``).

Two comparisons, like with like:

* total: the estimate's peak vs the tracker's peak on the real step (tensor storages only);
* growth: the estimate's peak minus what is resident when the step starts (weights, optimizer
  state, batch) vs the RSS growth during the real step, which sees everything the process
  allocates: tensor storages, kernel scratch buffers and workspaces, Python objects.

Errors are (estimate - measured) / measured. The last column is the RSS growth of the warm-up
step, the process's first, for comparison. The children run with glibc's malloc settings
that make the RSS follow what is allocated (see ``MALLOC_ENV``). Run
``python benchmarks/memory_accuracy.py`` (all rows, about 15 minutes on 2 cores) or
``--quick`` (2 rows, under a minute).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

MiB = 1024 * 1024
TARGET = 0.10  # every row within 10%

# glibc keeps freed memory for reuse, and the OS backs a page only once it is written; either
# way the RSS would not follow the bytes a step allocates. The children run with:
# - MALLOC_MMAP_THRESHOLD_=65536: every block of 64 KiB or more gets its own mmap and is
#   munmap'ed when freed. Setting it also turns off glibc's dynamic threshold, which would
#   otherwise rise (up to 32 MiB) after the first large free and send later tensors to the heap.
# - MALLOC_TRIM_THRESHOLD_=0: the free space at the top of a heap is returned on every free.
# - MALLOC_PERTURB_=165: malloc fills each block it hands out, so every allocated page is
#   resident at once, as on a GPU, where allocated is used. Without it, allocations that the
#   step never writes in full are missing from the RSS: oneDNN's LSTM workspace keeps room for
#   the diff states that backward writes layer by layer; after GNMT's forward at batch 16 only
#   147 of its 508 MiB are resident (mincore), and the RSS growth reads 22% under the estimate.
# Blocks under 64 KiB still come from the heaps, where a freed block stays resident until the
# blocks around it are freed too (fragmentation); see the deepspeech2 row at batch 2.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0", "MALLOC_PERTURB_": "165"}


@dataclass(frozen=True)
class Case:
    workload: str
    batch_size: int
    precision: str = "fp32"
    seq_len: int | None = None
    image_size: int | None = None
    note: str = ""  # printed under the table


SMALL_TENSORS = (
    "batch 2: the GRU runs step by step on (2 x 800) tensors, 6 KiB each, from glibc's heap, "
    "which keeps freed blocks resident (fragmentation) and adds the autograd graph's small "
    "objects; the tracker agrees with the estimate"
)

# Two batch sizes per workload, every family, sized for a 2-core CPU. Image sizes below the
# defaults keep segmentation and detection steps to seconds. A row whose workload is not
# registered is reported as failed.
CASES: tuple[Case, ...] = (
    Case("resnet18", 8),
    Case("resnet18", 16),
    Case("resnet18", 16, "amp-bf16"),
    Case("resnet50", 8),
    Case("resnet50", 16),
    Case("mobilenet_v3_large", 8),
    Case("mobilenet_v3_large", 16),
    Case("vit_b_16", 4),
    Case("vit_b_16", 8),
    Case("vit_b_16", 8, "amp-bf16"),
    Case("unet", 2, image_size=256),
    Case("unet", 4, image_size=256),
    Case("fcn_resnet50", 2, image_size=256),
    Case("fcn_resnet50", 4, image_size=256),
    Case("ssd300", 2),
    Case("ssd300", 4),
    Case("fasterrcnn_resnet50_fpn", 1, image_size=512),
    Case("fasterrcnn_resnet50_fpn", 2, image_size=512),
    Case("deepspeech2", 24, seq_len=200),
    Case("deepspeech2", 32, seq_len=200),
    Case("deepspeech2", 2, seq_len=200, note=SMALL_TENSORS),
    Case("gnmt", 8),
    Case("gnmt", 16),
    Case("gpt2", 2, seq_len=256),
    Case("gpt2", 4, seq_len=256),
    Case("gpt2", 2, "amp-bf16", seq_len=256),
    Case("bert-base", 4),
    Case("bert-base", 8),
)
QUICK: tuple[Case, ...] = (Case("resnet18", 8), Case("bert-base", 4))


@dataclass(frozen=True)
class Result:
    case: Case
    estimate_bytes: int  # fake-tensor peak
    estimate_growth_bytes: int  # ... minus weights, optimizer state and batch
    tracker_bytes: int  # live-storage peak of the real step
    rss_growth_bytes: int  # VmHWM during the real step minus VmRSS before it
    rss_file_growth_bytes: int  # file-backed part of the growth (library code paged in)
    cold_rss_growth_bytes: int  # the same on the warm-up step (the process's first step)
    peak_phase: str  # of the estimate
    seconds: float


# ---------------------------------------------------------------- inside one child process


def _status_kib() -> dict[str, int]:
    with open("/proc/self/status") as f:
        text = f.read()
    return {k: int(v) for k, v in re.findall(r"^(Vm\w+|Rss\w+):\s+(\d+) kB", text, re.M)}


def _reset_hwm() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)


def _malloc_trim() -> None:
    ctypes.CDLL("libc.so.6").malloc_trim(0)


@dataclass
class RssProbe:
    before_kib: int = 0
    hwm_kib: int = 0
    file_before_kib: int = 0
    file_after_kib: int = 0

    @contextmanager
    def around(self) -> Iterator[None]:
        gc.collect()
        _malloc_trim()
        status = _status_kib()
        self.before_kib, self.file_before_kib = status["VmRSS"], status["RssFile"]
        _reset_hwm()
        yield
        status = _status_kib()
        self.hwm_kib, self.file_after_kib = status["VmHWM"], status["RssFile"]

    @property
    def growth_bytes(self) -> int:
        return (self.hwm_kib - self.before_kib) * 1024


def measure(case: Case) -> Result:
    from gpuwise.config import Precision, StepConfig
    from gpuwise.profile.run import profile_step
    from gpuwise.workloads import get_workload

    start = time.perf_counter()
    w = get_workload(case.workload)
    config = StepConfig(
        workload=w.name,
        batch_size=case.batch_size,
        precision=Precision.parse(case.precision),
        seq_len=case.seq_len,
        image_size=case.image_size,
    )
    estimate = profile_step(w, config, fake=True).memory
    cold, warm = RssProbe(), RssProbe()
    profile_step(w, config, fake=False, around_step=cold.around)
    real = profile_step(w, config, fake=False, around_step=warm.around).memory
    resident = estimate.weights_bytes + estimate.optimizer_state_bytes + estimate.inputs_bytes
    return Result(
        case=case,
        estimate_bytes=estimate.peak_bytes,
        estimate_growth_bytes=estimate.peak_bytes - resident,
        tracker_bytes=real.peak_bytes,
        rss_growth_bytes=warm.growth_bytes,
        rss_file_growth_bytes=(warm.file_after_kib - warm.file_before_kib) * 1024,
        cold_rss_growth_bytes=cold.growth_bytes,
        peak_phase=estimate.peak_phase,
        seconds=time.perf_counter() - start,
    )


# ---------------------------------------------------------------- the parent: one child per row


def run_case(case: Case, timeout_s: float) -> Result | str:
    """A fresh process per row; returns the result, or why there is none."""
    env = {**os.environ, **MALLOC_ENV}
    cmd = [sys.executable, __file__, "--one", json.dumps(asdict(case))]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return f"timed out after {timeout_s:.0f} s"
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        err = proc.stderr.strip().splitlines() or ["no output"]
        print("\n".join(err[-15:]), file=sys.stderr)
        return f"failed: {err[-1][:100]}"
    data = json.loads(lines[-1])
    data["case"] = Case(**data["case"])
    return Result(**data)


def _err(estimate: int, measured: int) -> float:
    return (estimate - measured) / measured if measured else float("nan")


def flag(error: float) -> str:
    return "" if abs(error) <= TARGET else " **"


HEADER = (
    "| workload | batch | precision | estimate MiB | tracker peak MiB | error | "
    "RSS growth MiB | est. growth MiB | error | cold RSS growth MiB |"
)


def format_row(r: Result | str, case: Case, mark: str = "") -> str:
    shape = f" (seq {case.seq_len})" if case.seq_len else f" ({case.image_size} px)" if case.image_size else ""
    head = f"| {case.workload}{shape}{mark} | {case.batch_size} | {case.precision} |"
    if isinstance(r, str):
        return head + f" {r} | | | | | | |"
    e_total = _err(r.estimate_bytes, r.tracker_bytes)
    e_growth = _err(r.estimate_growth_bytes, r.rss_growth_bytes)
    return (
        head
        + f" {r.estimate_bytes / MiB:.1f} | {r.tracker_bytes / MiB:.1f} | {e_total:+.1%}{flag(e_total)} |"
        + f" {r.rss_growth_bytes / MiB:.1f} | {r.estimate_growth_bytes / MiB:.1f} | {e_growth:+.1%}{flag(e_growth)} |"
        + f" {r.cold_rss_growth_bytes / MiB:.1f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 rows, a smoke test")
    parser.add_argument("--only", nargs="*", default=None, help="only these workloads")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per row")
    parser.add_argument("--json", default=None, help="also write the raw results here")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # a child: one Case as JSON
    args = parser.parse_args()

    if args.one is not None:
        result = measure(Case(**json.loads(args.one)))
        print(json.dumps(asdict(result)))
        return

    cases = QUICK if args.quick else CASES
    if args.only:
        cases = tuple(c for c in cases if c.workload in args.only)
    print(HEADER)
    print("|" + "---|" * HEADER.count(" | ") + "---|")
    results: list[Result] = []
    notes: list[str] = []
    start = time.perf_counter()
    for case in cases:
        r = run_case(case, args.timeout)
        if case.note:
            notes.append(case.note)
        print(format_row(r, case, f" [{len(notes)}]" if case.note else ""), flush=True)
        if isinstance(r, Result):
            results.append(r)
        else:
            print(f"  {case.workload}: {r}", file=sys.stderr)
    total_ok = sum(abs(_err(r.estimate_bytes, r.tracker_bytes)) <= TARGET for r in results)
    growth_ok = sum(abs(_err(r.estimate_growth_bytes, r.rss_growth_bytes)) <= TARGET for r in results)
    print()
    for i, note in enumerate(notes, 1):
        print(f"[{i}] {note}")
    file_growth = max((r.rss_file_growth_bytes for r in results), default=0)
    print(
        f"{len(results)} rows measured of {len(cases)}; within {TARGET:.0%} (** outside): "
        f"{total_ok} vs the tracker, {growth_ok} vs the RSS growth. File-backed RSS growth in a "
        f"measured step: at most {file_growth / MiB:.1f} MiB. {time.perf_counter() - start:.0f} s."
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump([asdict(r) for r in results], f, indent=1)


if __name__ == "__main__":
    main()
