"""Shared fixtures: tiny ad-hoc workloads and a CLI runner."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn

os.environ.setdefault("HF_HUB_OFFLINE", "1")

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


@pytest.fixture
def mlp_workload() -> Workload:
    return make_workload(
        lambda: nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10)),
        lambda n: (torch.randn(n, 64), torch.randint(0, 10, (n,))),
        lambda m, b: F.cross_entropy(m(b[0]), b[1]),
        name="mlp",
    )
