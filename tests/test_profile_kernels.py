"""Fake kernels return what the real CPU kernels allocate (gpuwise/profile/kernels.py)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from gpuwise.config import StepConfig
from gpuwise.profile.kernels import onednn_lstm_workspace_bytes
from gpuwise.profile.run import profile_step
from tests.helpers import make_workload


class _Workspaces(TorchDispatchMode):
    """The workspace the real kernel returns, per call."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[torch.Tensor, torch.Tensor | None, int, int]] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        if func is torch.ops.aten.mkldnn_rnn_layer.default:
            self.seen.append((args[0], args[6], int(args[10]), out[3].numel()))
        return out


@pytest.mark.parametrize("autocast", [False, True])
@pytest.mark.parametrize(
    ("seq_len", "batch", "input_size", "hidden"), [(7, 3, 5, 8), (33, 16, 300, 256), (1, 1, 64, 250)]
)
def test_lstm_workspace_formula_matches_the_real_kernel(
    seq_len: int, batch: int, input_size: int, hidden: int, autocast: bool
) -> None:
    if autocast and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        pytest.skip("this CPU's oneDNN has no bf16 LSTM (no AVX512-BF16 or AMX): no real kernel to compare with")
    lstm = nn.LSTM(input_size, hidden, num_layers=2, bidirectional=True)
    x = torch.randn(seq_len, batch, input_size, requires_grad=True)
    with _Workspaces() as mode, torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        lstm(x)
    assert len(mode.seen) == 4  # 2 layers x 2 directions
    for inp, cx, hidden_size, real in mode.seen:
        t, b, i = inp.shape
        assert cx is not None
        expected = onednn_lstm_workspace_bytes(t, b, i, hidden_size, inp.element_size(), cx.element_size())
        assert expected == real


def test_lstm_step_estimate_equals_the_real_tracker() -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(64, 128, num_layers=2)
            self.head = nn.Linear(128, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.lstm(x)[0])

    def loss(model: nn.Module, batch: Any) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(model(x).flatten(0, 1), y.flatten())

    w = make_workload(Net, lambda n: (torch.randn(20, n, 64), torch.randint(0, 10, (20, n))), loss)
    config = StepConfig(workload=w.name, batch_size=8)
    fake, real = profile_step(w, config, fake=True).memory, profile_step(w, config, fake=False).memory
    assert fake.activations_bytes == real.activations_bytes
    assert fake.peak_bytes == real.peak_bytes


@pytest.mark.parametrize("param_dtype", [torch.float32, torch.bfloat16])
def test_batch_norm_under_autocast_saves_statistics_at_the_real_dtype(param_dtype: torch.dtype) -> None:
    def build() -> nn.Module:
        d = param_dtype
        return nn.Sequential(
            nn.Conv2d(3, 32, 3, dtype=d), nn.BatchNorm2d(32, dtype=d), nn.Flatten(), nn.Linear(32 * 6 * 6, 10, dtype=d)
        )

    def loss(model: nn.Module, batch: Any) -> torch.Tensor:
        x, y = batch
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return F.cross_entropy(model(x.to(param_dtype)), y)

    w = make_workload(build, lambda n: (torch.randn(n, 3, 8, 8), torch.randint(0, 10, (n,))), loss)
    config = StepConfig(workload=w.name, batch_size=4)
    fake, real = profile_step(w, config, fake=True).memory, profile_step(w, config, fake=False).memory
    assert fake.activations_bytes == real.activations_bytes
    assert fake.peak_bytes == real.peak_bytes


def test_gpu_attention_runs_in_the_autocast_dtype_even_from_fp32_inputs() -> None:
    # A Llama's rotary embedding leaves q and k in fp32 under autocast; CUDA's autocast still runs
    # SDPA in bf16 (the CPU's does not), so the GPU profile's fused attention must be bf16.
    from torch import nn

    from gpuwise.profile import ops, profile
    from tests.helpers import make_workload

    class Attend(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.qkv = nn.Linear(64, 192)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            q, k, v = self.qkv(x).view(x.size(0), x.size(1), 3, 4, 16).unbind(2)
            q, k = q.float(), k.float()  # as rotary embeddings computed in fp32 leave them
            return F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                                  is_causal=True).sum()

    w = make_workload(Attend, lambda n: torch.randn(n, 32, 64), lambda m, b: m(b))
    p = profile(w, batch_size=2, precision="amp-bf16", gpu_kernels=True)
    attention = [g for g in p.ops if g.kind == ops.ATTENTION]
    assert attention and all(g.dtype == "bfloat16" for g in attention)


@pytest.mark.parametrize("precision", ["amp-bf16", "fp32"])
def test_attention_written_out_is_its_separate_kernels_with_the_same_flops(precision: str) -> None:
    """NVIDIA's BERT writes attention out (bmm, scale, softmax, dropout, bmm): profiled so, the (seq × seq)
    scores and probabilities are written, saved for backward and read back, at the FLOPs of the fused kernel;
    softmax in float32 under autocast, as CUDA's autocast runs it."""
    from gpuwise.profile import ops, profile

    b, h, s, d = 2, 4, 64, 16

    class Attend(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.qkv = nn.Linear(h * d, 3 * h * d)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            q, k, v = self.qkv(x).view(b, s, 3, h, d).transpose(1, 3).unbind(2)
            return F.scaled_dot_product_attention(q, k, v, dropout_p=0.1).float().sum()

    w = make_workload(Attend, lambda n: torch.randn(n, s, h * d), lambda m, x: m(x))
    fused = profile(w, batch_size=b, precision=precision, gpu_kernels=True)
    written = profile(w, batch_size=b, precision=precision, gpu_kernels=True, attention_written_out=True)
    assert any(g.kind == ops.ATTENTION for g in fused.ops) and not any(g.kind == ops.ATTENTION for g in written.ops)
    total = sum(g.count * g.flops for g in fused.ops)
    assert sum(g.count * g.flops for g in written.ops) == total
    softmax = [g for g in written.ops if g.op == "aten._softmax.default"]
    assert [(g.dtype, g.bytes) for g in softmax] == [("float32", 2 * b * h * s * s * 4)]  # scores in, probs out
    assert written.memory.activations_bytes > fused.memory.activations_bytes + b * h * s * s * 4
    assert sum(g.count * g.bytes for g in written.ops) > 2 * sum(g.count * g.bytes for g in fused.ops)
    with pytest.raises(ValueError, match="gpu_kernels"):
        profile(w, batch_size=b, attention_written_out=True)


def test_gpu_profile_runs_dropout_as_cuda_fused_kernel() -> None:
    # CUDA runs training dropout as native_dropout: read x, write the output and a one-byte mask;
    # backward reads the gradient and the mask. The CPU's bernoulli_/div_/mul path moves about 3x more.
    from gpuwise.profile import profile

    n = 4096

    class Drop(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(n, n, bias=False)
            self.drop = nn.Dropout(0.1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.drop(self.fc(x)).sum()

    w = make_workload(Drop, lambda b: torch.randn(b, n), lambda m, x: m(x))
    gpu = profile(w, batch_size=8, gpu_kernels=True)
    cpu = profile(w, batch_size=8)
    fused = [g for g in gpu.ops if g.op.startswith("aten.native_dropout")]
    assert sorted((g.op, g.phase) for g in fused) == [
        ("aten.native_dropout.default", "forward"), ("aten.native_dropout_backward.default", "backward"),
    ]
    elements = 8 * n
    forward = next(g for g in fused if g.phase == "forward")
    assert forward.bytes == elements * (4 + 4 + 1)  # x in, output and bool mask out
    assert not any("bernoulli" in g.op for g in gpu.ops)
    assert any("bernoulli" in g.op for g in cpu.ops)
    # Backward saves the bool mask, not a float one: the GPU step's activations are smaller.
    assert gpu.memory.activations_bytes < cpu.memory.activations_bytes


def test_dropout_outside_training_is_left_alone() -> None:
    from gpuwise.profile.dropout import FusedDropout

    x = torch.randn(16)
    with FusedDropout():
        assert torch.equal(F.dropout(x, 0.5, training=False), x)
        assert torch.equal(F.dropout(x, 0.0, training=True), x)
