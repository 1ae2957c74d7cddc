"""A workload from an ``nn.Module`` the caller already holds (the Python API).

``gpuwise.profile(model, make_batch=lambda b: torch.randn(b, 64))``: the module, a function making
a synthetic batch of N samples, and optionally the loss of a batch (default: the sum of the model's
floating outputs, which is enough to run backward through every parameter that takes part). The
profile traces a fake copy of the module (``gpuwise.workloads.meta``); a benchmark trains a deep
copy on its device. The caller's module is never changed.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from gpuwise.errors import GpuwiseError
from gpuwise.workloads.meta import active_fake_mode, fake_copy
from gpuwise.workloads.registry import SAMPLE_UNITS, Batch, Shape, Workload


def call_model(model: nn.Module, batch: Batch) -> Any:
    """The model on a batch as its forward takes it: a mapping as keywords, a tuple or list as
    positional arguments, anything else as the one argument."""
    if isinstance(batch, Mapping):
        return model(**batch)
    if isinstance(batch, tuple | list):
        return model(*batch)
    return model(batch)


def sum_of_outputs(model: nn.Module, batch: Batch) -> torch.Tensor:
    """The default loss: every floating tensor the model returns, summed (a scalar that backward
    reaches every used parameter from; the cost of a real loss on top of it is negligible)."""
    from torch.utils._pytree import tree_leaves

    outputs = [t for t in tree_leaves(call_model(model, batch))
               if isinstance(t, torch.Tensor) and t.is_floating_point()]
    if not outputs:
        raise GpuwiseError("the model returned no floating-point tensor to sum; pass loss=lambda model, batch: ...")
    return torch.stack([t.sum() for t in outputs]).sum() if len(outputs) > 1 else outputs[0].sum()


def module_workload(
    model: nn.Module,
    make_batch: Callable[[int], Batch],
    loss: Callable[[nn.Module, Batch], torch.Tensor] | None = None,
    *,
    name: str | None = None,
    sample_unit: str = "sample",
    default_batch_size: int = 32,
    tokens_per_sample: int | None = None,
    optimizer: str | None = None,
) -> Workload:
    """``model`` as a workload; ``make_batch(n)`` makes a batch of n samples with torch factories
    (they make fake tensors under the profile and real ones on the benchmark's device)."""
    if not isinstance(model, nn.Module):
        raise GpuwiseError(f"expected a torch.nn.Module, got {type(model).__name__}")
    if not callable(make_batch):
        raise GpuwiseError("make_batch must be a function of the batch size: make_batch=lambda n: torch.randn(n, 64)")
    if sample_unit not in SAMPLE_UNITS:
        raise GpuwiseError(f"sample_unit must be one of {', '.join(SAMPLE_UNITS)}, got {sample_unit!r}")
    if isinstance(default_batch_size, bool) or not isinstance(default_batch_size, int) or default_batch_size < 1:
        raise GpuwiseError(f"default_batch_size must be a positive integer, got {default_batch_size!r}")
    label = name or type(model).__name__
    compute_loss = loss or sum_of_outputs

    def build_model(shape: Shape) -> nn.Module:
        fake_mode = active_fake_mode()
        if fake_mode is not None:
            return fake_copy(model, fake_mode)
        if any(t.device.type == "meta" for t in (*model.parameters(), *model.buffers())):
            raise GpuwiseError(f"{label}: its parameters are on the meta device; a real step needs real ones "
                               "(profile and predict work on meta models, bench does not)")
        return copy.deepcopy(model)

    def make(batch_size: int, shape: Shape) -> Batch:
        return _user_call(label, "make_batch", lambda: make_batch(batch_size))

    def forward_loss(m: nn.Module, batch: Batch) -> torch.Tensor:
        value = _user_call(label, "the loss", lambda: compute_loss(m, batch))
        if not isinstance(value, torch.Tensor) or value.numel() != 1:
            raise GpuwiseError(f"{label}: the loss must return a scalar tensor")
        return value

    return Workload(
        name=label, family="user", sample_unit=sample_unit, default_batch_size=default_batch_size,
        summary=f"{type(model).__name__} (an nn.Module passed to gpuwise)", build_model=build_model,
        make_batch=make, forward_loss=forward_loss,
        tokens_per_sample=(lambda shape: tokens_per_sample) if tokens_per_sample else None,
        reference="user code", data_dependent=True, optimizer=optimizer,
    )


def _user_call(label: str, what: str, fn: Callable[[], Any]) -> Any:
    """An error raised by the caller's code becomes one line that shows its message."""
    try:
        return fn()
    except GpuwiseError:
        raise
    except Exception as e:
        raise GpuwiseError(f"{label}: {what} raised {type(e).__name__}: {e}") from e
