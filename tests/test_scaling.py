"""Multi-GPU scaling: every data-parallel step waits for the slowest GPU (gpuwise.predict.parallel)."""

from __future__ import annotations

import math
import random
from dataclasses import replace

import pytest

from gpuwise.config import Precision
from gpuwise.hardware.catalog import load_catalog
from gpuwise.predict import parallel
from gpuwise.predict.fit import ScalingPair, fit_step_spread
from gpuwise.predict.roofline import Efficiency
from gpuwise.predict.step import gpu_step, profile_for_gpu


@pytest.mark.parametrize("n", [2, 4, 8, 16, 64])
def test_the_slowest_of_n_is_the_expected_maximum_of_n_normal_draws(n: int) -> None:
    rng = random.Random(0)
    draws = 20000
    simulated = sum(max(rng.gauss(0.0, 1.0) for _ in range(n)) for _ in range(draws)) / draws
    assert parallel.slowest_of(n) == pytest.approx(simulated, rel=0.05)


def test_one_gpu_waits_for_nobody() -> None:
    assert parallel.slowest_of(1) == 0.0
    assert parallel.sync_wait_s(0.1, 0.2, 1) == 0.0
    assert parallel.sync_wait_s(0.1, 0.0, 8) == 0.0


def test_the_wait_grows_with_the_gpus_and_with_the_square_root_of_the_step() -> None:
    waits = [parallel.sync_wait_s(1.0, 0.1, n) for n in (2, 8, 64, 512)]
    assert waits == sorted(waits) and waits[0] > 0
    # a 100 ms step deviates by the spread itself
    assert parallel.sync_wait_s(0.1, 0.1, 8) == pytest.approx(0.1 * parallel.slowest_of(8) * 0.1)
    # four times the step (four micro batches, a slower GPU): twice the wait, half of it relative to the step
    assert parallel.sync_wait_s(0.4, 0.1, 8) == pytest.approx(2 * parallel.sync_wait_s(0.1, 0.1, 8))


def test_a_family_without_a_fitted_spread_takes_the_global_one() -> None:
    eff = Efficiency(step_spread={"image classification": 0.1}, step_spread_global=0.03)
    assert eff.spread_for("image classification") == 0.1
    assert eff.spread_for("speech-to-text (RNN)") == 0.03


def test_gpu_step_adds_the_wait_for_the_family_spread() -> None:
    gpu = load_catalog().get("A100-SXM4-80GB")
    p = profile_for_gpu("resnet18", batch_size=8, precision=Precision.AMP_BF16, optimizer="sgd-momentum")
    eff = Efficiency(step_spread={p.family: 0.1})
    one = gpu_step(p, gpu, eff)
    eight = gpu_step(p, gpu, eff, num_gpus=8)
    assert one.sync_s == 0.0
    assert eight.sync_s == pytest.approx(0.1 * parallel.slowest_of(8) * (0.1 * eight.compute.step_s) ** 0.5)
    assert eight.step_s == pytest.approx(eight.compute.step_s + eight.communication_s + eight.sync_s)
    assert gpu_step(p, gpu, replace(eff, step_spread={}), num_gpus=8).sync_s == 0.0


def _pairs(spread: float, family: str, n_values: tuple[int, ...]) -> list[ScalingPair]:
    """Scaling pairs as a model with ``spread`` would measure them."""
    out = []
    for n in n_values:
        pair = ScalingPair(family, n, compute_s=0.1, communication_s=0.002, measured=1.0)
        out.append(replace(pair, measured=pair.predicted(spread)))
    return out


def test_the_fit_recovers_each_family_spread_and_shrinks_a_lone_pair(monkeypatch: pytest.MonkeyPatch) -> None:
    pairs = _pairs(0.15, "a", (2, 4, 8, 16) * 3) + _pairs(0.02, "b", (2, 4, 8, 16) * 3) + _pairs(0.4, "c", (8,))
    monkeypatch.setattr("gpuwise.predict.fit.scaling_pairs", lambda *args: pairs)
    eff = fit_step_spread([], Efficiency(), catalog=None, profiles=None)  # type: ignore[arg-type]
    assert eff.step_spread["a"] == pytest.approx(0.15, rel=0.05)
    # a small spread barely moves the efficiency, so the prior pulls it up toward the global one, a little
    assert 0.019 < eff.step_spread["b"] < 0.035 < eff.step_spread_global
    # one pair is not enough to leave the global value far behind: pulled toward it, in log
    assert math.log(eff.step_spread_global) < math.log(eff.step_spread["c"]) < math.log(0.4)
    assert "fitted on 25 published multi-GPU rows" in eff.step_spread_source


def test_no_multi_gpu_rows_leave_the_constants_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gpuwise.predict.fit.scaling_pairs", lambda *args: [])
    eff = Efficiency(step_spread_global=0.05)
    assert fit_step_spread([], eff, catalog=None, profiles=None) is eff  # type: ignore[arg-type]
