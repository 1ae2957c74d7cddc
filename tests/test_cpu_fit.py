"""The CPU efficiency fit: it recovers known constants, holds workloads out, and ships a file."""

from __future__ import annotations

import json
from dataclasses import replace
from importlib import resources

import pytest
import torch
from torch import nn

from gpuwise.bench.result import Ceilings
from gpuwise.predict.cpu_fit import DEFAULT, CpuBench, fit_cpu, held_out_by_workload, shipped_cpu_efficiency
from gpuwise.predict.step import cpu_step
from gpuwise.profile import Profile, profile
from tests.helpers import make_workload

CEILINGS = Ceilings(
    device="cpu", device_name="test CPU", matmul_tflops={"float32": 0.3, "bfloat16": 0.8}, memory_gbps=40.0,
    measured_at="2026-11-25T00:00:00+00:00",
)


def _mlp(width: int, depth: int) -> nn.Module:
    return nn.Sequential(*[m for _ in range(depth) for m in (nn.Linear(width, width), nn.GELU())])


def _conv(channels: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU(),
                         nn.Conv2d(channels, channels, 3, padding=1), nn.Flatten(),
                         nn.Linear(channels * 32 * 32, 10))


def _profiles() -> list[Profile]:
    """Steps whose time is mostly matmul, mostly conv, and mostly small ops (dispatch)."""
    mse = lambda m, b: (m(b[0]) - b[1]).pow(2).mean()  # noqa: E731
    xent = lambda m, b: nn.functional.cross_entropy(m(b[0]), b[1])  # noqa: E731
    out = []
    for width, depth, batch in ((512, 4, 64), (1024, 2, 32), (64, 12, 8)):
        w = make_workload(lambda width=width, depth=depth: _mlp(width, depth),
                          lambda n, width=width: (torch.randn(n, width), torch.randn(n, width)), mse,
                          name=f"mlp{width}")
        out.append(profile(w, batch_size=batch))
    for channels, batch in ((32, 8), (16, 4)):
        w = make_workload(lambda channels=channels: _conv(channels),
                          lambda n: (torch.randn(n, 3, 32, 32), torch.randint(0, 10, (n,))), xent,
                          name=f"conv{channels}")
        out.append(profile(w, batch_size=batch))
    return out


@pytest.fixture(scope="module")
def profiles() -> list[Profile]:
    return _profiles()


def test_fit_recovers_the_constants_that_made_the_times(profiles: list[Profile]) -> None:
    truth = replace(DEFAULT, matmul=0.55, conv=0.9, bandwidth=0.4, host_op_s=3e-5)
    rows = [(p, cpu_step(p, CEILINGS, truth).step_s) for p in profiles]
    fitted = fit_cpu(rows, CEILINGS, source="test")
    for p, measured in rows:
        assert cpu_step(p, CEILINGS, fitted).step_s == pytest.approx(measured, rel=0.02)
    # The defaults are off by far more than that: the fit did something.
    assert max(abs(cpu_step(p, CEILINGS, DEFAULT).step_s / m - 1) for p, m in rows) > 0.1
    assert fitted.source == "test"


def test_held_out_never_fits_on_the_workload_it_predicts(profiles: list[Profile]) -> None:
    truth = replace(DEFAULT, matmul=0.55, conv=0.9)
    benches = [
        CpuBench(workload=p.workload, batch_size=p.batch_size, precision="fp32", optimizer="adamw", seq_len=None,
                 image_size=None, median_s=cpu_step(p, CEILINGS, truth).step_s, p10_s=0.0, p90_s=0.0)
        for p in profiles
    ]
    # Poison one workload's measurement: only its own prediction may ignore it.
    benches[0] = replace(benches[0], median_s=benches[0].median_s * 10)
    held = held_out_by_workload(benches, profiles, CEILINGS)
    assert [b.workload for b, _ in held] == [b.workload for b in benches]
    poisoned, predicted = held[0]
    assert predicted < poisoned.median_s / 3  # fitted without the poisoned row
    assert predicted == pytest.approx(poisoned.median_s / 10, rel=0.25)


def test_the_shipped_constants_are_a_fit_with_a_source() -> None:
    shipped = shipped_cpu_efficiency()
    data = json.loads(resources.files("gpuwise.predict").joinpath("cpu_efficiency.json").read_text())
    assert shipped.source == data["source"] and "fitted on" in shipped.source
    assert shipped != DEFAULT


def test_the_committed_benches_carry_their_cache_with_the_ceilings() -> None:
    # The file gives the cache beside the ceilings (written before Ceilings had the field): loading puts
    # it into the ceilings, which is where every CPU prediction reads it.
    from pathlib import Path

    from gpuwise.predict.cpu_fit import BenchSet, load_benches

    path = Path(__file__).parent.parent / "benchmarks" / "results" / "cpu_benches.json"
    data = json.loads(path.read_text())
    assert "cache_bytes" not in data["ceilings"]
    assert load_benches(path).ceilings.cache_bytes == data["cache_bytes"] > 0
    round_trip = BenchSet.from_dict(json.loads(json.dumps(load_benches(path).to_dict())))
    assert round_trip.ceilings.cache_bytes == data["cache_bytes"]
