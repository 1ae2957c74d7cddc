"""Measured ceilings of a device: the dense matmul rate per dtype and the copy bandwidth.

These are what the device achieves here, through this torch build, not a datasheet's peak;
MFU and the roofline use them as "100%". Timing is the project's one protocol
(``gpuwise.bench.protocol.time_steps``): warm-up discarded, the device synchronised before
every clock read, the median of several repetitions.

- **Matmul**: square ``n×n @ n×n`` GEMMs, ``2·n³`` FLOPs each (a multiply-add is 2 FLOPs, as
  in the profile). On the CPU ``n`` grows through a ladder until one GEMM takes long enough to
  be past the small-size ramp; on CUDA ``n = 8192`` saturates any current GPU.
  Dtypes: CPU ``float32`` and ``bfloat16`` (whatever bf16 achieves, fast or emulated); CUDA
  ``float32`` with TF32 off, ``tf32``, ``bfloat16`` and ``float16``.
- **Memory**: ``dst.copy_(src)`` of a large tensor; bytes moved = read + written = 2 × size.

The timing code takes a ``sync`` callable and a device, so the CPU tests exercise the same
code the GPU path runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import torch

from gpuwise.bench.protocol import cuda_sync, time_steps
from gpuwise.errors import GpuwiseError
from gpuwise.hardware.local import check_device, cpu_cache_bytes, device_name, free_memory_bytes, machine_key
from gpuwise.records import Ceilings

Clock = Callable[[], float]
Sync = Callable[[], None]

MIB = 1024**2


@dataclass(frozen=True)
class CalibrationPlan:
    """Sizes and repetitions of one calibration; one per (device kind, quick)."""

    gemm_sizes: tuple[int, ...]  # tried in order until one GEMM takes >= gemm_target_s
    gemm_target_s: float
    copy_bytes: int  # size of the copied tensor (moved: twice this)
    num_repeats: int  # timed repetitions; the median is reported
    num_warmup: int = 1  # discarded repetitions
    num_inner: int = 1  # kernels per repetition, so launch and sync overhead stay ~0.1% of a GPU timing


# CPU: ~10 s on 2 cores (quick ~2 s); the ladder stops early on a slow dtype, so an emulated
# bf16 cannot blow the budget. CUDA: an 8192³ GEMM is 1.1 TFLOP (~2 ms in bf16 on an H100,
# ~20 ms in fp32); three warm-up repetitions of ten let the GPU's clock ramp up before timing.
PLANS = {
    ("cpu", False): CalibrationPlan((1024, 2048, 3072, 4096), 0.2, 512 * MIB, num_repeats=5),
    ("cpu", True): CalibrationPlan((512, 1024, 2048), 0.05, 128 * MIB, num_repeats=3),
    ("cuda", False): CalibrationPlan((8192,), 0.0, 1024 * MIB, num_repeats=10, num_warmup=3, num_inner=10),
    ("cuda", True): CalibrationPlan((8192,), 0.0, 256 * MIB, num_repeats=5, num_warmup=2, num_inner=5),
}
MIN_COPY_BYTES = 4 * MIB

CPU_DTYPES = ("float32", "bfloat16")
CUDA_DTYPES = ("float32", "tf32", "bfloat16", "float16")


def matmul_tflops(
    dtype: str,
    device: str,
    sync: Sync,
    plan: CalibrationPlan,
    *,
    clock: Clock = time.perf_counter,
    max_bytes: int | None = None,
) -> float:
    """Dense GEMM rate of ``dtype`` on ``device`` in TFLOP/s (``tf32``: float32 with TF32 on)."""
    torch_dtype = torch.float32 if dtype == "tf32" else getattr(torch, dtype)
    element_bytes = torch.empty((), dtype=torch_dtype).element_size()
    # a, b and the output are live together
    sizes = [n for n in plan.gemm_sizes if max_bytes is None or 3 * n * n * element_bytes <= max_bytes]
    if not sizes:
        raise GpuwiseError(
            f"not enough free memory on {device} to calibrate {dtype} matmul: "
            f"a {plan.gemm_sizes[0]}² GEMM needs {3 * plan.gemm_sizes[0] ** 2 * element_bytes / MIB:.0f} MiB; "
            "free some memory and run 'gpuwise calibrate' again"
        )
    with _tf32(device, enabled=dtype == "tf32"):
        n, gemm = _saturating(sizes, plan, lambda n: _make_gemm(n, torch_dtype, device, plan.num_inner), sync, clock)
        median_s = time_steps(gemm, sync, steps=plan.num_repeats, warmup=plan.num_warmup, clock=clock).median_s
    return plan.num_inner * 2 * n**3 / median_s / 1e12


def conv_gemm_tflops(dtype: str, plan: CalibrationPlan, *, clock: Clock = time.perf_counter) -> float:
    """The CPU's other matrix-product library: a product as a 1×1 convolution (oneDNN), its size found as the
    GEMM's is: a CPU without bf16 instructions is slow at the largest size (a 512³ bf16 convolution takes 0.2 s on a
    2-vCPU AMD EPYC guest without AVX512-BF16, measured here, so the six 4096³ ones over 10 min; the ladder stops
    at 1024)."""
    torch_dtype = getattr(torch, dtype)
    n, conv = _saturating(plan.gemm_sizes, plan, lambda n: _make_conv_gemm(n, torch_dtype, plan.num_inner),
                          lambda: None, clock)
    median_s = time_steps(conv, lambda: None, steps=plan.num_repeats, warmup=plan.num_warmup, clock=clock).median_s
    return plan.num_inner * 2 * n**3 / median_s / 1e12


def _saturating(
    sizes: Sequence[int], plan: CalibrationPlan, make: Callable[[int], Callable[[], None]], sync: Sync, clock: Clock
) -> tuple[int, Callable[[], None]]:
    """The first size whose products (``make(n)``) take at least ``gemm_target_s`` (past the small-size ramp),
    else the largest."""
    for n in sizes[:-1]:
        products = make(n)
        # one warm run and one timed run: enough to tell whether this size is long enough
        if time_steps(products, sync, steps=1, warmup=1, clock=clock).median_s >= plan.gemm_target_s:
            return n, products
        del products  # free this size's operands before allocating the next
    return sizes[-1], make(sizes[-1])


def _make_gemm(n: int, dtype: torch.dtype, device: str, num_inner: int) -> Callable[[], None]:
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    out = torch.empty(n, n, device=device, dtype=dtype)

    def gemms() -> None:
        for _ in range(num_inner):
            torch.mm(a, b, out=out)

    return gemms


def _make_conv_gemm(n: int, dtype: torch.dtype, num_inner: int) -> Callable[[], None]:
    """An n×n by n×n product as a 1×1 convolution: n input channels, n output channels, n pixels."""
    x = torch.randn(1, n, n, 1, dtype=dtype)
    w = torch.randn(n, n, 1, 1, dtype=dtype)

    def convs() -> None:
        with torch.no_grad():
            for _ in range(num_inner):
                torch.nn.functional.conv2d(x, w)

    return convs


def copy_gbps(
    device: str,
    sync: Sync,
    plan: CalibrationPlan,
    *,
    clock: Clock = time.perf_counter,
    max_bytes: int | None = None,
) -> float:
    """Copy bandwidth of ``device`` in GB/s (bytes read + written, 1e9)."""
    nbytes = plan.copy_bytes
    if max_bytes is not None:
        nbytes = min(nbytes, max_bytes // 2)  # src and dst
    if nbytes < MIN_COPY_BYTES:
        raise GpuwiseError(
            f"not enough free memory on {device} to measure its bandwidth "
            f"(need {2 * MIN_COPY_BYTES // MIB} MiB); free some memory and run 'gpuwise calibrate' again"
        )
    num_elements = nbytes // 4
    src = torch.empty(num_elements, device=device, dtype=torch.float32).fill_(1.0)
    dst = torch.zeros_like(src)  # zeros, not empty: its pages are touched before the clock runs

    def copies() -> None:
        for _ in range(plan.num_inner):
            dst.copy_(src)

    median_s = time_steps(copies, sync, steps=plan.num_repeats, warmup=plan.num_warmup, clock=clock).median_s
    return plan.num_inner * 2 * num_elements * 4 / median_s / 1e9


def calibrate(device: str, *, quick: bool = False) -> Ceilings:
    """Measure the ceilings of ``device`` ("cpu", "cuda", "cuda:N").

    The CPU takes about 10 s on two cores (``quick``: about 2 s); a GPU a few seconds.
    ``torch``'s thread count and TF32 flags are left as they were.
    """
    device = check_device(device)
    kind = "cpu" if device == "cpu" else "cuda"
    plan = PLANS[(kind, quick)]
    sync = cuda_sync(device)
    # Leave room: on the CPU other processes need RAM too; on a GPU the allocator rounds up.
    budget_bytes = free_memory_bytes(device) // 2
    dtypes = CPU_DTYPES if kind == "cpu" else CUDA_DTYPES
    matmul = {dtype: matmul_tflops(dtype, device, sync, plan, max_bytes=budget_bytes) for dtype in dtypes}
    if kind == "cpu":
        # PyTorch runs CPU matrix products through two libraries: matmuls through MKL/OpenBLAS,
        # convolutions through oneDNN, which can be the faster (seen on AMD EPYC here). The ceiling is
        # the better of the two, so that a convolution network's MFU cannot exceed 100%.
        matmul = {dtype: max(rate, conv_gemm_tflops(dtype, plan)) for dtype, rate in matmul.items()}
    if kind == "cuda":
        torch.cuda.empty_cache()  # the GEMM operands are freed; give the copy their memory
    memory = copy_gbps(device, sync, plan, max_bytes=budget_bytes)
    return Ceilings(
        device=device,
        device_name=device_name(device),
        matmul_tflops=matmul,
        memory_gbps=memory,
        measured_at=datetime.now(UTC).isoformat(timespec="seconds"),
        cache_bytes=cpu_cache_bytes() if kind == "cpu" else None,
    )


def with_cache(ceilings: Ceilings) -> Ceilings:
    """A CPU record of this machine stored before ``cache_bytes`` existed, with this CPU's cache."""
    if ceilings.device != "cpu" or ceilings.cache_bytes is not None:
        return ceilings
    return replace(ceilings, cache_bytes=cpu_cache_bytes())


class CeilingsStore(Protocol):
    """The part of ``gpuwise.store.Store`` the cache needs."""

    def get_ceilings(self, device: str, machine: str) -> Ceilings | None: ...

    def put_ceilings(self, c: Ceilings, machine: str) -> None: ...


def ceilings_in(
    store: CeilingsStore,
    device: str,
    *,
    quick: bool = False,
    measure: Callable[..., Ceilings] | None = None,
) -> Ceilings:
    """The stored ceilings of ``device`` on this machine, measured (``calibrate``) and stored on first use.

    A stored record whose device name differs from the device's now (another card behind the
    same index) is measured again.
    """
    device = check_device(device)
    machine = machine_key()
    cached = store.get_ceilings(device, machine)
    if cached is not None and cached.device_name == device_name(device):
        return with_cache(cached)
    ceilings = with_cache((measure or calibrate)(device, quick=quick))
    store.put_ceilings(ceilings, machine)
    return ceilings


def cached_ceilings(device: str, store_path: Path | None = None, *, quick: bool = False) -> Ceilings:
    """``ceilings_in`` on the results store at ``store_path`` (None: the default store)."""
    from gpuwise.store import open_store

    with open_store(store_path) as store:
        return ceilings_in(store, device, quick=quick)


@contextmanager
def _tf32(device: str, *, enabled: bool) -> Iterator[None]:
    """TF32 on or off for CUDA float32 matmuls, restored afterwards; a no-op on the CPU."""
    if device == "cpu":
        yield
        return
    matmul = torch.backends.cuda.matmul
    # Both the legacy flag and the newer precision setting: restoring only the flag would turn
    # an unset precision ("none", inherit) into an explicit one.
    prev_allow, prev_precision = matmul.allow_tf32, matmul.fp32_precision
    try:
        matmul.allow_tf32 = enabled
        yield
    finally:
        matmul.allow_tf32 = prev_allow
        matmul.fp32_precision = prev_precision

