"""Dropout as a GPU runs it: one fused kernel that writes the output and a one-byte mask.

In training, ``F.dropout`` on a CUDA tensor dispatches to ``native_dropout`` (ATen's
``dropout``: ``is_fused_kernel_acceptable`` holds for CUDA inputs), one kernel that reads the
input and writes the output and a bool mask, which backward reads back. On the CPU the same
call runs ``bernoulli_``, a division and a multiplication: three kernels, a mask in the input's
dtype, about three times the memory traffic. For GPU predictions the profile calls
``native_dropout`` itself, whose outputs and saved mask are the fused kernel's.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

_PARAMS = ("input", "p", "training", "inplace")
FUSED_DROPOUT_OPS = ("aten.native_dropout.default", "aten.native_dropout_backward.default")


class FusedDropout(TorchFunctionMode):
    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func is not F.dropout:
            return func(*args, **kwargs)
        bound = {"p": 0.5, "training": True, "inplace": False} | dict(zip(_PARAMS, args, strict=False)) | kwargs
        x, p = bound["input"], float(bound["p"])
        # In-place dropout stays as traced: ATen's dropout_ never takes the fused kernel, on CUDA either.
        if not bound["training"] or bound["inplace"] or p == 0.0 or not x.is_floating_point():
            return func(*args, **kwargs)
        out, _mask = torch.native_dropout(x, p, True)
        return out
