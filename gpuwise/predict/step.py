"""Predicted step time and throughput of a workload on n GPUs of one kind."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from gpuwise.config import OptimizerName, Precision
from gpuwise.errors import GpuwiseError
from gpuwise.predict import parallel
from gpuwise.predict.constants import shipped_cpu_efficiency
from gpuwise.predict.roofline import (
    BF16,
    EAGER,
    FP8,
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
from gpuwise.records import Ceilings

if TYPE_CHECKING:
    from gpuwise.hardware.catalog import GPU
    from gpuwise.workloads import Workload


def gpu_rates(gpu: GPU, *, datasheet: bool = False) -> DeviceRates:
    """The rates of a catalog GPU that matrix products reach, by the dtype PyTorch runs them in: the
    tensor-core peaks times the achievable share a matmul microbenchmark measures on that GPU (or on
    its chip, family or vendor: ``GPU.achievable_basis``; FP8's too, which mamf-finder measures at about the
    same share: B200 76.3% FP8 / 77.6% BF16, GH200 77.6% / 83.8%, stas00/ml-engineering@744d01e1,
    compute/accelerator/README.md), the memory bandwidth likewise times a STREAM
    triad's share (``GPU.achievable_bandwidth_basis``); the FP32 CUDA-core peak as published.
    ``datasheet``: the published peaks and bandwidth as they are (comparing two GPUs' datasheets)."""
    if gpu.fp32_tflops is None:
        raise GpuwiseError(f"the catalog has no compute figures for {gpu.name}; add them in your --catalog file")
    tensor_share, bandwidth_share = (1.0, 1.0) if datasheet else (gpu.achievable_fraction,
                                                                  gpu.achievable_bandwidth_fraction)
    tensor = {FP32: gpu.fp32_tflops}
    for key, value in ((TF32, gpu.tf32_tflops), (BF16, gpu.bf16_tflops), (FP16, gpu.fp16_tflops),
                       (FP8, gpu.fp8_tflops)):
        if value:
            tensor[key] = value * tensor_share
    return DeviceRates(
        name=gpu.name, tensor_tflops=tensor, vector_tflops=gpu.fp32_tflops,
        memory_gbps=gpu.memory_bandwidth_gbps * bandwidth_share,
        sm_count=gpu.sm_count or 0, streaming_sms=(gpu.sm_count or 0) if gpu.vendor == "nvidia" else 0,
        family=gpu.generation, **_l2(gpu),
    )


# How much of its L2 a GPU keeps at L2 speed for data that streams through it: the measured plateaus end
# at 28 of 40 MB (A100), 33 of 50 (H100 PCIe), 42 of 50 (H200) and 92 of 96 (L40) (te42kyfo/gpu-benches,
# gpu-l2-cache; A100 and H100 split their L2 in two halves that each keep a copy of what both read);
# their mean. An op whose bytes fit in the rest runs at the L2's bandwidth (``DeviceRates.cache_gbps``).
L2_USABLE = 0.8


def _l2(gpu: GPU) -> dict[str, Any]:
    """The cache fields of ``DeviceRates`` for a catalog GPU: none without an L2 size and bandwidth."""
    if not gpu.l2_cache_mb or not gpu.l2_gbps:
        return {}
    return {"cache_bytes": int(gpu.l2_cache_mb * 2**20 * L2_USABLE), "cache_gbps": gpu.l2_gbps}


def profile_for_gpu(
    workload: str | Workload, *, batch_size: int, precision: Precision, optimizer: str, seq_len: int | None = None,
    image_size: int | None = None, activation_checkpointing: str = "none", low_precision_params: bool = False,
    attention_written_out: bool = False, fp8: bool = False,
) -> Profile:
    """The profile a GPU prediction reads.

    AMP-FP16 is profiled as AMP-BF16 with the dtypes relabelled: the work is the same, and the
    CPU's FP16 autocast falls back to step-by-step kernels for some ops (LSTM) that CUDA fuses.
    ``low_precision_params``: AMP as FSDP2's mixed-precision policy runs it (bf16 parameters, no autocast).
    ``attention_written_out``: attention as separate kernels, not a fused one (``gpuwise.profile.attention``).
    ``fp8``: the blocks' linear layers in FP8 (``gpuwise.float8``).
    """
    as_precision = Precision.AMP_BF16 if precision is Precision.AMP_FP16 else precision
    p = profile(workload, batch_size=batch_size, precision=as_precision, optimizer=optimizer, seq_len=seq_len,
                image_size=image_size, gpu_kernels=True,  # attention, GRUs, RMSNorm as a GPU's fused kernels
                activation_checkpointing=activation_checkpointing, low_precision_params=low_precision_params,
                attention_written_out=attention_written_out, fp8=fp8)
    return p if as_precision is precision else as_fp16(p)


def as_fp16(p: Profile) -> Profile:
    """An AMP-BF16 GPU profile as AMP-FP16: the same work, its bf16 ops relabelled fp16."""
    relabelled = tuple(replace(g, dtype=FP16) if g.dtype == BF16 else g for g in p.ops)
    return replace(p, ops=relabelled, precision=Precision.AMP_FP16)


class ProfileCache:
    """Profiles of a step by its settings and batch size, each made once (a profile takes seconds): the one
    cache of plan, predict, report, validate, the fit and train's comparison.

    Pass one to ``plan``/``predict`` to reuse its profiles across calls (as the speed benchmark does); a
    ``Plan`` carries the one it filled, so the report profiles nothing again.
    """

    def __init__(self) -> None:
        self._profiles: dict[tuple[object, ...], Profile] = {}

    def __len__(self) -> int:
        """How many profiles are held: a plan over profiled batches makes no new one (the tests check it)."""
        return len(self._profiles)

    def get(
        self, workload: Workload, *, batch_size: int, precision: Precision, optimizer: OptimizerName,
        seq_len: int | None, image_size: int | None, gpu_kernels: bool = True, activation_checkpointing: str = "none",
        low_precision_params: bool = False, attention_written_out: bool = False, fp8: bool = False,
    ) -> Profile:
        """The step as a GPU runs it (``gpu_kernels``: attention and GRUs fused, unless ``attention_written_out``),
        or as the CPU does; ``low_precision_params``: AMP as FSDP2's mixed-precision policy runs it; ``fp8``: the
        blocks' linear layers in FP8."""
        key = (workload.name, batch_size, precision.value, optimizer.value, seq_len, image_size, gpu_kernels,
               activation_checkpointing, low_precision_params, attention_written_out, fp8)
        if key not in self._profiles and gpu_kernels and precision is Precision.AMP_FP16:
            # A GPU's AMP-FP16 step is its AMP-BF16 one relabelled (profile_for_gpu): share that profile.
            bf16 = self.get(workload, batch_size=batch_size, precision=Precision.AMP_BF16, optimizer=optimizer,
                            seq_len=seq_len, image_size=image_size, activation_checkpointing=activation_checkpointing,
                            low_precision_params=low_precision_params, attention_written_out=attention_written_out,
                            fp8=fp8)
            self._profiles[key] = as_fp16(bf16)
        if key not in self._profiles:
            settings: dict[str, Any] = dict(batch_size=batch_size, precision=precision,
                                            optimizer=optimizer.value, seq_len=seq_len, image_size=image_size,
                                            activation_checkpointing=activation_checkpointing,
                                            low_precision_params=low_precision_params,
                                            attention_written_out=attention_written_out, fp8=fp8)
            self._profiles[key] = (profile_for_gpu(workload, **settings) if gpu_kernels
                                   else profile(workload, **settings))
        return self._profiles[key]


@dataclass(frozen=True)
class GpuStep:
    """One optimizer step of data-parallel training on ``num_gpus`` GPUs, each with the profile's batch
    ``grad_accum`` times (micro batches) before the gradients are reduced and the optimizer steps."""

    gpu: str
    num_gpus: int
    compute: StepTime  # one GPU's step, every micro batch and the optimizer
    communication_s: float  # exposed (not hidden behind backward)
    via: str  # the link the collectives run over
    grad_accum: int = 1
    sync_s: float = 0.0  # waiting for the slowest GPU (``parallel.sync_wait_s``)

    @property
    def step_s(self) -> float:
        return self.compute.step_s + self.communication_s + self.sync_s

    @property
    def bound(self) -> str:
        if self.communication_s > 0.5 * self.compute.step_s:
            return "communication"
        return self.compute.bound


def accumulated_step(p: Profile, rates: DeviceRates, eff: Efficiency, pipeline: Pipeline, grad_accum: int
                     ) -> StepTime:
    """``grad_accum`` forward+backward passes and one optimizer step. Only the last backward is left to
    hide the gradients' reduction behind (DDP syncs once, on the last micro batch)."""
    full = step_time(p, rates, eff, pipeline)
    if grad_accum == 1:
        return full
    passes = replace(p, ops=tuple(g for g in p.ops if g.phase != "optimizer"))
    micro = step_time(passes, rates, eff, replace(pipeline, fused_optimizer=False))
    k = grad_accum - 1
    by_kind = dict(full.by_kind_s)
    for kind, seconds in micro.by_kind_s.items():
        by_kind[kind] = by_kind.get(kind, 0.0) + k * seconds
    return StepTime(
        step_s=full.step_s + k * micro.step_s, device_s=full.device_s + k * micro.device_s,
        host_s=full.host_s + k * micro.host_s, compute_bound_s=full.compute_bound_s + k * micro.compute_bound_s,
        memory_bound_s=full.memory_bound_s + k * micro.memory_bound_s, latency_s=full.latency_s + k * micro.latency_s,
        backward_s=full.backward_s, by_kind_s=by_kind,
    )


def _network(gpu: GPU, network_gbits: float | None, gpus_per_node: int) -> float:
    if network_gbits:
        return network_gbits
    return parallel.default_network_gbits(gpu.architecture, gpu.nvlink_gbps, gpu.name, gpus_per_node)[0]


def optimizer_shard(p: Profile, num_gpus: int) -> Profile:
    """One GPU's step when each GPU steps the optimizer on its 1/n of the parameters (FSDP; a distributed
    optimizer such as apex's DistributedFusedLAMB): the optimizer's ops, and the bytes a fused optimizer
    kernel moves, over n."""
    n = max(num_gpus, 1)
    if n == 1:
        return p
    sharded = tuple(
        replace(g, flops=g.flops // n, vector_flops=g.vector_flops // n, bytes=g.bytes // n)
        if g.phase == "optimizer" else g
        for g in p.ops
    )
    m = p.memory
    memory = replace(m, weights_bytes=m.weights_bytes // n, gradients_bytes=m.gradients_bytes // n,
                     optimizer_state_bytes=m.optimizer_state_bytes // n)
    return replace(p, ops=sharded, memory=memory)


def gpu_step(
    p: Profile, gpu: GPU, eff: Efficiency, *, num_gpus: int = 1, gpus_per_node: int = 8,
    network_gbits: float | None = None, pipeline: Pipeline = EAGER, grad_accum: int = 1,
    busbw_gbs: float | None = None,
) -> GpuStep:
    """DDP (one GPU: no communication), or the pipeline's own gradient sync (``Pipeline.sync_after_backward``:
    a distributed optimizer, each GPU stepping its 1/n). ``network_gbits`` None: the stated default for the
    GPU's class; ``busbw_gbs``: a measured all-reduce bus bandwidth within a node (``parallel.links``)."""
    stepped = optimizer_shard(p, num_gpus) if pipeline.sync_after_backward else p
    compute = accumulated_step(stepped, gpu_rates(gpu), eff, pipeline, grad_accum)
    network = _network(gpu, network_gbits, gpus_per_node)
    link = parallel.links(gpu.nvlink_gbps, gpu.pcie_gen, network, busbw_gbs)
    bandwidth = parallel.ring_bandwidth_gbps(link, num_gpus, gpus_per_node)
    if pipeline.sync_after_backward:  # 16-bit gradients, reduced once backward is done
        comm = parallel.allreduce_s(2 * p.params_trainable, num_gpus, bandwidth)
    else:
        comm = parallel.ddp_exposed_s(p.memory.gradients_bytes, num_gpus, bandwidth, compute.backward_s)
    via = link.via if num_gpus <= gpus_per_node else f"{link.via} + network {network:g} Gb/s per GPU"
    sync = parallel.sync_wait_s(compute.step_s, eff.spread_for(p.family), num_gpus)
    return GpuStep(gpu=gpu.name, num_gpus=num_gpus, compute=compute, communication_s=comm, via=via,
                   grad_accum=grad_accum, sync_s=sync)


def fsdp_step(
    p: Profile, gpu: GPU, eff: Efficiency, *, num_gpus: int, gpus_per_node: int = 8,
    network_gbits: float | None = None, pipeline: Pipeline = EAGER, grad_accum: int = 1,
    busbw_gbs: float | None = None,
) -> GpuStep:
    """Fully sharded data parallel over ``num_gpus``, each with the profile's batch.

    Each rank steps the optimizer on its 1/n of the parameters, so the optimizer's ops move
    1/n of the bytes. Every micro batch all-gathers each block's parameters in forward and
    backward and reduce-scatters its gradients (torchtitan keeps FSDP's gradient sync on under
    accumulation), prefetched behind the device's compute (``parallel.fsdp_exposed_s``). Under AMP,
    FSDP2's mixed-precision policy gathers bf16 parameters and reduces float32 gradients.
    """
    n = max(num_gpus, 1)
    compute = accumulated_step(optimizer_shard(p, n), gpu_rates(gpu), eff, pipeline, grad_accum)
    network = _network(gpu, network_gbits, gpus_per_node)
    link = parallel.links(gpu.nvlink_gbps, gpu.pcie_gen, network, busbw_gbs)
    bandwidth = parallel.ring_bandwidth_gbps(link, num_gpus, gpus_per_node)
    mixed = p.precision.autocast_dtype is not None
    param_bytes = 2 if mixed else 4
    traffic = grad_accum * parallel.fsdp_traffic_bytes(p.params_trainable, n, param_bytes=param_bytes, reduce_bytes=4)
    first_gather = (n - 1) / n * p.block_params * param_bytes if n > 1 else 0.0
    comm = parallel.fsdp_exposed_s(traffic, first_gather, bandwidth, compute.device_s)
    via = link.via if num_gpus <= gpus_per_node else f"{link.via} + network {network:g} Gb/s per GPU"
    sync = parallel.sync_wait_s(compute.step_s, eff.spread_for(p.family), num_gpus)
    return GpuStep(gpu=gpu.name, num_gpus=num_gpus, compute=compute, communication_s=comm, via=via,
                   grad_accum=grad_accum, sync_s=sync)


def throughput(p: Profile, step: GpuStep, *, tokens: bool) -> float:
    """Samples (or tokens) per second over all GPUs."""
    per_step = p.batch_size * step.grad_accum * step.num_gpus * ((p.tokens_per_sample or 1) if tokens else 1)
    return per_step / step.step_s


def cpu_rates(ceilings: Ceilings) -> DeviceRates:
    """A calibrated CPU as a device: its measured GEMM rates, copy bandwidth and the last-level cache
    stored with them (none stored: no cache term). (A CPU measures no TF32: a GPU's ceilings, which do,
    give ``measured_peak_tflops`` their TF32 rate.)"""
    fp32 = ceilings.matmul_tflops.get(FP32, 0.0)
    tensor = {FP32: fp32}
    for key in (TF32, BF16, FP16):
        if ceilings.matmul_tflops.get(key):
            tensor[key] = ceilings.matmul_tflops[key]
    return DeviceRates(
        name=ceilings.device_name, tensor_tflops=tensor, vector_tflops=fp32 / 8, memory_gbps=ceilings.memory_gbps,
        is_gpu=False, cache_bytes=ceilings.cache_bytes or 0,
    )


def measured_peak_tflops(ceilings: Ceilings, precision: Precision) -> float | None:
    """A calibrated device's measured rate of matrix products at ``precision``: what bench and train divide the
    achieved rate by for MFU. None where the dtype was not measured (bf16 on a CPU calibrated without it)."""
    return cpu_rates(ceilings).peak_tflops(precision) if ceilings.matmul_tflops.get(FP32) else None


def cpu_step(p: Profile, ceilings: Ceilings, eff: Efficiency | None = None, *, grad_accum: int = 1) -> StepTime:
    """A step on the calibrated CPU. The efficiencies are fractions of its *measured* ceilings, fitted
    on real CPU benches (``gpuwise.predict.cpu_fit``); dispatch runs on the same cores, so it adds to
    the step instead of overlapping it."""
    if eff is None:
        eff = shipped_cpu_efficiency()
    return accumulated_step(p, cpu_rates(ceilings), eff, EAGER, grad_accum)
