"""Attention as a GPU runs it: one fused kernel, even with dropout.

On the CPU, PyTorch's SDPA takes the unfused "math" path whenever attention dropout is on
(GPT-2, BERT), materialising the (seq × seq) scores and saving them for backward. CUDA's
flash and memory-efficient kernels support dropout, so on a GPU the same call is one fused
kernel that saves only its output and log-sum-exp. For GPU predictions the profile reroutes
SDPA to the fused kernel's aten op, whose shapes, FLOPs and saved tensors are those of the
GPU kernel, in the dtype CUDA's autocast gives it.

Programs that write attention out themselves (NVIDIA's BERT in DeepLearningExamples, ``modeling.py``:
``bmm``, scale, mask, ``softmax``, dropout, ``bmm``; MLPerf BERT run ``--unpad`` without its FMHA kernels)
are profiled with ``written_out=True``: the same call as those ops, in the dtypes CUDA runs them in, so the
(seq × seq) scores and probabilities are written, read back and saved for backward.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

_PARAMS = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa")


class FusedAttention(TorchFunctionMode):
    def __init__(self, written_out: bool = False) -> None:
        super().__init__()
        self.written_out = written_out

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
        if self.written_out:
            return _written_out(q, k, v, float(bound.get("dropout_p", 0.0)), bool(bound.get("is_causal", False)),
                                bound.get("scale"))
        out, _ = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
            q, k, v, float(bound.get("dropout_p", 0.0)), bool(bound.get("is_causal", False)),
            scale=bound.get("scale"),
        )
        return out


def _written_out(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dropout_p: float, is_causal: bool,
                 scale: float | None) -> torch.Tensor:
    """Attention as separate kernels, each writing its result to memory: the scores' product, its scaling
    (and causal mask), softmax, dropout as one fused kernel (``FusedDropout``'s ``native_dropout``), and the
    product with the values. Under autocast, softmax runs in float32 as CUDA's autocast runs it (its fp32
    list; the scores are cast up, the probabilities back down for the last product); a 16-bit model without
    autocast keeps all of it in 16 bits."""
    scores = torch.matmul(q, k.transpose(-2, -1)) * (scale if scale is not None else q.shape[-1] ** -0.5)
    if is_causal:
        n, m = scores.shape[-2:]
        scores = scores.masked_fill(torch.ones(n, m, dtype=torch.bool, device=q.device).triu(1), float("-inf"))
    autocast = torch.is_autocast_enabled(q.device.type)
    probs = torch.softmax(scores.float() if autocast else scores, dim=-1)
    if dropout_p > 0:
        probs, _ = torch.native_dropout(probs, dropout_p, True)
    return torch.matmul(probs.to(v.dtype) if autocast else probs, v)
