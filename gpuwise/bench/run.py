"""`gpuwise bench`: real training steps on a real device, measured by the one protocol.

The model and optimizer are built once on the device; the batch is synthetic (so the
data loader is not measured); a step is zero-grad, forward + loss, backward and
optimizer step, under the precision PyTorch would use. The profile of the same step
gives the FLOPs behind the achieved TFLOP/s; the device's measured ceiling gives MFU.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, ClassVar

import torch

from gpuwise import float8, transforms
from gpuwise.bench import autobatch
from gpuwise.bench.protocol import check_counts, cuda_sync, time_steps
from gpuwise.config import ActivationCheckpointing, OptimizerName, Precision, StepConfig, WithStep, check_batch_size
from gpuwise.errors import GpuwiseError
from gpuwise.predict.step import measured_peak_tflops
from gpuwise.profile.run import profile_step
from gpuwise.profile.tracer import LiveMemory, StepTracer
from gpuwise.records import BenchResult, Ceilings
from gpuwise.workloads import Workload, get_workload
from gpuwise.workloads.registry import Batch, Shape

# Keep this share of free memory out of reach of the CPU batch search (allocator slack, the OS).
CPU_MEMORY_HEADROOM = 0.8


@dataclass(frozen=True)
class BenchConfig(WithStep):
    """Timing one step (``step``: batch None is the workload's default; precision auto is the device's) on a
    device. ``BenchConfig.of(workload=..., precision=..., device=...)`` takes the step's fields flat."""

    STEP_DEFAULTS: ClassVar[dict[str, Any]] = {"precision": Precision.AUTO}  # auto: by the device it runs on

    step: StepConfig
    device: str = "cpu"
    auto_batch: bool = False
    steps: int = 10
    warmup: int = 3
    compile: bool = False  # torch.compile each block (gpuwise.compiling), as train --compile does

    @property
    def activation_checkpointing(self) -> ActivationCheckpointing:
        return self.step.activation_checkpointing


@dataclass(frozen=True)
class BenchReport:
    """Results on each device, and each GPU's speed-up over the CPU for the same step."""

    results: tuple[BenchResult, ...]
    speedup_over_cpu: dict[str, float]  # device -> CPU median step time / device median step time
    precision_reasons: dict[str, str] = field(default_factory=dict)  # device -> why auto chose its precision


@contextmanager
def precision_flags(precision: Precision) -> Iterator[None]:
    """TF32 only when asked: PyTorch's fp32 matmuls are not TF32 unless enabled (cuDNN convs are by
    default; we make "fp32" mean fp32 for both). Restored afterwards."""
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    tf32 = precision is Precision.TF32
    try:
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


class Step:
    """One optimizer step on a batch, as PyTorch would run it at a precision: zero-grad, forward and
    loss under autocast, backward (scaled for fp16), optimizer step. Bench times it on a fixed batch;
    ``gpuwise train`` runs it on each batch of its data, so both measure the same step."""

    def __init__(self, w: Workload, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 precision: Precision, device: str) -> None:
        self.w, self.model, self.optimizer, self.precision = w, model, optimizer, precision
        device_type = device.split(":")[0]
        dtype = precision.autocast_dtype
        self._autocast: Callable[[], Any] = (
            (lambda: torch.autocast(device_type, dtype=dtype)) if dtype is not None else nullcontext
        )
        self.scaler = torch.amp.GradScaler(device_type) if precision is Precision.AMP_FP16 else None

    def __call__(self, batch: Batch) -> torch.Tensor:
        """The step; returns the loss, detached (reading it is the caller's choice: it syncs a GPU)."""
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            loss = self.w.forward_loss(self.model, batch)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        return loss.detach()


class TrainingStep:
    """A model, optimizer and synthetic batch on a device, and the step the protocol times."""

    def __init__(self, w: Workload, shape: Shape, batch_size: int, precision: Precision,
                 optimizer: OptimizerName, device: str,
                 activation_checkpointing: ActivationCheckpointing = ActivationCheckpointing.NONE,
                 compile: bool = False, fp8: bool = False) -> None:
        self.device = device
        self.precision = precision
        self.w = w
        torch.manual_seed(0)
        with torch.device(device):
            self.model = w.build_model(shape).to(device).train()
            self.batch: Batch = w.make_batch(batch_size, shape)
        transforms.apply(self.model, workload=w.name, precision=precision, fp8=fp8,
                         activation_checkpointing=activation_checkpointing, compile_on=device if compile else None)
        self.optimizer = optimizer.build([p for p in self.model.parameters() if p.requires_grad])
        self.step = Step(w, self.model, self.optimizer, precision, device)

    def __call__(self) -> None:
        self.step(self.batch)

    def cpu_peak_memory_bytes(self) -> int:
        """One more step under the live-tensor tracker (the CPU has no allocator statistics)."""
        from gpuwise.profile.run import track_resident

        memory: LiveMemory = track_resident(self.model, self.optimizer, self.batch)
        from gpuwise.profile.tracer import ForwardModuleTracker

        with ForwardModuleTracker() as modules, StepTracer(memory, modules):
            self()
        return memory.peak_bytes


def bench_all(config: BenchConfig, devices: list[str], store_path: Any = None) -> BenchReport:
    """Bench the same step on each device (the CPU first) and store every result. ``--precision auto`` is
    resolved per device (a GPU's choice need not be the CPU's); the reasons come back with the results."""
    from gpuwise.hardware.local import check_device

    # A misspelt name or a shape flag that does not apply: one line before the CPU is calibrated to choose a precision.
    get_workload(config.workload).resolve_shape(config.seq_len, config.image_size)
    results, reasons = [], {}
    for d in devices:
        device_config = config.with_(device=check_device(d))
        if config.precision is Precision.AUTO:
            precision, reasons[device_config.device] = local_precision(device_config.device, store_path)
            device_config = device_config.with_(precision=precision)
        results.append(bench(device_config, store_path=store_path))
    cpu = next((r for r in results if r.device == "cpu"), None)
    speedups = {
        r.device: cpu.timing.median_s / r.timing.median_s
        for r in results
        if cpu is not None and r.device != "cpu" and r.batch_size == cpu.batch_size
    }
    return BenchReport(results=tuple(results), speedup_over_cpu=speedups, precision_reasons=reasons)


def bench(config: BenchConfig, store_path: Any = None, *, store: bool = True) -> BenchResult:
    from gpuwise.bench.calibrate import cached_ceilings
    from gpuwise.hardware.local import check_device, local_hardware, local_software
    from gpuwise.store import open_store

    check_counts(config.steps, config.warmup)
    device = check_device(config.device)
    w = get_workload(config.workload)  # a misspelt name, before the --db is made
    if config.precision is Precision.AUTO:
        config = config.with_(precision=local_precision(device, store_path)[0])
    if config.step.fp8 and (why := float8.cannot_run_fp8("cpu" if device == "cpu" else "cuda", device)):
        raise GpuwiseError(f"--fp8 on {device}: {why}; bench without --fp8")
    if store:
        with open_store(store_path):
            pass  # an unusable --db fails now, not after the measurement
    shape = w.resolve_shape(config.seq_len, config.image_size)
    batch_size = (
        find_batch_size(w, config, device) if config.auto_batch
        else check_batch_size(config.batch_size or w.default_batch_size)
    )
    estimate = profile_step(w, replace(config.step, workload=w.name, batch_size=batch_size))
    if device == "cpu":
        check_cpu_fits(w.name, batch_size, estimate.memory.peak_bytes)

    with precision_flags(config.precision):
        step = _build_or_explain(w, shape, batch_size, config, device, estimate.memory.peak_bytes)
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats(device)
        from gpuwise.compiling import explain_compile_failure

        with explain_compile_failure(config.compile, w.name):  # the first (warm-up) step compiles
            timing = _run_or_explain(
                partial(time_steps, step, cuda_sync(device), steps=config.steps, warmup=config.warmup),
                w.name, batch_size, device, estimate.memory.peak_bytes,
            )
        if device.startswith("cuda"):
            peak = torch.cuda.max_memory_allocated(device)
            reserved: int | None = torch.cuda.max_memory_reserved(device)
        else:
            peak, reserved = step.cpu_peak_memory_bytes(), None
    del step
    autobatch.release_memory()

    ceilings: Ceilings | None = cached_ceilings(device, store_path)
    peak_tflops = measured_peak_tflops(ceilings, config.precision) if ceilings else None
    hardware = local_hardware(device)
    flops = estimate.training_flops
    achieved = flops / timing.median_s / 1e12
    tokens = estimate.tokens_per_step
    result = BenchResult(
        workload=w.name, family=w.family, sample_unit=w.sample_unit, batch_size=batch_size,
        seq_len=shape.seq_len, image_size=shape.image_size, precision=config.precision.value,
        optimizer=config.optimizer.value, device=device,
        device_name=hardware.gpu_name or hardware.cpu_model,
        timing=timing, samples_per_s=batch_size / timing.median_s,
        tokens_per_s=tokens / timing.median_s if tokens else None,
        training_flops_per_step=flops, achieved_tflops=achieved, peak_tflops=peak_tflops,
        mfu=achieved / peak_tflops if peak_tflops else None,
        peak_memory_bytes=peak, peak_reserved_bytes=reserved,
        hardware=hardware, software=local_software(),
        created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        batch_size_auto=config.auto_batch, activation_checkpointing=config.activation_checkpointing.value,
        compiled=config.compile, fp8=config.step.fp8,
    )
    if store:
        with open_store(store_path) as db:
            result = replace(result, id=db.add(result))
    return result


def local_precision(device: str, store_path: Any = None) -> tuple[Precision, str]:
    """``--precision auto`` on a device of this machine, by plan's resolver (``gpuwise.predict.precision``):
    the CPU by its measured GEMM rates, a GPU by its catalog entry's tensor cores, so that bench and train
    choose what plan priced; a GPU the catalog does not know by its compute capability (BF16 from 8.0, FP16
    from 7.0)."""
    from gpuwise.predict.precision import cpu_precision, gpu_precision

    if device == "cpu":
        from gpuwise.bench.calibrate import cached_ceilings

        return cpu_precision(cached_ceilings("cpu", store_path))
    from gpuwise.hardware.catalog import load_catalog

    gpu = load_catalog(None).match_device(torch.cuda.get_device_name(device))
    if gpu is not None:
        return gpu_precision(gpu)
    major, _ = torch.cuda.get_device_capability(device)
    if major >= 8:
        return Precision.AMP_BF16, "BF16 tensor cores (compute capability 8.0 or later)"
    if major >= 7:
        return Precision.AMP_FP16, "FP16 tensor cores, no BF16 (compute capability 7.x)"
    return Precision.FP32, "no 16-bit tensor cores"


def cpu_precision_note(precision: Precision, store_path: Any = None) -> str:
    """``gpuwise.predict.precision.cpu_precision_note`` for this machine's CPU: read from its measured ceilings
    (measured first where the results store has none; a run on the CPU measures them anyway), '' for a precision
    that cannot be slow for want of bf16 units."""
    if precision is not Precision.AMP_BF16:
        return ""
    from gpuwise.bench.calibrate import cached_ceilings
    from gpuwise.predict.precision import cpu_precision_note as note

    return note(precision, cached_ceilings("cpu", store_path))


def check_cpu_fits(name: str, batch_size: int, estimate_bytes: int,
                   fix: str = "use a smaller --batch-size or --batch-size auto",
                   fix_at_batch_1: str = "profile it with gpuwise profile instead") -> None:
    """One line, before anything is allocated, when the step's estimated peak exceeds the free RAM."""
    from gpuwise.hardware.local import free_memory_bytes

    free = free_memory_bytes("cpu")
    if estimate_bytes > CPU_MEMORY_HEADROOM * free and batch_size == 1:
        raise GpuwiseError(
            f"{name} does not fit on the CPU even at batch 1: it needs about {estimate_bytes / 2**30:.1f} GiB "
            f"(estimated), the CPU has {free / 2**30:.1f} GiB free; {fix_at_batch_1}"
        )
    if estimate_bytes > CPU_MEMORY_HEADROOM * free:
        raise GpuwiseError(
            f"{name} at batch {batch_size} needs about {estimate_bytes / 2**30:.1f} GiB (estimated) but the CPU "
            f"has {free / 2**30:.1f} GiB free; {fix}"
        )


def does_not_fit(name: str, batch_size: int, device: str, estimate_bytes: int,
                 fix: str = "use --batch-size auto to find the largest batch") -> GpuwiseError:
    from gpuwise.hardware.local import local_hardware

    total = local_hardware(device).gpu_memory_bytes or 0
    return GpuwiseError(
        f"{name} does not fit on {device} at batch {batch_size}: it needs about {estimate_bytes / 2**30:.1f} GiB "
        f"(estimated), the device has {total / 2**30:.1f} GiB; {fix}"
    )


def _build_or_explain(w: Workload, shape: Shape, batch_size: int, config: BenchConfig, device: str,
                      estimate_bytes: int) -> TrainingStep:
    try:
        return TrainingStep(w, shape, batch_size, config.precision, config.optimizer, device,
                            config.activation_checkpointing, config.compile, config.step.fp8)
    except Exception as e:
        if autobatch.is_out_of_memory(e):
            autobatch.release_memory()
            raise does_not_fit(w.name, batch_size, device, estimate_bytes) from None
        raise


def _run_or_explain(run: Callable[[], Any], name: str, batch_size: int, device: str, estimate_bytes: int) -> Any:
    try:
        return run()
    except Exception as e:
        if autobatch.is_out_of_memory(e):
            autobatch.release_memory()
            raise does_not_fit(name, batch_size, device, estimate_bytes) from None
        raise


def find_batch_size(w: Workload, config: BenchConfig, device: str) -> int:
    """The largest batch that fits on ``device`` (grow, then bisect)."""
    from gpuwise.hardware.local import free_memory_bytes

    shape = w.resolve_shape(config.seq_len, config.image_size)

    def estimate(batch_size: int) -> int:
        return profile_step(w, replace(config.step, workload=w.name, batch_size=batch_size)).memory.peak_bytes

    if device == "cpu":
        # Never run a step that would drive the machine into swap or the OOM killer: the memory
        # estimate (within a few percent on the CPU, see benchmarks/RESULTS.md) decides.
        # Memory is close to affine in the batch: two fake profiles give the line, one more checks it.
        budget = CPU_MEMORY_HEADROOM * free_memory_bytes("cpu")
        at_1, at_2 = estimate(1), estimate(2)
        per_sample = max(at_2 - at_1, 1)
        best = autobatch.largest_batch(lambda b: at_1 + per_sample * (b - 1) <= budget, limit=1 << 20)
        if best > 2 and estimate(best) > budget:
            best = autobatch.largest_batch(lambda b: estimate(b) <= budget, limit=best - 1)
    else:
        def step_at(batch_size: int) -> None:
            with precision_flags(config.precision):
                step = TrainingStep(w, shape, batch_size, config.precision, config.optimizer, device,
                                    config.activation_checkpointing, fp8=config.step.fp8)
                step()
                step()  # the second step holds the optimizer state too

        best = autobatch.largest_batch(lambda b: autobatch.fits(step_at, b), limit=4096)
    if best == 0:
        raise GpuwiseError(
            f"{w.name} does not fit on {device} even at batch 1: it needs about {estimate(1) / 2**30:.1f} GiB "
            f"(estimated), the device has {free_memory_bytes(device) / 2**30:.1f} GiB free"
        )
    return best
