"""Helpers for tests: ad-hoc workloads that are not registered, stored measurements, the CLI in-process and as
a process, the tiny training script, waiting on checkpoints. Fixtures live in conftest.py."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from gpuwise.bench.result import BenchResult, Ceilings, Hardware, Software, Timing
from gpuwise.train import checkpoint
from gpuwise.workloads import Shape, Workload

ROOT = Path(__file__).resolve().parent.parent
# A made-up CPU (no calibration) and its RAM, for plans and reports that must not depend on this machine.
CEILINGS = Ceilings(device="cpu", device_name="Test CPU", matmul_tflops={"float32": 0.2, "bfloat16": 0.05},
                    memory_gbps=10.0, measured_at="2026-01-01T00:00:00+00:00")
RAM_BYTES = 8 * 2**30
# A catalog GPU whose name is markup: the report must show it as text.
EVIL = "<script>alert(1)</script>"
EVIL_GPU = f"""
["{EVIL}"]
vendor = "test"
memory_gb = 8
memory_bandwidth_gbps = 300
fp32_tflops = 12
pcie_gen = 4
price_usd_per_hour = 0.30
"""


def make_workload(
    build: Callable[[], nn.Module],
    make_batch: Callable[[int], object],
    loss: Callable[[nn.Module, object], torch.Tensor],
    name: str = "test",
) -> Workload:
    """A workload that is not registered: for testing the profiler on a known model."""
    return Workload(
        name=name,
        family="test",
        sample_unit="sample",
        default_batch_size=4,
        summary="test model",
        build_model=lambda shape: build(),
        make_batch=lambda n, shape: make_batch(n),
        forward_loss=loss,
        default_shape=Shape(),
    )


def run_cli(*args: str) -> tuple[int, str, str]:
    """Run the gpuwise command in-process: exit code, stdout, stderr. A crash re-raises, it is never an exit."""
    from typer.testing import CliRunner

    from gpuwise.cli.app import get_app

    result = CliRunner().invoke(get_app(), list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def stored_result(
    device: str, device_name: str, median_s: float, *, workload: str = "resnet18", batch: int = 16,
    image_size: int | None = 224, optimizer: str = "adamw", cpu_model: str = "Test CPU", **overrides: Any,
) -> BenchResult:
    """A measurement as bench stores it (fp32, image workload), with only what the tests read set to something."""
    result = BenchResult(
        workload=workload, family="image classification", sample_unit="image", batch_size=batch, seq_len=None,
        image_size=image_size, precision="fp32", optimizer=optimizer, device=device, device_name=device_name,
        timing=Timing(median_s, median_s, median_s, 10, 3), samples_per_s=batch / median_s, tokens_per_s=None,
        training_flops_per_step=1, achieved_tflops=1.0, peak_tflops=None, mfu=None, peak_memory_bytes=1,
        peak_reserved_bytes=None, hardware=Hardware(cpu_model, 1, 1, 1), software=Software("", "", "", ""),
        created_at="2026-01-01T00:00:00+00:00",
    )
    return replace(result, **overrides)


# A tiny classifier with dropout (so resume must restore the RNG), written to a file so that
# subprocesses (torchrun workers) can load it as path/to/file.py:factory. GPUWISE_TEST_STEP_LOG
# makes each step append a line (to count the steps a killed run did); GPUWISE_TEST_STEP_SLEEP_S
# slows steps down so that a test can kill a run in the middle.
TINY = textwrap.dedent('''
    import os, time
    import torch
    from torch import nn
    from gpuwise.workloads.user import UserWorkload

    def loss(model, batch):
        log = os.environ.get("GPUWISE_TEST_STEP_LOG")
        if log:
            with open(log, "a") as f:
                f.write("step\\n")
        time.sleep(float(os.environ.get("GPUWISE_TEST_STEP_SLEEP_S", "0")))
        x, y = batch
        return nn.functional.cross_entropy(model(x), y)

    def build():
        model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 4))
        return UserWorkload(model=model, make_batch=lambda n: (torch.randn(n, 16), torch.randint(0, 4, (n,))),
                            loss=loss, default_batch_size=4)
''')


def params(folder: Path) -> dict[str, torch.Tensor]:
    found = checkpoint.find(folder)
    assert found is not None
    return checkpoint.read_model(found.path)


def gpuwise(*args: str, env: dict[str, str] | None = None, **kw: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "gpuwise.cli", *args], cwd=ROOT, text=True, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}, **kw,  # type: ignore[arg-type]
    )


def finish(process: subprocess.Popen[str], timeout_s: float = 300) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout_s)
    return process.returncode, out, err


def wait_for_checkpoint(folder: Path, process: subprocess.Popen[str], *, min_step: int = 1,
                        timeout_s: float = 180) -> int:
    """The step of the newest checkpoint once it is at least ``min_step``; fails if the run ends first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = checkpoint.find(folder) if folder.is_dir() else None
        if found is not None and found.step >= min_step:
            return found.step
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError(f"no checkpoint in {folder} after {timeout_s} s")


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc: Linux), children first."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


@contextlib.contextmanager
def tmpfs(where: Path, size: str, *options: str) -> Iterator[Path]:
    """A small tmpfs mounted at ``where`` (root only); the test is skipped where mounting is not allowed."""
    where.mkdir(parents=True, exist_ok=True)
    opts = ",".join([f"size={size}", *options])
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or 'mount failed'}): needs root")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def wait_for_steps(log: Path, process: subprocess.Popen[str], count: int, *, timeout_s: float = 180) -> int:
    """The number of steps the TINY script logged, once it is at least ``count``; fails if the run ends first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done = log.read_text().count("step") if log.exists() else 0
        if done >= count:
            return done
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError(f"fewer than {count} steps in {log} after {timeout_s} s")


def page_json(page: str, ident: str) -> Any:
    """The JSON block ``ident`` of a report page."""
    import json
    import re

    match = re.search(rf'<script type="application/json" id="{ident}">(.*?)</script>', page, re.S)
    assert match, f"no {ident} block"
    return json.loads(match.group(1))


def make_result(**overrides: Any) -> BenchResult:
    """A plausible GPU measurement; every field set, none at its default."""
    step_times_s = (0.1012, 0.0998, 0.1005, 0.1021, 0.0993, 0.1009, 0.1001)
    timing = Timing(median_s=0.1005, p10_s=0.0995, p90_s=0.1017, num_steps=7, num_warmup=3, step_times_s=step_times_s)
    result = BenchResult(
        workload="resnet50",
        family="image classification",
        sample_unit="image",
        batch_size=256,
        seq_len=None,
        image_size=224,
        precision="amp-bf16",
        optimizer="adamw",
        device="cuda:0",
        device_name="NVIDIA H100 80GB HBM3",
        timing=timing,
        samples_per_s=256 / 0.1005,
        tokens_per_s=None,
        training_flops_per_step=6_245_284_462_592,
        achieved_tflops=6_245_284_462_592 / 0.1005 / 1e12,
        peak_tflops=742.3,
        mfu=6_245_284_462_592 / 0.1005 / 1e12 / 742.3,
        peak_memory_bytes=41_234_567_890,
        peak_reserved_bytes=44_040_192_000,
        hardware=Hardware(
            cpu_model="AMD EPYC 9454 48-Core Processor",
            cpu_cores=48,
            cpu_threads=96,
            ram_bytes=540_000_000_000,
            gpu_name="NVIDIA H100 80GB HBM3",
            gpu_memory_bytes=85_520_809_984,
            gpu_count=8,
            gpu_driver="550.54.15",
            cuda_version="12.4",
        ),
        software=Software(torch="2.14.1+cu124", torchvision="0.29.1", gpuwise="0.1.0", python="3.11.9"),
        created_at="2025-03-01T12:00:00+00:00",
        batch_size_auto=True,
    )
    return replace(result, **overrides)


# A user model whose forward calls .item() on line 12 of its file: data-dependent Python that fake tensors cannot
# trace (test_paths_faults, test_sweep).
ITEM_MODEL = '''
import torch
from torch import nn
from gpuwise.workloads.user import UserWorkload

class M(nn.Module):
    def __init__(self):
        super().__init__()
        self.l = nn.Linear(4, 2)

    def forward(self, x):
        if x.sum().item() > 0:
            return self.l(x)
        return self.l(x)

def build():
    return UserWorkload(model=M(), make_batch=lambda n: torch.randn(n, 4), loss=lambda m, b: m(b).sum(),
                        default_batch_size=2)
'''
