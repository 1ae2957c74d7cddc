"""The benchmark protocol and the batch-size search, on the CPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gpuwise.bench import autobatch
from gpuwise.bench.protocol import summarize, time_steps
from gpuwise.config import Precision
from gpuwise.errors import GpuwiseError

EXAMPLE = str(Path(__file__).resolve().parent.parent / "examples" / "my_model.py") + ":build"


def test_protocol_discards_warmup_and_syncs_around_every_timed_step() -> None:
    events: list[str] = []
    ticks = iter(range(100))

    def clock() -> float:
        events.append("clock")
        return float(next(ticks))

    timing = time_steps(lambda: events.append("step"), lambda: events.append("sync"), steps=3, warmup=2,
                        clock=clock)
    assert events[:2] == ["step", "step"]  # warm-up: not timed
    assert events[2:] == ["sync", "clock", "step", "sync", "clock"] * 3
    assert timing.num_steps == 3 and timing.num_warmup == 2
    assert timing.step_times_s == (1.0, 1.0, 1.0)


def test_summary_is_median_and_deciles() -> None:
    t = summarize([5.0, 1.0, 2.0, 3.0, 4.0], num_warmup=1)
    assert t.median_s == 3.0
    assert 1.0 <= t.p10_s < t.median_s < t.p90_s <= 5.0


@pytest.mark.parametrize("steps, warmup, flag", [(0, 3, "--steps"), (5, 0, "--warmup")])
def test_steps_and_warmup_must_be_positive(steps: int, warmup: int, flag: str) -> None:
    with pytest.raises(GpuwiseError, match=flag):
        time_steps(lambda: None, lambda: None, steps=steps, warmup=warmup)


@pytest.mark.parametrize("limit", [1, 2, 7, 37, 100, 1000])
def test_largest_batch_converges_on_a_memory_limit(limit: int) -> None:
    tried: list[int] = []

    def fits_at(b: int) -> bool:
        tried.append(b)
        return b <= limit

    assert autobatch.largest_batch(fits_at, limit=4096) == limit
    assert len(tried) <= 2 * limit.bit_length() + 2  # grow then bisect: logarithmic


def test_largest_batch_at_the_search_limit_and_when_nothing_fits() -> None:
    assert autobatch.largest_batch(lambda b: True, limit=100) == 100
    assert autobatch.largest_batch(lambda b: False, limit=100) == 0


def test_out_of_memory_is_caught_and_the_search_goes_on() -> None:
    # The same code path as a CUDA OOM: torch.OutOfMemoryError raised by the step.
    def step(batch_size: int) -> None:
        if batch_size > 24:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    assert autobatch.largest_batch(lambda b: autobatch.fits(step, b)) == 24


def test_only_real_out_of_memory_is_retried() -> None:
    def step(batch_size: int) -> None:
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied (out of memory? no)")

    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        autobatch.fits(step, 8)


@pytest.fixture
def quick_calibration(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh database triggers a calibration; the quick one is enough for a test."""
    from gpuwise.bench import calibrate

    real = calibrate.calibrate
    monkeypatch.setattr(calibrate, "calibrate", lambda device, quick=False: real(device, quick=True))


def test_bench_on_cpu_reports_throughput_from_the_median(tmp_path: Path, quick_calibration: None) -> None:
    from gpuwise.bench.run import BenchConfig, bench
    from gpuwise.store import open_store

    db = tmp_path / "results.db"
    result = bench(BenchConfig.of(workload=EXAMPLE, batch_size=8, steps=3, warmup=1), store_path=db)
    assert result.samples_per_s == pytest.approx(8 / result.timing.median_s)
    assert result.achieved_tflops == pytest.approx(
        result.training_flops_per_step / result.timing.median_s / 1e12
    )
    assert result.timing.num_steps == 3
    assert result.peak_memory_bytes > 0
    assert result.device == "cpu"
    assert result.mfu is not None and result.mfu == pytest.approx(result.achieved_tflops / result.peak_tflops)
    with open_store(db) as store:
        stored = store.results()
    assert [r.id for r in stored] == [result.id]
    assert stored[0].timing.median_s == result.timing.median_s


def test_cpu_auto_batch_stays_within_free_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gpuwise.bench import run
    from gpuwise.workloads import get_workload

    # Pretend the machine has 64 MiB free: the search must stop where the estimate says so.
    monkeypatch.setattr("gpuwise.hardware.local.free_memory_bytes", lambda device: 64 * 2**20)
    w = get_workload(EXAMPLE)
    config = run.BenchConfig.of(workload=EXAMPLE, auto_batch=True, precision=Precision.FP32)  # as bench resolves auto
    best = run.find_batch_size(w, config, "cpu")
    from gpuwise.profile import profile

    budget = run.CPU_MEMORY_HEADROOM * 64 * 2**20
    assert best > 1
    assert profile(w, batch_size=best).memory.peak_bytes <= budget
    # The affine fit may leave a little on the table, never much.
    assert profile(w, batch_size=int(best * 1.1) + 1).memory.peak_bytes > budget


@pytest.mark.parametrize(
    "args, message",
    [
        (["--device", "cuda:3"], r"unknown device 'cuda:3'"),
        (["--device", "cpu", "--steps", "0"], r"--steps must be a positive integer, got 0"),
        (["--device", "cpu", "--warmup", "0"], r"--warmup must be a positive integer, got 0"),
        (["--device", "cpu", "--batch-size", "lots"], r"--batch-size must be a positive integer"),
        (["--device", "cpu", "--db", "/proc/gpuwise/results.db", "--steps", "1", "--warmup", "1",
          "--batch-size", "2"], r"/proc/gpuwise"),
    ],
)
def test_bench_user_mistakes_get_one_line_and_exit_2(
    args: list[str], message: str, quick_calibration: None
) -> None:
    import re

    from tests.helpers import run_cli

    code, out, err = run_cli("bench", EXAMPLE, *args)
    assert code == 2, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and re.search(message, lines[0]), err


def test_llm_that_cannot_fit_the_cpu_says_so_with_its_need(monkeypatch: pytest.MonkeyPatch) -> None:
    from gpuwise.bench.run import BenchConfig, bench

    monkeypatch.setattr("gpuwise.hardware.local.free_memory_bytes", lambda device: 8 * 2**30)
    with pytest.raises(GpuwiseError, match=r"does not fit on the CPU even at batch 1: it needs about .* GiB"):
        bench(BenchConfig.of(workload="llama-1b", batch_size=1, seq_len=512), store=False)


BLOCKS = """
import torch
from torch import nn

import gpuwise


class Blocks(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Sequential(nn.Linear(256, 1024), nn.GELU(), nn.Linear(1024, 256))
                                    for _ in range(6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = x + layer(x)
        return x


def build() -> gpuwise.UserWorkload:
    return gpuwise.UserWorkload(model=Blocks(), make_batch=lambda n: torch.randn(n, 256),
                                loss=lambda model, x: model(x).pow(2).mean())
"""


def test_bench_runs_and_records_activation_checkpointing(tmp_path: Path, quick_calibration: None) -> None:
    from gpuwise.bench.run import BenchConfig, bench
    from gpuwise.config import ActivationCheckpointing

    (tmp_path / "blocks.py").write_text(BLOCKS)
    workload = f"{tmp_path / 'blocks.py'}:build"
    plain = bench(BenchConfig.of(workload=workload, batch_size=512, steps=2, warmup=1), store=False)
    full = bench(BenchConfig.of(workload=workload, batch_size=512, steps=2, warmup=1,
                             activation_checkpointing=ActivationCheckpointing.FULL), store_path=tmp_path / "r.db")
    assert (plain.activation_checkpointing, full.activation_checkpointing) == ("none", "full")
    # the same model FLOPs (the recompute is not the model's), less memory at the peak of the step
    assert full.training_flops_per_step == plain.training_flops_per_step
    assert full.peak_memory_bytes < plain.peak_memory_bytes


@pytest.mark.slow
def test_bench_compiles_each_block_and_records_it(tmp_path: Path, quick_calibration: None) -> None:
    from gpuwise.bench.run import BenchConfig, bench
    from gpuwise.compiling import cannot_compile

    if cannot_compile("cpu"):
        pytest.skip(cannot_compile("cpu"))
    (tmp_path / "blocks.py").write_text(BLOCKS)
    workload = f"{tmp_path / 'blocks.py'}:build"
    compiled = bench(BenchConfig.of(workload=workload, batch_size=64, steps=2, warmup=1, compile=True), store=False)
    assert compiled.compiled and compiled.timing.num_steps == 2
