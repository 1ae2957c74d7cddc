"""Activation checkpointing: which blocks run their forward again in backward, and what they keep.

The same function serves the profile (on fake tensors, so memory and the recompute's time follow
from the traced step) and ``gpuwise train`` (on the real model), so what is predicted is what runs.

- ``full``: every block keeps only its inputs; its forward runs again in backward
  (non-reentrant ``torch.utils.checkpoint`` per block, as torchtitan's ``apply_ac`` with ``mode="full"``).
- ``selective``: torchtitan's op-level policy (``torchtitan/models/llama3/infra/parallelize.py``,
  ``_apply_ac_to_transformer_block``): within each block the outputs of attention, of ``max`` and
  of every other matrix product are kept; everything else (norms, activations, the other products)
  is recomputed.

Blocks are the items of the model's ``nn.ModuleList``s (transformer layers), else the root's children
that hold parameters (a CNN's stages): the units FSDP shards one by one, too. The block's forward
method is replaced on the instance instead of wrapping the block in another module, so parameter
names, state dicts and ``fully_shard`` see the same model with or without checkpointing. (Torch's
composable ``checkpoint`` keeps each block's recompute generator, and with it tensors recomputed
for backward, alive until that block's next forward: a 70B model held tens of GiB that way.)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from gpuwise.config import ActivationCheckpointing
from gpuwise.errors import GpuwiseError

_aten = torch.ops.aten
_MATMULS = {_aten.mm.default, _aten.addmm.default}
# What selective checkpointing keeps (torchtitan's _save_list, with the CPU fused kernel the GPU
# profile stands in for CUDA's flash attention, gpuwise.profile.attention).
_KEEP = {
    *_MATMULS,
    _aten._scaled_dot_product_flash_attention.default,
    _aten._scaled_dot_product_efficient_attention.default,
    _aten._scaled_dot_product_cudnn_attention.default,
    _aten._scaled_dot_product_flash_attention_for_cpu.default,
    _aten.max.default,
}


def blocks(model: nn.Module) -> list[nn.Module]:
    """The model's repeated units: items of its ``ModuleList``s, else the root's children with parameters."""
    found = [m for lst in model.modules() if isinstance(lst, nn.ModuleList) for m in lst]
    if found:
        return found
    return [m for m in model.children() if any(True for _ in m.parameters())]


def _selective_context() -> tuple[Any, Any]:
    from torch.utils.checkpoint import CheckpointPolicy, create_selective_checkpoint_contexts

    matmuls = {"forward": 0, "recompute": 0}  # per block call: counted alike in forward and recompute

    def policy(ctx: Any, func: Any, *args: Any, **kwargs: Any) -> CheckpointPolicy:
        mode = "recompute" if ctx.is_recompute else "forward"
        if func in _MATMULS:
            matmuls[mode] += 1
        keep = func in _KEEP and not (func in _MATMULS and matmuls[mode] % 2 == 0)
        return CheckpointPolicy.MUST_SAVE if keep else CheckpointPolicy.PREFER_RECOMPUTE

    return create_selective_checkpoint_contexts(policy)  # type: ignore[no-any-return]


_recomputing = 0  # checkpointed forwards running again in backward now (``apply(..., mark_recompute=True)``)


def recomputing() -> bool:
    """Whether a block's forward is running again in backward, now (in a model ``apply`` marked): the profile
    counts its FLOPs as recompute even where grad mode reads off, inside an autograd Function's forward (the
    products of torchao's FP8 layers)."""
    return _recomputing > 0


def _marked(forward: Any) -> Any:
    def run(*args: Any, **kwargs: Any) -> Any:
        global _recomputing
        again = int(torch._C._current_graph_task_id() != -1)  # inside a backward pass: the recompute
        _recomputing += again
        try:
            return forward(*args, **kwargs)
        finally:
            _recomputing -= again

    return run


def _checkpoint_forward(unit: nn.Module, mode: ActivationCheckpointing, mark_recompute: bool = False) -> None:
    """``unit``'s forward, run under ``torch.utils.checkpoint`` (non-reentrant), as torchtitan's
    ``checkpoint_wrapper`` runs it, but set on the instance: the module, its parameter names and the
    hooks around its call (FSDP's gathers) stay as they are. ``mark_recompute``: ``recomputing()`` says when the
    forward runs again (the profile's; ``train`` compiles blocks, so its forward stays as it is)."""
    from torch.utils.checkpoint import checkpoint

    forward = _marked(unit.forward) if mark_recompute else unit.forward
    context = _selective_context if mode is ActivationCheckpointing.SELECTIVE else None

    def checkpointed(*args: Any, **kwargs: Any) -> Any:
        if context is None:
            return checkpoint(forward, *args, use_reentrant=False, **kwargs)
        return checkpoint(forward, *args, use_reentrant=False, context_fn=context, **kwargs)

    unit.forward = checkpointed


def apply(model: nn.Module, mode: ActivationCheckpointing | str, *, workload: str = "the model",
          mark_recompute: bool = False) -> int:
    """Checkpoint each block of ``model`` in place; returns how many (``mark_recompute``: see ``recomputing``)."""
    mode = ActivationCheckpointing.parse(mode)
    if mode is ActivationCheckpointing.NONE:
        return 0
    units = blocks(model)
    if len(units) < 2:
        raise GpuwiseError(
            f"--activation-checkpointing {mode.value}: {workload} has no blocks to recompute (no nn.ModuleList of "
            "layers, and fewer than two child modules with parameters): use --activation-checkpointing none"
        )
    for unit in units:
        _checkpoint_forward(unit, mode, mark_recompute)
    return len(units)
