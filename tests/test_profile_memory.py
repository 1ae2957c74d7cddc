"""Memory estimates: invariants that hold whatever the numbers, and nothing real allocated."""

from __future__ import annotations

import resource

import pytest

from gpuwise import profile


def test_memory_grows_with_batch_size() -> None:
    small, large = profile("resnet18", batch_size=2), profile("resnet18", batch_size=8)
    assert large.memory.activations_bytes > 3.5 * small.memory.activations_bytes
    assert large.memory.peak_bytes > small.memory.peak_bytes
    assert large.memory.weights_bytes == small.memory.weights_bytes


def test_peak_breakdown_sums_to_peak() -> None:
    m = profile("resnet18", batch_size=4).memory
    assert sum(m.at_peak_bytes.values()) == m.peak_bytes
    assert m.peak_bytes >= m.weights_bytes + m.optimizer_state_bytes


@pytest.mark.parametrize(
    "optimizer, states_per_weight", [("sgd", 0), ("sgd-momentum", 1), ("adam", 2), ("adamw", 2)]
)
def test_optimizer_state_per_weight(optimizer: str, states_per_weight: int) -> None:
    m = profile("resnet18", batch_size=1, optimizer=optimizer).memory
    param_bytes = 11_689_512 * 4
    # Adam keeps exp_avg and exp_avg_sq in fp32, plus a scalar step per parameter tensor.
    assert m.optimizer_state_bytes == pytest.approx(states_per_weight * param_bytes, abs=4096)
    assert m.gradients_bytes == param_bytes


def test_amp_roughly_halves_activations_and_keeps_fp32_weights() -> None:
    fp32 = profile("resnet18", batch_size=8, precision="fp32").memory
    bf16 = profile("resnet18", batch_size=8, precision="amp-bf16").memory
    assert bf16.weights_bytes == fp32.weights_bytes  # fp32 master weights
    assert 0.4 < bf16.activations_bytes / fp32.activations_bytes < 0.75


def test_nothing_real_is_allocated() -> None:
    # resnet50 at batch 512 needs tens of GiB for real; profiling it must not.
    p = profile("resnet50", batch_size=512)
    assert p.memory.peak_bytes > 20 * 1024**3
    peak_rss_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    assert peak_rss_bytes < 4 * 1024**3


def test_fp16_step_includes_gradient_unscaling() -> None:
    p = profile("resnet18", batch_size=2, precision="amp-fp16")
    assert any("non_finite_check_and_unscale" in g.op for g in p.ops if g.phase == "optimizer")
