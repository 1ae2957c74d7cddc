"""--busbw: the all-reduce bus bandwidth a user measured within one of their nodes (nccl-tests' all_reduce_perf).
The ring within a node runs at it in place of the catalog link times its share (published PCIe rings reach 25-81%
of their link), and predict says which it used."""

from __future__ import annotations

import pytest

from gpuwise.api import predict as api_predict
from gpuwise.predict import parallel
from tests.helpers import run_cli


def test_a_measured_bus_bandwidth_replaces_the_link_and_its_share() -> None:
    default = parallel.links(None, 4, network_gbits=100)
    measured = parallel.links(None, 4, network_gbits=100, busbw_gbs=8.0)
    assert parallel.ring_bandwidth_gbps(default, 4, 4) == pytest.approx(32 * parallel.PCIE_RING_EFFICIENCY)
    assert parallel.ring_bandwidth_gbps(measured, 4, 4) == pytest.approx(8.0)
    assert measured.via == "PCIe 4.0 at 8 GB/s measured" and measured.inter_node_gbps == default.inter_node_gbps
    # across nodes the slower of the measured ring and the node's NICs (4 × 100 Gb/s = 50 GB/s: the ring's)
    assert parallel.ring_bandwidth_gbps(measured, 8, 4) == pytest.approx(8.0)
    assert parallel.ring_text(measured) == "8 GB/s bus bandwidth, measured (--busbw)"
    assert "PCIe 4.0's 32 GB/s a direction × 0.49" in parallel.ring_text(default)
    assert "NVLink's 450 GB/s a direction × 0.8" in parallel.ring_text(parallel.links(900.0, 5, 400))


def test_predict_prices_the_ring_at_the_measured_bus_bandwidth() -> None:
    kw = dict(gpu="RTX-4090", num_gpus=4, batch_size=64, precision="amp-fp16")
    default, slow = api_predict("resnet50", **kw), api_predict("resnet50", **kw, busbw_gbs=4.0)  # type: ignore[arg-type]
    assert default.step is not None and slow.step is not None
    assert slow.step.communication_s > default.step.communication_s
    assert slow.ring == "4 GB/s bus bandwidth, measured (--busbw)" and "--busbw sets yours" in default.ring
    assert api_predict("resnet50", gpu="RTX-4090", batch_size=64).ring == ""  # one GPU: no ring


def test_the_cli_says_which_ring_it_priced_and_a_bad_value_is_one_line() -> None:
    code, out, _ = run_cli("predict", "resnet50", "--gpu", "RTX-4090", "-n", "4", "-b", "64", "--busbw", "4", "-q")
    assert code == 0 and "ring within a node: 4 GB/s bus bandwidth, measured (--busbw)" in out
    assert "exposed communication over PCIe 4.0 at 4 GB/s measured" in out
    for bad in ("0", "-3", "fast"):
        code, _, err = run_cli("predict", "resnet50", "--gpu", "RTX-4090", "-n", "4", "--busbw", bad, "-q")
        assert code == 2 and "--busbw" in err and len(err.strip().splitlines()) == 1


def test_a_published_rows_busbw_prices_its_ring() -> None:
    """"busbw N GB/s" in a row's notes: a user checking the shipped model on their own box (validate --published
    --frozen) gives the bus bandwidth they measured, and the row is predicted as predict --busbw predicts it."""
    from gpuwise.hardware.catalog import load_catalog
    from gpuwise.predict.fit import predict_row, shipped_efficiency
    from gpuwise.predict.published import MappedRow, PublishedRow, map_row
    from gpuwise.predict.step import ProfileCache

    def row(notes: str) -> MappedRow | str:
        return map_row(PublishedRow(index=2, model="bert-large-squad", task="", gpu="RTX-4090", num_gpus=8,
                                    precision="AMP-FP16", batch_per_gpu=32, throughput=600.0, unit="sequences/s",
                                    source="test", notes=notes))

    plain, slow = row("seq len 384"), row("seq len 384; busbw 4 GB/s (all_reduce_perf, 8 GPUs, no P2P)")
    assert isinstance(plain, MappedRow) and isinstance(slow, MappedRow)
    assert (plain.busbw_gbs, slow.busbw_gbs) == (None, 4.0)
    catalog, eff, profiles = load_catalog(), shipped_efficiency(), ProfileCache()
    assert predict_row(slow, catalog, eff, profiles) < predict_row(plain, catalog, eff, profiles)
    assert "above zero" in str(row("busbw 0 GB/s"))
