"""Predicted step time and throughput of a workload on n GPUs of one kind."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from gpuwise.bench.result import Ceilings
from gpuwise.config import Precision
from gpuwise.errors import GpuwiseError
from gpuwise.predict import parallel
from gpuwise.predict.roofline import (
    BF16,
    EAGER,
    FP16,
    FP32,
    TF32,
    DeviceRates,
    Efficiency,
    Pipeline,
    StepTime,
    step_time,
)
from gpuwise.profile import Profile, profile

if TYPE_CHECKING:
    from gpuwise.hardware.catalog import GPU
    from gpuwise.workloads import Workload


def gpu_rates(gpu: GPU) -> DeviceRates:
    """The dense peaks of a catalog GPU, by the dtype PyTorch runs matrix products in."""
    if gpu.fp32_tflops is None:
        raise GpuwiseError(f"the catalog has no compute figures for {gpu.name}; add them in your --catalog file")
    tensor = {FP32: gpu.fp32_tflops}
    for key, value in ((TF32, gpu.tf32_tflops), (BF16, gpu.bf16_tflops), (FP16, gpu.fp16_tflops)):
        if value:
            tensor[key] = value
    return DeviceRates(
        name=gpu.name, tensor_tflops=tensor, vector_tflops=gpu.fp32_tflops, memory_gbps=gpu.memory_bandwidth_gbps,
        sm_count=gpu.sm_count or 0,
    )


def profile_for_gpu(
    workload: str | Workload, *, batch_size: int, precision: str, optimizer: str, seq_len: int | None = None,
    image_size: int | None = None,
) -> Profile:
    """The profile a GPU prediction reads.

    AMP-FP16 is profiled as AMP-BF16 with the dtypes relabelled: the work is the same, and the
    CPU's FP16 autocast falls back to step-by-step kernels for some ops (LSTM) that CUDA fuses.
    """
    as_precision = "amp-bf16" if precision == Precision.AMP_FP16.value else precision
    p = profile(workload, batch_size=batch_size, precision=as_precision, optimizer=optimizer, seq_len=seq_len,
                image_size=image_size, gpu_kernels=True)  # attention and GRUs as a GPU's fused kernels
    if as_precision == precision:
        return p
    relabelled = tuple(replace(g, dtype=FP16) if g.dtype == BF16 else g for g in p.ops)
    return replace(p, ops=relabelled, precision=precision)


@dataclass(frozen=True)
class GpuStep:
    """One step of data-parallel training on ``num_gpus`` GPUs, each with the profile's batch."""

    gpu: str
    num_gpus: int
    compute: StepTime  # one GPU's step
    communication_s: float  # exposed (not hidden behind backward)
    via: str  # the link the all-reduce runs over

    @property
    def step_s(self) -> float:
        return self.compute.step_s + self.communication_s

    @property
    def bound(self) -> str:
        if self.communication_s > 0.5 * self.compute.step_s:
            return "communication"
        return self.compute.bound


def gpu_step(
    p: Profile, gpu: GPU, eff: Efficiency, *, num_gpus: int = 1, gpus_per_node: int = 8,
    network_gbits: float = parallel.DEFAULT_NETWORK_GBITS, pipeline: Pipeline = EAGER,
) -> GpuStep:
    compute = step_time(p, gpu_rates(gpu), eff, pipeline)
    link = parallel.links(gpu.nvlink_gbps, gpu.pcie_gen, network_gbits)
    bandwidth = parallel.ring_bandwidth_gbps(link, num_gpus, gpus_per_node)
    comm = parallel.ddp_exposed_s(p.memory.gradients_bytes, num_gpus, bandwidth, compute.backward_s)
    via = link.via if num_gpus <= gpus_per_node else f"{link.via} + network {network_gbits:g} Gb/s per GPU"
    return GpuStep(gpu=gpu.name, num_gpus=num_gpus, compute=compute, communication_s=comm, via=via)


def fsdp_step(
    p: Profile, gpu: GPU, eff: Efficiency, *, num_gpus: int, gpus_per_node: int = 8,
    network_gbits: float = parallel.DEFAULT_NETWORK_GBITS,
) -> GpuStep:
    """Fully sharded data parallel over ``num_gpus``, each with the profile's batch.

    Each rank steps the optimizer on its 1/n of the parameters, so the optimizer's ops move
    1/n of the bytes; the parameters' all-gathers and the gradients' reduce-scatter
    (``parallel.fsdp_exposed_s``) are prefetched behind the device's compute.
    """
    n = max(num_gpus, 1)
    sharded = tuple(
        replace(g, flops=g.flops // n, vector_flops=g.vector_flops // n, bytes=g.bytes // n)
        if g.phase == "optimizer" else g
        for g in p.ops
    )
    compute = step_time(replace(p, ops=sharded), gpu_rates(gpu), eff)
    link = parallel.links(gpu.nvlink_gbps, gpu.pcie_gen, network_gbits)
    bandwidth = parallel.ring_bandwidth_gbps(link, num_gpus, gpus_per_node)
    comm = parallel.fsdp_exposed_s(p.memory.weights_bytes, num_gpus, bandwidth, compute.device_s)
    via = link.via if num_gpus <= gpus_per_node else f"{link.via} + network {network_gbits:g} Gb/s per GPU"
    return GpuStep(gpu=gpu.name, num_gpus=num_gpus, compute=compute, communication_s=comm, via=via)


def throughput(p: Profile, step: GpuStep, *, tokens: bool) -> float:
    """Samples (or tokens) per second over all GPUs."""
    per_step = p.batch_size * step.num_gpus * ((p.tokens_per_sample or 1) if tokens else 1)
    return per_step / step.step_s


def cpu_rates(ceilings: Ceilings) -> DeviceRates:
    """A calibrated CPU as a device: its measured GEMM rates, copy bandwidth and the last-level cache
    stored with them (none stored: no cache term)."""
    fp32 = ceilings.matmul_tflops.get("float32", 0.0)
    tensor = {FP32: fp32}
    for key in (BF16, FP16):
        if ceilings.matmul_tflops.get(key):
            tensor[key] = ceilings.matmul_tflops[key]
    return DeviceRates(
        name=ceilings.device_name, tensor_tflops=tensor, vector_tflops=fp32 / 8, memory_gbps=ceilings.memory_gbps,
        is_gpu=False, cache_bytes=ceilings.cache_bytes or 0,
    )


def cpu_step(p: Profile, ceilings: Ceilings, eff: Efficiency | None = None) -> StepTime:
    """A step on the calibrated CPU. The efficiencies are fractions of its *measured* ceilings, fitted
    on real CPU benches (``gpuwise.predict.cpu_fit``); dispatch runs on the same cores, so it adds to
    the step instead of overlapping it."""
    if eff is None:
        from gpuwise.predict.cpu_fit import shipped_cpu_efficiency

        eff = shipped_cpu_efficiency()
    return step_time(p, cpu_rates(ceilings), eff)
