"""Helpers for tests: ad-hoc workloads that are not registered."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

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
