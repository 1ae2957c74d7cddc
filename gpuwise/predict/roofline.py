"""Time of one training step on a device, op by op, from the profile.

Each distinct op of the profile (an ``OpGroup``: same op, shapes' FLOPs and bytes)
costs, per call,

    max(FLOPs / (efficiency_kind × peak rate for its kind and dtype),
        bytes / (efficiency_bw × memory bandwidth))  +  kernel latency

on the device (grouped/depthwise convolutions against the CUDA-core vector peak, not the
tensor-core one), and a fixed host time to dispatch it (eager PyTorch launches every
op from Python). The device and the host run concurrently, so the step takes the
larger of the two sums. "Efficiency" is the achievable fraction of the datasheet
peak: measured by ``gpuwise calibrate`` for local devices, fitted on published
measurements for catalog GPUs (``gpuwise.predict.fit``), never the datasheet alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gpuwise.config import Precision
from gpuwise.profile import ops
from gpuwise.profile.result import Profile

# Which peak a tensor op runs at, by its operands' dtype and the precision setting.
FP32, TF32, BF16, FP16 = "float32", "tf32", "bfloat16", "float16"


@dataclass(frozen=True)
class DeviceRates:
    """The peaks a prediction needs from one device (a catalog GPU, or a calibrated local device)."""

    name: str
    tensor_tflops: dict[str, float]  # FP32 / TF32 / BF16 / FP16 -> dense peak for matrix products
    vector_tflops: float  # FP32 non-tensor peak (elementwise math)
    memory_gbps: float
    is_gpu: bool = True

    def matmul_tflops(self, dtype: str, precision: Precision) -> float | None:
        if dtype in (BF16, FP16):
            return self.tensor_tflops.get(dtype)
        if precision is Precision.TF32 and TF32 in self.tensor_tflops:
            return self.tensor_tflops[TF32]
        return self.tensor_tflops.get(FP32, self.vector_tflops)


@dataclass(frozen=True)
class Efficiency:
    """Achievable fractions of peak and fixed costs; see ``gpuwise.predict.fit`` for where they come from."""

    matmul: float = 0.70
    conv: float = 0.60
    grouped_conv: float = 0.10  # of the vector (CUDA-core) peak on GPUs: depthwise convs skip tensor cores
    attention: float = 0.45
    rnn: float = 0.35
    simt: float = 0.60  # FP32 matrix products on CUDA cores (no tensor cores: fp32 precision)
    bandwidth: float = 0.75
    kernel_latency_s: float = 4e-6  # launch + tail of one kernel on the device
    host_op_s: float = 1.2e-5  # eager PyTorch dispatch per op on the host
    source: str = "defaults (not fitted)"

    def for_kind(self, kind: str) -> float:
        return {
            ops.MATMUL: self.matmul, ops.CONV: self.conv, ops.GROUPED_CONV: self.grouped_conv,
            ops.ATTENTION: self.attention, ops.RNN: self.rnn,
        }[kind]


@dataclass(frozen=True)
class StepTime:
    """Predicted time of one step on one device, and what makes it up (seconds)."""

    step_s: float
    device_s: float  # sum over ops of max(compute, memory) + latency
    host_s: float  # dispatch time on the host
    compute_bound_s: float  # ops whose compute term won
    memory_bound_s: float  # ops whose bandwidth term won
    latency_s: float
    backward_s: float  # the device time of backward ops: what DDP's gradient all-reduce can hide behind
    by_kind_s: dict[str, float] = field(default_factory=dict)

    @property
    def bound(self) -> str:
        """What binds the step: compute, memory bandwidth, or launch/host overhead."""
        if self.host_s >= self.device_s or self.latency_s > max(self.compute_bound_s, self.memory_bound_s):
            return "overhead"
        return "compute" if self.compute_bound_s >= self.memory_bound_s else "memory bandwidth"


def step_time(profile: Profile, device: DeviceRates, eff: Efficiency) -> StepTime:
    precision = Precision.parse(profile.precision)
    bandwidth = device.memory_gbps * 1e9 * eff.bandwidth
    vector = device.vector_tflops * 1e12
    compute_s = memory_s = latency_s = host_s = backward_s = 0.0
    by_kind: dict[str, float] = {}
    for g in profile.ops:
        memory = g.bytes / bandwidth
        if g.kind == ops.GROUPED_CONV and device.is_gpu:
            # Depthwise/grouped convolutions have too little math per output for tensor cores:
            # cuDNN runs them on the CUDA cores, so their ceiling is the vector peak.
            compute = g.flops / (vector * eff.grouped_conv)
        elif g.kind in ops.TENSOR_KINDS:
            peak = device.matmul_tflops(g.dtype, precision)
            if peak is None:  # e.g. BF16 on a V100: PyTorch would fail; treat as FP32 speed
                peak = device.matmul_tflops(FP32, Precision.FP32) or device.vector_tflops
            on_cuda_cores = device.is_gpu and g.dtype == FP32 and precision is not Precision.TF32
            efficiency = eff.simt if on_cuda_cores and g.kind != ops.GROUPED_CONV else eff.for_kind(g.kind)
            compute = g.flops / (peak * 1e12 * efficiency)
        else:
            compute = g.vector_flops / vector
        per_call = max(compute, memory)
        if compute >= memory:
            compute_s += g.count * per_call
        else:
            memory_s += g.count * per_call
        latency_s += g.count * eff.kernel_latency_s
        host_s += g.count * eff.host_op_s
        by_kind[g.kind] = by_kind.get(g.kind, 0.0) + g.count * (per_call + eff.kernel_latency_s)
        if g.phase == "backward":
            backward_s += g.count * (per_call + eff.kernel_latency_s)
    device_s = compute_s + memory_s + latency_s
    return StepTime(
        step_s=max(device_s, host_s) if device.is_gpu else device_s + host_s,
        device_s=device_s, host_s=host_s, compute_bound_s=compute_s, memory_bound_s=memory_s,
        latency_s=latency_s, backward_s=backward_s, by_kind_s=by_kind,
    )
