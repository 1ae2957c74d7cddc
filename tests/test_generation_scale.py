"""A GPU generation's scale: how fast its kernels run against the shared constants, fitted on its published rows
and shrunk toward 1 (``gpuwise.predict.fit.fit_generation_scale``), and what it changes in a step."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from gpuwise.hardware.catalog import load_catalog
from gpuwise.predict.fit import fit_generation_scale, predict_row, row_profile, source_spreads
from gpuwise.predict.published import MappedRow, PublishedRow, map_row
from gpuwise.predict.roofline import Efficiency, step_time
from gpuwise.predict.step import ProfileCache, gpu_rates
from gpuwise.profile import ops


def _rows(gpu: str, slower: float, source: str, count: int, profiles: ProfileCache, eff: Efficiency
          ) -> list[MappedRow]:
    """``count`` rows of ``gpu`` whose measured throughput is the prediction with ``eff`` / ``slower``."""
    catalog = load_catalog()
    found = []
    for batch in (8, 16, 32, 64)[:count]:
        row = PublishedRow(index=2, model="resnet18", task="", gpu=gpu, num_gpus=1, precision="AMP-FP16",
                           batch_per_gpu=batch, throughput=1.0, unit="images/s", source=source, notes="")
        m = map_row(row)
        assert isinstance(m, MappedRow)
        measured = predict_row(m, catalog, eff, profiles) / slower
        found.append(replace(m, row=replace(row, throughput=measured)))
    return found


def test_a_generation_runs_as_its_rows_say_shrunk_toward_the_shared_constants() -> None:
    catalog, profiles, eff = load_catalog(), ProfileCache(), Efficiency(source="shared")
    slow = _rows("L4", 1.25, "a blog", 3, profiles, eff)  # Ada, 25% slower than the shared constants say
    exact = _rows("A100-SXM4-80GB", 1.0, "a README", 3, profiles, eff)  # Ampere, as they say
    fitted = fit_generation_scale([*slow, *exact], eff, catalog, profiles)
    assert set(fitted.generation_scale) == {"Ada", "Ampere"}
    assert abs(fitted.generation_scale["Ampere"] - 1.0) < 0.01
    ratio = [predict_row(m, catalog, fitted, profiles) / m.row.throughput for m in slow]
    # pulled most of the way to the rows (one source: about 5/6 in log), not all of it
    assert all(1.0 < r < 1.25 ** 0.3 for r in ratio), ratio
    assert fitted.generation_scale["Ada"] < 1.0
    # the other constants stay; a generation without rows (Hopper) runs at them
    assert (fitted.matmul, fitted.bandwidth) == (eff.matmul, eff.bandwidth)
    assert fitted.at_generation("Hopper") is fitted


def test_each_source_counts_once_and_a_held_out_generation_gets_no_scale() -> None:
    catalog, profiles, eff = load_catalog(), ProfileCache(), Efficiency(source="shared")
    one_source = _rows("L4", 1.25, "a blog", 4, profiles, eff)
    assert fit_generation_scale(one_source, eff, catalog, profiles, exclude="Ada").generation_scale == {}
    # the same four rows told by four sources (one workload in one file each) weigh more against the prior
    four = [replace(m, row=replace(m.row, file=f"file{i}.csv")) for i, m in enumerate(one_source)]
    once = fit_generation_scale(one_source, eff, catalog, profiles).generation_scale["Ada"]
    more = fit_generation_scale(four, eff, catalog, profiles).generation_scale["Ada"]
    assert more < once < 1.0


def test_a_generation_s_scale_speeds_its_kernels_not_its_fixed_costs_nor_fused_attention() -> None:
    eff = Efficiency(generation_scale={"Ampere": 2.0}, flash_attention={"Ampere": 0.6})
    faster = eff.at_generation("Ampere")
    assert (faster.matmul, faster.bandwidth, faster.sm_stream_gbps) == (2 * eff.matmul, 2 * eff.bandwidth,
                                                                        2 * eff.sm_stream_gbps)
    assert (faster.kernel_latency_s, faster.host_op_s, faster.attention) == (eff.kernel_latency_s, eff.host_op_s,
                                                                            eff.attention)
    assert faster.for_kind(ops.ATTENTION, flash_family="Ampere") == 0.6
    catalog, profiles = load_catalog(), ProfileCache()
    (m,) = _rows("A100-SXM4-80GB", 1.0, "a README", 1, profiles, eff)
    p = row_profile(m, profiles)
    plain = replace(eff, generation_scale={})
    a100, h100 = gpu_rates(catalog.get("A100-SXM4-80GB")), gpu_rates(catalog.get("H100-SXM5-80GB"))
    base, scaled = step_time(p, a100, plain), step_time(p, a100, eff)
    assert scaled.latency_s == base.latency_s and scaled.host_s == base.host_s
    assert scaled.device_s - scaled.latency_s == pytest.approx((base.device_s - base.latency_s) / 2)
    assert step_time(p, h100, eff) == step_time(p, h100, plain)  # another generation's GPU: as before


def test_a_source_of_many_rows_outweighs_a_source_of_one() -> None:
    catalog, profiles, eff = load_catalog(), ProfileCache(), Efficiency(source="shared")

    def share_taken(lone_slower: float, many_slower: float) -> float:
        """How much of the way from 1 to 1 / 1.3 the fitted Ada scale goes (in log)."""
        lone = _rows("L4", lone_slower, "a blog", 1, profiles, eff)
        many = [replace(m, row=replace(m.row, file="readme.csv")) for m in _rows("L4", many_slower, "a README", 4,
                                                                                 profiles, eff)]
        scale = fit_generation_scale([*lone, *many], eff, catalog, profiles).generation_scale["Ada"]
        return math.log(scale) / math.log(1 / 1.3)

    # one row says 30% slower, four rows of another source say as the constants: the four decide more of it
    assert 0.0 < share_taken(1.3, 1.0) < 0.45
    # the other way round: the four rows' 30% carries the scale more than half the way
    assert 0.5 < share_taken(1.0, 1.3) < 1.0


def test_the_spreads_are_measured_within_sources_and_between_them() -> None:
    catalog, profiles, eff = load_catalog(), ProfileCache(), Efficiency(source="shared")

    def source(name: str, log_errors: list[float]) -> list[MappedRow]:
        """Rows of an Ada GPU from ``name`` whose log error at ``eff`` is each of ``log_errors``."""
        rows = [_rows("L4", math.exp(e), "a blog", 4, profiles, eff)[i] for i, e in enumerate(log_errors)]
        return [replace(m, row=replace(m.row, file=name)) for m in rows]

    noise = [0.1, -0.1]
    # two sources whose rows scatter by 0.1 about the same mean: the rows' spread, no source spread
    row_spread, source_spread = source_spreads([*source("a", noise), *source("b", noise)], eff, catalog, profiles)
    assert row_spread == pytest.approx(math.sqrt(0.02), rel=1e-6)
    assert source_spread == 0.0
    # the second source's mean moved by 0.5: far more than its rows explain (DerSimonian and Laird: 0.339)
    shifted = [0.5 + e for e in noise]
    row_spread, source_spread = source_spreads([*source("a", noise), *source("b", shifted)], eff, catalog, profiles)
    assert row_spread == pytest.approx(math.sqrt(0.02), rel=1e-6)
    assert source_spread == pytest.approx(math.sqrt(0.115), rel=1e-4)
