"""FLOP counts against references that can fail: published numbers and hand formulas."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from gpuwise import profile
from gpuwise.profile import ops
from gpuwise.profile.result import Recurrence
from tests.helpers import make_workload


def test_resnet50_forward_is_4_09_gmacs_per_image_and_params_exact() -> None:
    # He et al. 2015 Table 1 rounds to 4.1 GFLOPs (multiply-adds); torchvision documents 4.09 GFLOPS (MACs).
    p = profile("resnet50", batch_size=2)
    assert p.params_total == 25_557_032
    assert p.params_trainable == 25_557_032
    macs_per_image = p.forward_macs / 2
    assert macs_per_image == pytest.approx(4.09e9, rel=0.02)
    assert p.per_sample(p.forward_flops) == pytest.approx(8.18e9, rel=0.02)


def test_forward_flops_agree_with_torch_flop_counter_on_meta() -> None:
    # A second counter where it is right: torch's FlopCounterMode on the meta device, forward only.
    import torchvision

    with torch.device("meta"):
        model = torchvision.models.resnet50()
        x = torch.randn(2, 3, 224, 224)
    counter = FlopCounterMode(display=False)
    with counter:
        model(x)
    assert profile("resnet50", batch_size=2).forward_flops == counter.get_total_flops()


def test_depthwise_conv_backward_is_twice_forward() -> None:
    # FlopCounterMode in torch 2.14 overcounts this by about the channel count; ours must not.
    channels = 32
    w = make_workload(
        lambda: nn.Conv2d(channels, channels, 3, padding=1, groups=channels),
        lambda n: torch.randn(n, channels, 16, 16, requires_grad=True),
        lambda m, x: m(x).sum(),
    )
    p = profile(w, batch_size=2)
    expected_forward = 2 * (2 * channels * 16 * 16) * (1 * 3 * 3)  # 2 × outputs × (C_in/groups × k²)
    assert p.forward_flops == expected_forward
    assert p.backward_flops == 2 * expected_forward  # grad input + grad weight


@pytest.mark.parametrize("cls, gates", [(nn.LSTM, 4), (nn.GRU, 3)])
def test_rnn_flops_match_gate_formula(cls: type[nn.Module], gates: int) -> None:
    # On the CPU nn.LSTM runs oneDNN's fused layer, which FlopCounterMode counts as 0.
    steps, batch, inputs, hidden, layers = 20, 4, 32, 64, 2
    w = make_workload(
        lambda: cls(inputs, hidden, num_layers=layers, bidirectional=True),
        lambda n: torch.randn(steps, n, inputs),
        lambda m, x: m(x)[0].sum(),
    )
    p = profile(w, batch_size=batch)
    expected = 0
    for layer in range(layers):
        layer_input = inputs if layer == 0 else 2 * hidden
        expected += 2 * 2 * steps * batch * gates * hidden * (layer_input + hidden)  # 2 directions
    assert p.forward_flops == pytest.approx(expected, rel=0.02)
    assert 1.5 * expected <= p.backward_flops <= 2.02 * expected


@pytest.mark.parametrize("bidirectional", [False, True])
def test_rnn_ops_record_their_time_step_loop(bidirectional: bool) -> None:
    """What the GPU model prices step by step: each layer op's steps, batch, hidden and gates."""
    steps, batch, inputs, hidden = 7, 3, 16, 8
    w = make_workload(
        lambda: nn.LSTM(inputs, hidden, num_layers=2, bidirectional=bidirectional, batch_first=True),
        lambda n: torch.randn(n, steps, inputs),  # batch first: the layer ops still see (steps, batch, ...)
        lambda m, x: m(x)[0].sum(),
    )
    p = profile(w, batch_size=batch)
    rnn = [g for g in p.ops if g.kind == ops.RNN]
    assert {g.phase for g in rnn} == {"forward", "backward"}
    assert {g.recurrence for g in rnn} == {
        Recurrence(steps=steps, batch=batch, hidden=hidden, gates=4, directions=2 if bidirectional else 1)
    }
    assert all(g.recurrence is None for g in p.ops if g.kind != ops.RNN)


def test_fused_gru_records_its_time_step_loop() -> None:
    p = profile("deepspeech2", batch_size=2, seq_len=100, gpu_kernels=True)
    loops = {g.recurrence for g in p.ops if g.kind == ops.RNN}
    assert len(loops) == 1
    (loop,) = loops
    assert loop is not None
    assert (loop.batch, loop.gates, loop.directions) == (2, 3, 2)
    assert loop.step_flops == 2 * 2 * loop.hidden * 3 * loop.hidden


def test_attention_formula() -> None:
    # Q·Kᵀ and P·V for 2 × 4 heads × 16 queries × 16 keys × dim 8.
    assert ops.attention_flops((2, 4, 16, 8), (2, 4, 16, 8), (2, 4, 16, 8)) == 2 * 2 * (2 * 4 * 16 * 16 * 8)


def test_gpt2_training_flops_per_token_match_palm_formula() -> None:
    # PaLM (Chowdhery et al. 2022, arXiv:2204.02311) appendix B: training FLOPs per token
    # = 6·N + 12·L·d·T, N the parameters used in matrix products. For GPT-2 that is every
    # parameter except the position embeddings (the tied token embedding is the LM head's matmul).
    seq_len = 256
    p = profile("gpt2", batch_size=2, seq_len=seq_len)
    layers, d_model, n_positions = 12, 768, 1024
    n = p.params_total - n_positions * d_model
    reference = 6 * n + 12 * layers * d_model * seq_len
    assert p.tokens_per_step == 2 * seq_len
    assert p.training_flops / p.tokens_per_step == pytest.approx(reference, rel=0.03)


def test_per_layer_and_per_kind_sum_to_totals() -> None:
    p = profile("resnet18", batch_size=2)
    assert sum(layer.forward_flops for layer in p.layers) == p.forward_flops
    assert sum(layer.backward_flops for layer in p.layers) == p.backward_flops
    assert sum(k.forward_flops for k in p.kinds) == p.forward_flops
    assert sum(k.backward_flops for k in p.kinds) == p.backward_flops
    assert sum(g.flops * g.count for g in p.ops) == p.training_flops
    assert sum(g.bytes * g.count for g in p.ops) == p.bytes_moved
    assert sum(layer.bytes for layer in p.layers) == p.bytes_moved


def test_flops_scale_with_batch() -> None:
    small, large = profile("resnet18", batch_size=1), profile("resnet18", batch_size=4)
    assert large.forward_flops == 4 * small.forward_flops


def test_unknown_ops_are_audited_not_silent() -> None:
    # An op in no table must appear in the audit, with its count.
    class Odd(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.ones(8))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.lgamma(x * self.scale)

    w = make_workload(Odd, lambda n: torch.randn(n, 8), lambda m, x: m(x).sum())
    p = profile(w, batch_size=2)
    audited = {u.op: u.count for u in p.uncounted}
    assert audited == {"aten.lgamma.default": 1, "aten.digamma.default": 1}  # forward, and its derivative


def test_gpu_profile_runs_a_gru_as_one_fused_op_per_layer_and_direction() -> None:
    # The CPU decomposes nn.GRU into per-step ops; a GPU (cuDNN) runs one call per layer and direction.
    cpu = profile("deepspeech2", batch_size=2, seq_len=100)
    gpu = profile("deepspeech2", batch_size=2, seq_len=100, gpu_kernels=True)
    assert gpu.forward_flops == cpu.forward_flops
    assert gpu.backward_flops == pytest.approx(cpu.backward_flops, rel=0.01)
    rnn = {k.kind: k.num_ops for k in gpu.kinds}["rnn"]
    assert rnn == 2 * 5 * 2  # 5 bidirectional layers, forward and backward
    assert gpu.memory.peak_bytes == pytest.approx(cpu.memory.peak_bytes, rel=0.05)


def _stacked_lstms(*, bias: bool = True) -> object:
    """Two LSTMs in a row, batch first, the second bidirectional with two layers: under autocast the second
    takes the first's bf16 output, which ATen's own lstm runs step by step on CPUs without AVX-512."""

    class Stacked(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.first = nn.LSTM(16, 32, batch_first=True, bias=bias)
            self.second = nn.LSTM(32, 24, num_layers=2, bidirectional=True, batch_first=True, bias=bias)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.second(self.first(x)[0])[0]

    return make_workload(Stacked, lambda n: torch.randn(n, 9, 16), lambda m, x: m(x).float().sum())


def test_gpu_profile_runs_every_lstm_as_one_layer_op_whatever_the_cpu() -> None:
    # A GPU (cuDNN) runs one call per layer and direction; the profile must not depend on the CPU tracing it.
    p = profile(_stacked_lstms(), batch_size=4, precision="amp-bf16", gpu_kernels=True)
    rnn = [g for g in p.ops if g.kind == ops.RNN]
    layer_calls = 1 + 2 * 2  # the first LSTM; the second's two layers, two directions each
    assert sum(g.count for g in rnn if g.phase == "forward") == layer_calls
    assert sum(g.count for g in rnn if g.phase == "backward") == layer_calls
    assert {g.dtype for g in rnn} == {"bfloat16"}
    assert not [g for g in p.ops if g.kind == ops.MATMUL]  # no step-by-step gate products


@pytest.mark.parametrize("bias", [True, False])
def test_gpu_profile_lstm_traces_what_atens_onednn_path_traces(bias: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    # In float32 every CPU's ATen takes oneDNN's path itself: gpuwise's routing must trace the same ops.
    from gpuwise.profile import rnn

    routed = profile(_stacked_lstms(bias=bias), batch_size=4, gpu_kernels=True)
    monkeypatch.setattr(rnn.OneDnnLSTM, "__torch_function__",
                        lambda self, func, types, args=(), kwargs=None: func(*args, **(kwargs or {})))
    native = profile(_stacked_lstms(bias=bias), batch_size=4, gpu_kernels=True)
    assert any(g.kind == ops.RNN for g in native.ops)
    assert sorted(map(repr, routed.ops)) == sorted(map(repr, native.ops))
    assert routed.memory == native.memory
