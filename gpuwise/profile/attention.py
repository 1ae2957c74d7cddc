"""Attention as a GPU runs it: one fused kernel, even with dropout.

On the CPU, PyTorch's SDPA takes the unfused "math" path whenever attention dropout is on
(GPT-2, BERT), materialising the (seq × seq) scores and saving them for backward. CUDA's
flash and memory-efficient kernels support dropout, so on a GPU the same call is one fused
kernel that saves only its output and log-sum-exp. For GPU predictions the profile reroutes
SDPA to the fused kernel's aten op, whose shapes, FLOPs and saved tensors are those of the
GPU kernel, in the dtype CUDA's autocast gives it.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

_PARAMS = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa")


class FusedAttention(TorchFunctionMode):
    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func is not F.scaled_dot_product_attention:
            return func(*args, **kwargs)
        bound = dict(zip(_PARAMS, args, strict=False)) | kwargs
        q, k, v = bound["query"], bound["key"], bound["value"]
        fusable = bound.get("attn_mask") is None and q.shape[-3] == k.shape[-3]  # no mask, no GQA repeat
        if not fusable:
            return func(*args, **kwargs)
        device = q.device.type
        if torch.is_autocast_enabled(device):
            # CUDA's autocast runs SDPA in the reduced dtype (it is on its fp16/bf16 list; the CPU's
            # list leaves it out). Without this, a Llama's rotary embedding, computed in fp32, would
            # leave q and k in fp32 and price the GPU's attention on its fp32 CUDA cores.
            dtype = torch.get_autocast_dtype(device)
            q, k, v = (t.to(dtype) for t in (q, k, v))
        out, _ = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
            q, k, v, float(bound.get("dropout_p", 0.0)), bool(bound.get("is_causal", False)),
            scale=bound.get("scale"),
        )
        return out
