"""The one benchmark protocol, shared by `bench`, `train` and the project's benchmarks.

Warm-up steps are run and discarded (they pay for allocation, cuDNN autotuning and
lazy initialisation); the device is synchronised before every clock read, so a step's
time is the device's work and not the launch queue's; the median and the 10th/90th
percentiles of the timed steps are reported, never the mean of a few.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from gpuwise.errors import GpuwiseError
from gpuwise.records import Timing


def check_counts(steps: int, warmup: int) -> None:
    if steps < 1:
        raise GpuwiseError(f"--steps must be at least 1, got {steps}")
    if warmup < 1:
        raise GpuwiseError(f"--warmup must be at least 1 (the first steps pay for allocation), got {warmup}")


def time_steps(
    step: Callable[[], object],
    sync: Callable[[], None],
    *,
    steps: int,
    warmup: int,
    clock: Callable[[], float] = time.perf_counter,
) -> Timing:
    """Run ``warmup`` untimed steps, then time ``steps`` steps one by one."""
    check_counts(steps, warmup)
    for _ in range(warmup):
        step()
    times: list[float] = []
    for _ in range(steps):
        sync()
        start = clock()
        step()
        sync()
        times.append(clock() - start)
    return summarize(times, num_warmup=warmup)


def summarize(times: list[float], *, num_warmup: int) -> Timing:
    """Median and 10th/90th percentiles (inclusive method: within the observed range)."""
    median = statistics.median(times)
    if len(times) >= 2:
        deciles = statistics.quantiles(times, n=10, method="inclusive")
        p10, p90 = deciles[0], deciles[-1]
    else:
        p10 = p90 = median
    return Timing(
        median_s=median, p10_s=p10, p90_s=p90, num_steps=len(times), num_warmup=num_warmup,
        step_times_s=tuple(times),
    )


def cuda_sync(device: str) -> Callable[[], None]:
    """The synchronise call for a device: CUDA waits for its queue; the CPU has none."""
    if device.startswith("cuda"):
        import torch

        return lambda: torch.cuda.synchronize(device)
    return lambda: None
