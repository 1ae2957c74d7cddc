"""Helpers for tests: ad-hoc workloads that are not registered, stored measurements, the CLI in-process."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from gpuwise.bench.result import BenchResult, Hardware, Software, Timing
from gpuwise.workloads import Shape, Workload


def make_workload(
    build: Callable[[], nn.Module],
    make_batch: Callable[[int], object],
    loss: Callable[[nn.Module, object], torch.Tensor],
    name: str = "test",
) -> Workload:
    """A workload that is not registered: for testing the profiler on a known model."""
    return Workload(
        name=name,
        family="test",
        sample_unit="sample",
        default_batch_size=4,
        summary="test model",
        build_model=lambda shape: build(),
        make_batch=lambda n, shape: make_batch(n),
        forward_loss=loss,
        default_shape=Shape(),
    )


def run_cli(*args: str) -> tuple[int, str, str]:
    """Run the gpuwise command in-process: exit code, stdout, stderr. A crash re-raises, it is never an exit."""
    from typer.testing import CliRunner

    from gpuwise.cli.app import get_app

    result = CliRunner().invoke(get_app(), list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def stored_result(
    device: str, device_name: str, median_s: float, *, workload: str = "resnet18", batch: int = 16,
    image_size: int | None = 224, optimizer: str = "adamw", cpu_model: str = "Test CPU", **overrides: Any,
) -> BenchResult:
    """A measurement as bench stores it (fp32, image workload), with only what the tests read set to something."""
    result = BenchResult(
        workload=workload, family="image classification", sample_unit="image", batch_size=batch, seq_len=None,
        image_size=image_size, precision="fp32", optimizer=optimizer, device=device, device_name=device_name,
        timing=Timing(median_s, median_s, median_s, 10, 3), samples_per_s=batch / median_s, tokens_per_s=None,
        training_flops_per_step=1, achieved_tflops=1.0, peak_tflops=None, mfu=None, peak_memory_bytes=1,
        peak_reserved_bytes=None, hardware=Hardware(cpu_model, 1, 1, 1), software=Software("", "", "", ""),
        created_at="2026-01-01T00:00:00+00:00",
    )
    return replace(result, **overrides)
