"""Device ceilings: the timing follows the protocol, the CPU measures, the cache measures once."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from gpuwise.bench import calibrate as cal
from gpuwise.bench.calibrate import (
    MIB,
    CalibrationPlan,
    _tf32,
    cached_ceilings,
    calibrate,
    ceilings_in,
    copy_gbps,
    matmul_tflops,
    with_cache,
)
from gpuwise.bench.result import Ceilings
from gpuwise.cli.app import get_app
from gpuwise.errors import GpuwiseError
from gpuwise.hardware.local import cpu_cache_bytes, cpu_model, machine_key
from gpuwise.store import open_store

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU (torch.cuda is unavailable)")


class FakeDevice:
    """A clock that only GEMMs advance, and a sync and GEMM that record the order of calls."""

    def __init__(self, gemm_s: dict[int, list[float]]) -> None:
        self.now_s = 0.0
        self.events: list[str] = []
        self.gemm_s = {n: list(times) for n, times in gemm_s.items()}  # per size, consumed in order
        self.sizes: list[int] = []

    def clock(self) -> float:
        self.events.append("clock")
        return self.now_s

    def sync(self) -> None:
        self.events.append("sync")

    def mm(self, a: torch.Tensor, b: torch.Tensor, *, out: torch.Tensor) -> torch.Tensor:
        n = a.shape[0]
        self.events.append("mm")
        self.sizes.append(n)
        self.now_s += self.gemm_s[n].pop(0)
        return out


def test_gemm_timing_discards_warmup_and_syncs_before_each_clock_read(monkeypatch: pytest.MonkeyPatch) -> None:
    # two warm-ups that take 100 s each, then three timed runs of 2, 5 and 3 s: the median is 3 s
    fake = FakeDevice({64: [100.0, 100.0, 2.0, 5.0, 3.0]})
    monkeypatch.setattr(torch, "mm", fake.mm)
    plan = CalibrationPlan((64,), 0.0, 4 * MIB, num_repeats=3, num_warmup=2)
    tflops = matmul_tflops("float32", "cpu", fake.sync, plan, clock=fake.clock)
    timed = ["sync", "clock", "mm", "sync", "clock"]
    assert fake.events == ["mm", "mm", *timed, *timed, *timed]
    assert tflops == pytest.approx(2 * 64**3 / 3.0 / 1e12)


def test_gemm_size_grows_until_one_gemm_is_long_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    # 32 is too fast for the 1 s target, 64 is long enough, 128 is never allocated
    fake = FakeDevice({32: [0.1, 0.1], 64: [1.5] * 2 + [9.0] + [2.0] * 3})
    monkeypatch.setattr(torch, "mm", fake.mm)
    plan = CalibrationPlan((32, 64, 128), 1.0, 4 * MIB, num_repeats=3, num_warmup=1)
    tflops = matmul_tflops("bfloat16", "cpu", fake.sync, plan, clock=fake.clock)
    assert fake.sizes == [32, 32, 64, 64, 64, 64, 64, 64]
    assert tflops == pytest.approx(2 * 64**3 / 2.0 / 1e12)


def test_the_convolution_product_stops_at_the_size_that_is_long_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    # a slow dtype (bf16 without bf16 instructions): 64 is already long enough, so 128 is never run
    fake = FakeDevice({64: [1.5] * 2 + [9.0] + [2.0] * 3})

    def conv2d(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        fake.sizes.append(x.shape[1])
        fake.now_s += fake.gemm_s[x.shape[1]].pop(0)
        return x

    monkeypatch.setattr(torch.nn.functional, "conv2d", conv2d)
    plan = CalibrationPlan((64, 128), 1.0, 4 * MIB, num_repeats=3, num_warmup=1)
    tflops = cal.conv_gemm_tflops("bfloat16", plan, clock=fake.clock)
    assert fake.sizes == [64] * 6
    assert tflops == pytest.approx(2 * 64**3 / 2.0 / 1e12)


def test_every_kernel_of_a_repetition_is_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeDevice({16: [1.0] * 8})
    monkeypatch.setattr(torch, "mm", fake.mm)
    plan = CalibrationPlan((16,), 0.0, 4 * MIB, num_repeats=3, num_warmup=1, num_inner=2)
    tflops = matmul_tflops("float32", "cpu", fake.sync, plan, clock=fake.clock)
    assert fake.events.count("mm") == 8
    assert tflops == pytest.approx(2 * 2 * 16**3 / 2.0 / 1e12)  # two GEMMs in 2 s


def test_gemm_that_cannot_fit_says_so() -> None:
    plan = CalibrationPlan((4096,), 0.0, 4 * MIB, num_repeats=1)
    with pytest.raises(GpuwiseError, match=r"not enough free memory on cpu to calibrate float32 matmul"):
        matmul_tflops("float32", "cpu", lambda: None, plan, max_bytes=64 * MIB)


def test_copy_counts_bytes_read_and_written() -> None:
    ticks = iter(range(1000))
    plan = CalibrationPlan((64,), 0.0, 8 * MIB, num_repeats=3)
    # every clock read is one second later: each timed copy of 8 MiB takes 1 s
    gbps = copy_gbps("cpu", lambda: None, plan, clock=lambda: float(next(ticks)))
    assert gbps == pytest.approx(2 * 8 * MIB / 1e9)
    # a small budget shrinks the tensor (src and dst both fit), a tiny one is an error
    ticks = iter(range(1000))
    assert copy_gbps("cpu", lambda: None, plan, clock=lambda: float(next(ticks)), max_bytes=10 * MIB) == (
        pytest.approx(2 * 5 * MIB / 1e9)
    )
    with pytest.raises(GpuwiseError, match=r"not enough free memory on cpu to measure its bandwidth"):
        copy_gbps("cpu", lambda: None, plan, max_bytes=MIB)


def test_quick_cpu_calibration_measures_positive_rates() -> None:
    num_threads = torch.get_num_threads()
    c = calibrate("cpu", quick=True)
    assert c.device == "cpu"
    assert c.device_name == cpu_model()
    assert set(c.matmul_tflops) == {"float32", "bfloat16"}
    # positive, and not absurd for a CPU: under 100 TFLOP/s and 10 TB/s
    assert all(0 < rate < 100 for rate in c.matmul_tflops.values())
    assert 0 < c.memory_gbps < 10_000
    assert c.cache_bytes == cpu_cache_bytes()  # stored with the rates: a prediction from them reads no sysfs
    measured_at = datetime.fromisoformat(c.measured_at)
    assert measured_at.utcoffset() == timedelta(0)
    assert torch.get_num_threads() == num_threads


def test_tf32_flags_are_restored_even_after_an_error() -> None:
    matmul = torch.backends.cuda.matmul
    before = (matmul.allow_tf32, matmul.fp32_precision)
    with pytest.raises(RuntimeError, match="boom"), _tf32("cuda:0", enabled=not before[0]):
        assert matmul.allow_tf32 is not before[0]
        raise RuntimeError("boom")
    assert (matmul.allow_tf32, matmul.fp32_precision) == before


def fake_ceilings(device: str = "cpu", name: str | None = None) -> Ceilings:
    return Ceilings(
        device=device,
        device_name=name or cpu_model(),
        matmul_tflops={"float32": 0.1, "bfloat16": 0.4},
        memory_gbps=20.0,
        measured_at="2026-01-01T00:00:00+00:00",
    )


class FakeStore:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], Ceilings] = {}

    def get_ceilings(self, device: str, machine: str) -> Ceilings | None:
        return self.rows.get((device, machine))

    def put_ceilings(self, c: Ceilings, machine: str) -> None:
        self.rows[(c.device, machine)] = c


class CountingCalibrate:
    def __init__(self) -> None:
        self.calls: list[tuple[str, bool]] = []

    def __call__(self, device: str, *, quick: bool = False) -> Ceilings:
        self.calls.append((device, quick))
        return fake_ceilings(device)


def test_ceilings_are_measured_once_then_read() -> None:
    store, measure = FakeStore(), CountingCalibrate()
    first = ceilings_in(store, "cpu", quick=True, measure=measure)
    assert measure.calls == [("cpu", True)]
    assert store.rows == {("cpu", machine_key()): first}
    assert ceilings_in(store, "cpu", measure=measure) == first
    assert len(measure.calls) == 1


def test_ceilings_of_another_device_name_are_measured_again() -> None:
    store, measure = FakeStore(), CountingCalibrate()
    store.put_ceilings(fake_ceilings(name="some other CPU"), machine_key())
    assert ceilings_in(store, "cpu", measure=measure).device_name == cpu_model()
    assert len(measure.calls) == 1


def test_cached_ceilings_use_the_results_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    measure = CountingCalibrate()
    monkeypatch.setattr(cal, "calibrate", measure)
    db = tmp_path / "results.db"
    first = cached_ceilings("cpu", db)
    again = cached_ceilings("cpu", db)
    assert len(measure.calls) == 1
    assert again == first
    with open_store(db) as store:
        assert store.get_ceilings("cpu", machine_key()) == first


def test_cli_calibrate_stores_and_prints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    measure = CountingCalibrate()
    monkeypatch.setattr(cal, "calibrate", measure)
    db = str(tmp_path / "results.db")
    runner = CliRunner()
    result = runner.invoke(get_app(), ["calibrate", "--device", "cpu", "--db", db, "--json"])
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.stdout)
    assert row["device"] == "cpu" and row["matmul_tflops"]["bfloat16"] == 0.4
    assert row["machine"] == machine_key()
    with open_store(Path(db)) as store:
        assert store.get_ceilings("cpu", machine_key()) == fake_ceilings()

    monkeypatch.setattr(cal, "calibrate", lambda d, quick: replace(fake_ceilings(d), memory_gbps=25))
    result = runner.invoke(get_app(), ["calibrate", "--db", db])
    assert result.exit_code == 0, result.output
    for text in ("dense matmul TFLOP/s per dtype", "float32", "bfloat16", "GB/s", "25.0", "0.4"):
        assert text in result.stdout
    with open_store(Path(db)) as store:  # calibrate always measures: the newer record wins
        stored = store.get_ceilings("cpu", machine_key())
        assert stored is not None and stored.memory_gbps == 25


def test_cli_calibrate_rejects_a_missing_gpu(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    result = CliRunner().invoke(get_app(), ["calibrate", "--device", "cuda", "--db", str(tmp_path / "r.db")])
    assert result.exit_code == 2
    assert "unknown device 'cuda': this machine has cpu only; use --device cpu" in result.stderr


@pytest.mark.cuda
@needs_cuda
def test_quick_gpu_calibration() -> None:
    matmul = torch.backends.cuda.matmul
    before = (matmul.allow_tf32, matmul.fp32_precision)
    c = calibrate("cuda", quick=True)
    assert c.device == "cuda:0"
    assert set(c.matmul_tflops) == {"float32", "tf32", "bfloat16", "float16"}
    assert all(rate > 0 for rate in c.matmul_tflops.values())
    # tensor cores: fp16 beats fp32 (TF32 off) on every NVIDIA GPU since Volta
    assert c.matmul_tflops["float16"] > c.matmul_tflops["float32"]
    assert c.memory_gbps > 100
    assert (matmul.allow_tf32, matmul.fp32_precision) == before


def test_a_cpu_record_from_before_the_cache_field_gets_this_cpus_cache(tmp_path: Path) -> None:
    from dataclasses import asdict

    old = fake_ceilings()
    assert old.cache_bytes is None
    assert with_cache(old) == replace(old, cache_bytes=cpu_cache_bytes())
    gpu = fake_ceilings("cuda:0", "Some GPU")
    assert with_cache(gpu) is gpu  # a GPU has no CPU cache to fill
    # An older store holds the record without the field: it loads as None, and ceilings_in fills it.
    db = tmp_path / "results.db"
    record = asdict(old)
    del record["cache_bytes"]
    with open_store(db) as store:
        store._conn.execute(
            "INSERT INTO ceilings (machine, device, device_name, measured_at, record) VALUES (?, ?, ?, ?, ?)",
            (machine_key(), "cpu", old.device_name, old.measured_at, json.dumps(record)),
        )
        store._conn.commit()
        assert store.get_ceilings("cpu", machine_key()) == old
        assert ceilings_in(store, "cpu", measure=CountingCalibrate()).cache_bytes == cpu_cache_bytes()
