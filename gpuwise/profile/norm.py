"""RMSNorm as a GPU runs it: one fused kernel.

On CUDA, ``F.rms_norm`` (``nn.RMSNorm``) runs ``aten._fused_rms_norm``, one kernel that writes its
output in the input's dtype and saves only its input and the per-row reciprocal RMS (float32) for
backward. On the CPU the same call is decomposed (to float32, pow, mean, rsqrt, two multiplies, back),
each step writing a tensor and several saved in float32. GPU profiles route it through
``gpuwise::fused_rms_norm``, an op with the CUDA kernel's shapes, dtypes and saved tensors; it has no
real kernel and exists for profiling on fake tensors only.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

_PARAMS = ("input", "normalized_shape", "weight", "eps")


@torch.library.custom_op("gpuwise::fused_rms_norm", mutates_args=(),
                         schema="(Tensor input, Tensor weight, int dims) -> (Tensor, Tensor)")
def fused_rms_norm(input: torch.Tensor, weight: torch.Tensor, dims: int) -> tuple[torch.Tensor, torch.Tensor]:
    raise RuntimeError("gpuwise::fused_rms_norm models CUDA's kernel for profiling on fake tensors only")


@fused_rms_norm.register_fake
def _fused_rms_norm_fake(input: torch.Tensor, weight: torch.Tensor, dims: int) -> tuple[torch.Tensor, torch.Tensor]:
    rows = (*input.shape[: input.dim() - dims], *([1] * dims))
    return torch.empty_like(input), input.new_empty(rows, dtype=torch.float32)


@torch.library.custom_op("gpuwise::fused_rms_norm_backward", mutates_args=(),
                         schema="(Tensor grad_out, Tensor input, Tensor rstd, Tensor weight) -> (Tensor, Tensor)")
def fused_rms_norm_backward(grad_out: torch.Tensor, input: torch.Tensor, rstd: torch.Tensor, weight: torch.Tensor
                            ) -> tuple[torch.Tensor, torch.Tensor]:
    raise RuntimeError("gpuwise::fused_rms_norm_backward models CUDA's kernel for profiling on fake tensors only")


@fused_rms_norm_backward.register_fake
def _fused_rms_norm_backward_fake(grad_out: torch.Tensor, input: torch.Tensor, rstd: torch.Tensor,
                                  weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.empty_like(input), torch.empty_like(weight)


def _setup(ctx: Any, inputs: tuple[Any, ...], output: tuple[torch.Tensor, torch.Tensor]) -> None:
    input, weight, _dims = inputs
    ctx.save_for_backward(input, output[1], weight)


def _backward(ctx: Any, grad_out: torch.Tensor, grad_rstd: torch.Tensor) -> Any:
    input, rstd, weight = ctx.saved_tensors
    grad_input, grad_weight = fused_rms_norm_backward(grad_out, input, rstd, weight)
    return grad_input, grad_weight, None


fused_rms_norm.register_autograd(_backward, setup_context=_setup)


class FusedRMSNorm(TorchFunctionMode):
    """Routes ``F.rms_norm`` with a weight through the fused op (without a weight: left as it is)."""

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func is not F.rms_norm:
            return func(*args, **kwargs)
        bound = dict(zip(_PARAMS, args, strict=False)) | kwargs
        weight = bound.get("weight")
        if weight is None:
            return func(*args, **kwargs)
        out, _ = fused_rms_norm(bound["input"], weight, len(bound["normalized_shape"]))
        return out
