"""Outputs of real CPU kernels that torch's fake (meta) kernels get wrong.

The tracker counts the storages each op returns, so a meta kernel that returns less than
the real kernel makes the estimate too low; where the output is saved for backward the gap
lasts the whole forward pass. Each correction here names what the real kernel allocates and
reproduces it exactly; ``benchmarks/memory_accuracy.py`` checks the total against a real step.

- ``aten.mkldnn_rnn_layer`` (``nn.LSTM`` on the CPU): with grad mode on, PyTorch allocates
  oneDNN's training workspace (``pd.workspace_desc().get_size()`` bytes, in
  aten/src/ATen/native/mkldnn/RNN.cpp) and saves it for backward; torch 2.14's meta kernel
  returns an empty one. For GNMT at batch 16 that is 508 MiB of activations missed.
- ``aten.mkldnn_rnn_layer_backward``: the meta kernel returns one tensor as both bias
  gradients; the real kernel returns two storages.
- ``aten.native_batch_norm`` on a bf16/fp16 input with fp32 parameters or running stats
  (BatchNorm under autocast): the real kernel saves the batch mean and inverse std for
  backward in fp32 (PyTorch's mixed-type batch norm), the meta kernel in the input's dtype.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten

_REDUCED = (torch.bfloat16, torch.float16)
_PAGE = 4096  # oneDNN page-aligns each part of an RNN workspace
_LSTM_GATES = 4


def _good_ld(dim: int, itemsize: int) -> int:
    """oneDNN's leading dimension: 64-byte aligned, and not a multiple of 256 elements (4K aliasing)."""
    per_line = 64 // itemsize
    ld = -(-dim // per_line) * per_line
    return ld + per_line if ld % 256 == 0 else ld


def _round_up(n: int, to: int) -> int:
    return -(-n // to) * to


def onednn_lstm_workspace_bytes(
    seq_len: int, batch: int, input_size: int, hidden_size: int, itemsize: int, cell_itemsize: int
) -> int:
    """Bytes of oneDNN's forward-training workspace for one LSTM layer in one direction.

    oneDNN (v3.x) src/cpu/rnn/rnn_utils.hpp ``init_conf``/``set_workspace_sizes`` and
    rnn_utils.cpp ``set_offsets``: gates, h (ht), layer/iteration states, c states and the
    diff states backward writes into (fp32 accumulators), each part starting on a page.
    ``itemsize`` is the data type's (fp32 or bf16); ``cell_itemsize`` the c state's.
    Checked exactly against the real kernel for fp32 and bf16 (autocast) over a grid of sizes.
    """
    t, b, h = seq_len, batch, hidden_size
    states_ld = _good_ld(max(input_size, h), itemsize)
    diff_ld = _good_ld(max(input_size, h), 4)
    parts = (
        t * b * _good_ld(_LSTM_GATES * h, itemsize) * itemsize,  # gates
        t * b * _good_ld(h, itemsize) * itemsize,  # ht
        2 * (t + 1) * b * states_ld * itemsize,  # states (layer and iteration share them)
        2 * (t + 1) * b * h * cell_itemsize,  # c states
        2 * (t + 1) * b * diff_ld * 4,  # diff states, layer
        2 * (t + 1) * b * diff_ld * 4,  # diff states, iteration
        2 * (t + 1) * b * h * 4,  # diff c states
    )
    offset = 0
    for nbytes in parts:
        offset = _round_up(offset, _PAGE) + nbytes
    return _round_up(offset, _PAGE)


class RealKernelOutputs(TorchDispatchMode):
    """Under ``FakeTensorMode``: give the ops above the outputs their real kernels allocate."""

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        if func is aten.mkldnn_rnn_layer.default and torch.is_grad_enabled():
            x, cx, hidden_size = args[0], args[6], int(args[10])
            seq_len, batch, input_size = (int(s) for s in x.shape)  # time-major, even with batch_first
            nbytes = onednn_lstm_workspace_bytes(
                seq_len,
                batch,
                input_size,
                hidden_size,
                x.element_size(),
                cx.element_size() if cx is not None else 4,
            )
            output, hy, cy, _ = out
            out = (output, hy, cy, torch.empty(nbytes, dtype=torch.uint8, device=x.device))
        elif func is aten.mkldnn_rnn_layer_backward.default and out[3] is out[4]:
            out = (*out[:4], torch.empty_like(out[4]), *out[5:])
        elif func is aten.native_batch_norm.default and _mixed_type_batch_norm(args):
            output, save_mean, save_invstd = out
            out = (output, save_mean.float(), save_invstd.float())
        return out


def _mixed_type_batch_norm(args: Any) -> bool:
    """A reduced-precision input with fp32 weight, bias or running stats (ATen's ``is_mixed_type``)."""
    x, params = args[0], args[1:5]
    return bool(x.dtype in _REDUCED and any(p is not None and p.dtype == torch.float32 for p in params))
