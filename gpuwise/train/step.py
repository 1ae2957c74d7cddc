"""One optimizer step of ``gpuwise train``: ``grad_accum`` micro batches, then the optimizer.

It is ``gpuwise.bench.run.Step`` (zero-grad, forward and loss under autocast, backward scaled for
fp16, optimizer step) run over N micro batches: each micro batch's loss is divided by N, so the
gradients summed over them are the mean over the N × batch samples, as one big batch would give.
With one micro batch the step is bench's, operation for operation.

Under DDP, gradients are all-reduced on the last micro batch only (``no_sync()`` before it); under
FSDP2 each micro batch's gradients are reduce-scattered into the shards (``no_sync_for``).

``autocast`` is False under FSDP2 with a ``MixedPrecisionPolicy``: the policy already runs the
forward in bf16 on bf16 copies of the parameters, as torchtitan does, and autocast on top would
only cast again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch

from gpuwise.config import Precision
from gpuwise.workloads.registry import Batch, Workload


class AccumulatingStep:
    def __init__(self, w: Workload, model: torch.nn.Module, optimizer: torch.optim.Optimizer, precision: Precision,
                 device: str, *, grad_accum: int = 1, autocast: bool = True,
                 no_sync: Callable[[], AbstractContextManager[Any]] = nullcontext) -> None:
        self.w, self.model, self.optimizer, self.grad_accum, self.no_sync = w, model, optimizer, grad_accum, no_sync
        device_type = device.split(":")[0]
        dtype = precision.autocast_dtype if autocast else None
        self._autocast: Callable[[], AbstractContextManager[Any]] = (
            (lambda: torch.autocast(device_type, dtype=dtype)) if dtype is not None else nullcontext
        )
        self.scaler = torch.amp.GradScaler(device_type) if precision is Precision.AMP_FP16 else None

    def __call__(self, batches: Iterable[Batch]) -> torch.Tensor:
        """The step over ``grad_accum`` micro batches (fetched as needed); returns their mean loss, detached."""
        self.optimizer.zero_grad(set_to_none=True)
        total: torch.Tensor | None = None
        it = iter(batches)
        for i in range(self.grad_accum):
            last = i == self.grad_accum - 1
            batch = next(it)
            with nullcontext() if last else self.no_sync():
                with self._autocast():
                    loss = self.w.forward_loss(self.model, batch)
                    if self.grad_accum > 1:
                        loss = loss / self.grad_accum
                (self.scaler.scale(loss) if self.scaler is not None else loss).backward()
            total = loss.detach() if total is None else total + loss.detach()
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        assert total is not None
        return total


def no_sync_for(model: torch.nn.Module) -> Callable[[], AbstractContextManager[Any]]:
    """How to skip the gradient all-reduce for a micro batch: DDP's ``no_sync``. FSDP2 keeps its
    reduce-scatter on every micro batch, as torchtitan does: turning it off would keep each block's
    unsharded gradients, the whole model's in all, until the last micro batch, which is what FSDP
    exists to avoid (and what ``gpuwise predict`` prices: a reduce-scatter per micro batch)."""
    from torch.nn.parallel import DistributedDataParallel

    if isinstance(model, DistributedDataParallel):
        return model.no_sync
    return nullcontext
