"""One optimizer step of ``gpuwise train``: ``grad_accum`` micro batches, then the optimizer.

It is ``gpuwise.bench.run.Step`` (zero-grad, forward and loss under autocast, backward scaled for
fp16, optimizer step) run over N micro batches: each micro batch's loss is divided by N, so the
gradients summed over them are the mean over the N × batch samples, as one big batch would give.
With one micro batch the step is bench's, operation for operation.

Gradients are synchronised across processes on the last micro batch only: ``no_sync`` is DDP's
``no_sync()`` or, under FSDP2, ``set_requires_gradient_sync(False)`` (``gradient_sync``).

``autocast`` is False under FSDP2 with a ``MixedPrecisionPolicy``: the policy already runs the
forward in bf16 on bf16 copies of the parameters, as torchtitan does, and autocast on top would
only cast again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
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
    """How to skip the gradient all-reduce (DDP) or reduce-scatter (FSDP2) for a micro batch."""
    from torch.nn.parallel import DistributedDataParallel

    if isinstance(model, DistributedDataParallel):
        return model.no_sync
    setter = getattr(model, "set_requires_gradient_sync", None)  # an FSDP2 module
    if setter is None:
        return nullcontext

    @contextmanager
    def gradient_sync_off() -> Iterator[None]:
        setter(False)
        try:
            yield
        finally:
            setter(True)

    return gradient_sync_off
