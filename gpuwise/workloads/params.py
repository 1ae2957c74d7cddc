"""Parameter counts of a workload's model, built on fake tensors (nothing allocated)."""

from __future__ import annotations

from torch._subclasses.fake_tensor import FakeTensorMode

from gpuwise.fake import skip_weight_init
from gpuwise.workloads.registry import Workload


def count_parameters(w: Workload) -> int:
    """Unique parameters (tied weights once) of the model at its default shape."""
    with FakeTensorMode(), skip_weight_init():
        model = w.build_model(w.default_shape)
        return sum(p.numel() for p in model.parameters())
