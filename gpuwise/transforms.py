"""What a training step does to its model before the optimizer sees it: FP8 linear layers, activation
checkpointing and compilation per block, in torchtitan's order (float8, AC, compile, then FSDP's wrapping),
each composing with the next. One place for the three that build a step: ``gpuwise.profile`` traces it,
``gpuwise.bench`` times it, ``gpuwise.train`` runs it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

    from gpuwise.config import ActivationCheckpointing, Precision


def apply(model: nn.Module, *, workload: str, precision: Precision, fp8: bool,
          activation_checkpointing: ActivationCheckpointing, compile_on: str | None = None,
          mark_recompute: bool = False) -> None:
    """Transform ``model`` in place for its step: FP8 layers (``fp8``), checkpointed blocks, and the blocks compiled
    for device ``compile_on`` (None: not compiled). ``mark_recompute``: see ``gpuwise.recompute.recomputing``."""
    from gpuwise import float8, recompute

    what = f"workload '{workload}'"
    if fp8:
        float8.convert(model, precision, what=what)
    recompute.apply(model, activation_checkpointing, workload=what, mark_recompute=mark_recompute)
    if compile_on is not None:
        from gpuwise.compiling import compile_blocks

        compile_blocks(model, compile_on, workload=workload)
