"""The learning rate of each optimizer step: ``--lr``, ``--warmup-steps``, ``--lr-schedule``, ``--weight-decay``.

The rate is a pure function of the step (``LRSchedule.lr``), set on the optimizer before each step,
so a resumed or restarted run continues the schedule exactly with nothing extra in the checkpoint.
Warm-up rises linearly to the base rate over the first ``warmup_steps`` steps; after it the rate
stays (constant), follows half a cosine to zero (cosine), or falls linearly to zero (linear) at the
run's last step. Without ``--lr`` the base rate is the optimizer's own default (``OptimizerName.build``),
so a run without these flags trains exactly as before they existed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gpuwise.errors import GpuwiseError

if TYPE_CHECKING:  # annotations only: `gpuwise launch --help` reads this module without torch
    import torch

SCHEDULES = ("constant", "cosine", "linear")
DEFAULT_SCHEDULE = "constant"


def check_schedule(lr: float | None, warmup_steps: int, schedule: str, weight_decay: float | None) -> None:
    """One line for a rate, warm-up, schedule or decay that cannot be."""
    if lr is not None and (isinstance(lr, bool) or not isinstance(lr, int | float) or not math.isfinite(lr)
                           or lr <= 0):
        raise GpuwiseError(f"--lr must be a number above zero, e.g. 3e-4, got {lr!r}")
    if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 0:
        raise GpuwiseError(f"--warmup-steps must be a whole number of steps (0 for none), got {warmup_steps!r}")
    if schedule not in SCHEDULES:
        raise GpuwiseError(f"unknown --lr-schedule '{schedule}': use {' | '.join(SCHEDULES)}")
    if weight_decay is not None and (isinstance(weight_decay, bool) or not isinstance(weight_decay, int | float)
                                     or not math.isfinite(weight_decay) or weight_decay < 0):
        raise GpuwiseError(f"--weight-decay must be a number of at least zero, e.g. 0.1, got {weight_decay!r}")


@dataclass(frozen=True)
class LRSchedule:
    base_lr: float
    warmup_steps: int
    kind: str  # one of SCHEDULES
    total_steps: int

    def factor(self, step: int) -> float:
        """The share of the base rate for optimizer step ``step`` (0-based)."""
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        if self.kind == "constant":
            return 1.0
        span = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        if self.kind == "cosine":
            return 0.5 * (1 + math.cos(math.pi * progress))
        return 1.0 - progress

    def lr(self, step: int) -> float:
        return self.base_lr * self.factor(step)


def configure(optimizer: torch.optim.Optimizer, *, lr: float | None, weight_decay: float | None,
              warmup_steps: int, kind: str, total_steps: int) -> LRSchedule:
    """Set the weight decay on ``optimizer`` (if given) and return its schedule; the base rate is ``lr``, or
    the rate the optimizer was built with."""
    base = lr if lr is not None else float(optimizer.param_groups[0]["lr"])
    if weight_decay is not None:
        for group in optimizer.param_groups:
            group["weight_decay"] = weight_decay
    return LRSchedule(base_lr=base, warmup_steps=warmup_steps, kind=kind, total_steps=total_steps)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def default_weight_decay(optimizer: torch.optim.Optimizer) -> float:
    return float(optimizer.param_groups[0].get("weight_decay", 0.0))
