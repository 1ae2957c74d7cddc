"""CUDA's autocast op lists, on the CPU profile of a GPU step.

The profile runs on CPU fake tensors under CPU autocast, whose lists differ from CUDA's: CUDA runs
softmax, layer_norm, pow, exp, log, the losses and reductions in float32, the CPU list leaves them in
the reduced dtype. A GPU profile must move the bytes CUDA moves and save the tensors CUDA saves, so
this mode applies CUDA's float32 lists on top of the CPU's: a call to one of those functions with a
bf16/fp16 floating input while autocast is on gets its floating inputs cast to float32, as CUDA's
autocast does (``aten/src/ATen/autocast_mode.cpp``, ``AT_FORALL_FP32`` and ``AT_FORALL_FP32_SET_OPT_DTYPE``
for the CUDA key; the lower-precision lists of the two devices agree on the matrix products).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_map

# CUDA's fp32 list (AT_FORALL_FP32) and fp32_set_opt_dtype list (AT_FORALL_FP32_SET_OPT_DTYPE), by name.
CUDA_FP32_OPS = (
    "acos asin cosh erfinv exp expm1 log log10 log2 log1p reciprocal rsqrt sinh tan pow softplus layer_norm "
    "group_norm frobenius_norm nuclear_norm cosine_similarity poisson_nll_loss cosine_embedding_loss nll_loss "
    "hinge_embedding_loss kl_div l1_loss smooth_l1_loss huber_loss mse_loss margin_ranking_loss "
    "multilabel_margin_loss soft_margin_loss triplet_margin_loss multi_margin_loss binary_cross_entropy_with_logits "
    "dist pdist cdist renorm logsumexp prod softmax log_softmax cumprod cumsum sum norm cross_entropy"
).split()
# cross_entropy is log_softmax + nll_loss on both devices: listed so that its input is cast once, as CUDA's
# log_softmax casts it. norm stands for linalg_vector_norm / frobenius_norm, which Tensor.norm calls.
_REDUCED = (torch.bfloat16, torch.float16)


def _functions() -> frozenset[Any]:
    found = set()
    for name in CUDA_FP32_OPS:
        for namespace in (torch, torch.Tensor, F, torch.special, torch.linalg):
            fn = getattr(namespace, name, None)
            if fn is not None:
                found.add(fn)
    found.update({torch.Tensor.__pow__, torch.Tensor.__rpow__, torch.linalg.vector_norm, torch.linalg.matrix_norm})
    return frozenset(found)


class CudaAutocastLists(TorchFunctionMode):
    """Under CPU autocast, the functions CUDA's autocast runs in float32 get float32 inputs."""

    def __init__(self) -> None:
        super().__init__()
        self._fp32 = _functions()

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func in self._fp32 and torch.is_autocast_enabled("cpu") and _any_reduced((args, kwargs)):
            args, kwargs = tree_map(_to_fp32, (args, kwargs))
        return func(*args, **kwargs)


def _any_reduced(tree: Any) -> bool:
    found = False

    def visit(x: Any) -> Any:
        nonlocal found
        found = found or (isinstance(x, torch.Tensor) and x.dtype in _REDUCED)
        return x

    tree_map(visit, tree)
    return found


def _to_fp32(x: Any) -> Any:
    return x.float() if isinstance(x, torch.Tensor) and x.dtype in _REDUCED else x
