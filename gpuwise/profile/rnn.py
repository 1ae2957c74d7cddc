"""GRU and LSTM as a GPU runs them: one fused cuDNN call per layer and direction.

On the CPU, ``nn.GRU`` has no fused kernel: it decomposes into a few ops per time step
(hundreds of thousands for DeepSpeech2), which would make a GPU prediction bound by launch
overhead that cuDNN does not have. For GPU predictions the profile routes ``nn.GRU`` through
``gpuwise::fused_rnn_layer``, an op with the shapes, FLOPs (``gpuwise.profile.ops``) and
saved tensors of a fused layer: its output, final state and a reserve of the gate activations
of every step, as cuDNN keeps for backward. The op has no real kernel: it exists for profiling
on fake tensors only. ``nn.LSTM`` has a fused CPU op, oneDNN's layer, which ATen takes only where
the CPU's oneDNN runs the dtype; ``OneDnnLSTM`` takes it on every CPU.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

GRU_GATES = 3


@torch.library.custom_op(
    "gpuwise::fused_rnn_layer",
    mutates_args=(),
    schema="(Tensor input, Tensor w_ih, Tensor w_hh, Tensor b_ih, Tensor b_hh, Tensor hx, int gates, "
    "int directions) -> (Tensor, Tensor, Tensor)",
)
def fused_rnn_layer(
    input: torch.Tensor, w_ih: torch.Tensor, w_hh: torch.Tensor, b_ih: torch.Tensor, b_hh: torch.Tensor,
    hx: torch.Tensor, gates: int, directions: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    raise RuntimeError("gpuwise::fused_rnn_layer models a cuDNN layer for profiling on fake tensors only")


@fused_rnn_layer.register_fake
def _fused_rnn_layer_fake(
    input: torch.Tensor, w_ih: torch.Tensor, w_hh: torch.Tensor, b_ih: torch.Tensor, b_hh: torch.Tensor,
    hx: torch.Tensor, gates: int, directions: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    steps, batch = input.shape[0], input.shape[1]
    hidden = w_hh.shape[1]
    output = input.new_empty((steps, batch, hidden))
    reserve = input.new_empty((steps, batch, gates * hidden))
    return output, hx.new_empty(hx.shape), reserve


@torch.library.custom_op(
    "gpuwise::fused_rnn_layer_backward",
    mutates_args=(),
    schema="(Tensor grad_output, Tensor input, Tensor w_ih, Tensor w_hh, Tensor hx, Tensor output, Tensor reserve, "
    "int gates, int directions) -> (Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)",
)
def fused_rnn_layer_backward(
    grad_output: torch.Tensor, input: torch.Tensor, w_ih: torch.Tensor, w_hh: torch.Tensor, hx: torch.Tensor,
    output: torch.Tensor, reserve: torch.Tensor, gates: int, directions: int,
) -> tuple[torch.Tensor, ...]:
    raise RuntimeError("gpuwise::fused_rnn_layer_backward models a cuDNN layer for profiling on fake tensors only")


@fused_rnn_layer_backward.register_fake
def _fused_rnn_layer_backward_fake(
    grad_output: torch.Tensor, input: torch.Tensor, w_ih: torch.Tensor, w_hh: torch.Tensor, hx: torch.Tensor,
    output: torch.Tensor, reserve: torch.Tensor, gates: int, directions: int,
) -> tuple[torch.Tensor, ...]:
    bias = w_ih.new_empty((w_ih.shape[0],))
    return (
        torch.empty_like(input), torch.empty_like(w_ih), torch.empty_like(w_hh), bias, bias.clone(),
        torch.empty_like(hx),
    )


def _setup(ctx: Any, inputs: tuple[Any, ...], output: tuple[torch.Tensor, ...]) -> None:
    input, w_ih, w_hh, _b_ih, _b_hh, hx, gates, directions = inputs
    out, _hy, reserve = output
    ctx.save_for_backward(input, w_ih, w_hh, hx, out, reserve)
    ctx.gates, ctx.directions = gates, directions


def _backward(ctx: Any, grad_output: torch.Tensor, grad_hy: torch.Tensor, grad_reserve: torch.Tensor) -> Any:
    input, w_ih, w_hh, hx, out, reserve = ctx.saved_tensors
    grads = fused_rnn_layer_backward(grad_output, input, w_ih, w_hh, hx, out, reserve, ctx.gates, ctx.directions)
    return (*grads, None, None)


fused_rnn_layer.register_autograd(_backward, setup_context=_setup)


Layer = Callable[[torch.Tensor, Sequence[torch.Tensor], int, int], tuple[torch.Tensor, ...]]


def _stacked(x: torch.Tensor, weights: Sequence[torch.Tensor], *, has_bias: bool, num_layers: int, directions: int,
             dropout: float, train: bool, layer: Layer, drop: Callable[[torch.Tensor], torch.Tensor],
             ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, ...]]]:
    """A stacked recurrent net as ATen walks it: for each layer, each direction's ``layer(x, its weights, index,
    direction)`` on the layer's input (its output first, then its final states), the directions' outputs
    concatenated, ``drop`` between layers in training. Returns the last layer's output and every layer and
    direction's final states, in ATen's order."""
    per_layer = 4 if has_bias else 2
    finals = []
    for depth in range(num_layers):
        outputs = []
        for d in range(directions):
            index = depth * directions + d
            out, *final = layer(x, weights[index * per_layer:(index + 1) * per_layer], index, d)
            outputs.append(out)
            finals.append(tuple(final))
        x = torch.cat(outputs, -1) if directions == 2 else outputs[0]
        if dropout and train and depth < num_layers - 1:
            x = drop(x)
    return x, finals


class FusedGRU(TorchFunctionMode):
    """Routes ``torch._VF.gru`` (what ``nn.GRU`` calls) through one fused op per layer and direction."""

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if getattr(func, "__name__", "") != "gru" or len(args) != 9 or not isinstance(args[2], (list, tuple)):
            return func(*args, **kwargs)
        x, hx, weights, has_bias, num_layers, dropout, train, bidirectional, batch_first = args
        directions = 2 if bidirectional else 1

        def layer(x: torch.Tensor, w: Sequence[torch.Tensor], index: int, _d: int) -> tuple[torch.Tensor, ...]:
            w_ih, w_hh = w[0], w[1]
            b_ih = w[2] if has_bias else w_ih.new_zeros(w_ih.shape[0])
            b_hh = w[3] if has_bias else w_hh.new_zeros(w_hh.shape[0])
            out, hy, _reserve = fused_rnn_layer(x, w_ih, w_hh, b_ih, b_hh, hx[index:index + 1], GRU_GATES, directions)
            return out, hy

        output, finals = _stacked(x.transpose(0, 1) if batch_first else x, weights, has_bias=has_bias,
                                  num_layers=num_layers, directions=directions, dropout=dropout, train=train,
                                  layer=layer, drop=lambda t: F.dropout(t, p=dropout, training=True))
        return (output.transpose(0, 1) if batch_first else output), torch.cat([hy for hy, in finals], dim=0)


# oneDNN's LSTM mode (ideep::rnn_kind::LSTM, the ``mode`` argument of aten.mkldnn_rnn_layer).
ONEDNN_LSTM = 2


class OneDnnLSTM(TorchFunctionMode):
    """Routes ``torch._VF.lstm`` (what ``nn.LSTM`` calls) through oneDNN's layer op, one per layer and direction,
    whatever the host CPU: the fused layer a GPU profile prices as cuDNN's (``gpuwise.profile.ops``).

    ATen's ``lstm`` takes that path only where the CPU's oneDNN runs the input's dtype (``use_mkldnn`` in
    aten/src/ATen/native/RNN.cpp): a bf16 input (an LSTM after another under autocast) needs AVX-512, and on
    other CPUs (AMD Zen 2-3, most desktop CPUs) it falls back to a few ops per time step, so a GPU prediction
    would depend on the CPU that profiled it. The ops are those of ATen's ``mkldnn_rnn``
    (aten/src/ATen/native/mkldnn/RNN.cpp), dropout between layers as the fused kernel a GPU runs
    (``gpuwise.profile.dropout``). Packed sequences and projections (``proj_size``) run as traced.
    """

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if getattr(func, "__name__", "") != "lstm" or len(args) != 9 or not isinstance(args[1], (list, tuple)):
            return func(*args, **kwargs)
        x, (h0, c0), weights, has_bias, num_layers, dropout, train, bidirectional, batch_first = args
        directions = 2 if bidirectional else 1
        if len(weights) != (4 if has_bias else 2) * num_layers * directions or h0.shape[-1] != c0.shape[-1]:
            return func(*args, **kwargs)  # projections: not oneDNN's path on any CPU
        h0, c0 = h0.contiguous(), c0.contiguous()
        hidden = int(h0.shape[2])

        def zeros(like: torch.Tensor) -> torch.Tensor:  # ATen's bias-free layer: zeros of the weight's shape
            return torch.zeros(like.shape, dtype=like.dtype, device=like.device)

        def layer(x: torch.Tensor, w: Sequence[torch.Tensor], index: int, d: int) -> tuple[torch.Tensor, ...]:
            b_ih, b_hh = (w[2], w[3]) if has_bias else (zeros(w[0]), zeros(w[1]))
            out, hy, cy, _workspace = torch.ops.aten.mkldnn_rnn_layer(
                x, w[0], w[1], b_ih, b_hh, h0[index], c0[index], d > 0, [], ONEDNN_LSTM, hidden, num_layers,
                has_bias, bidirectional, batch_first, train,
            )
            return out, hy, cy

        output, finals = _stacked((x.transpose(0, 1) if batch_first else x).contiguous(), weights, has_bias=has_bias,
                                  num_layers=num_layers, directions=directions, dropout=dropout, train=train,
                                  layer=layer, drop=lambda t: torch.native_dropout(t, dropout, True)[0])
        output = output.transpose(0, 1) if batch_first else output
        return output, torch.stack([hy for hy, _ in finals], 0), torch.stack([cy for _, cy in finals], 0)
