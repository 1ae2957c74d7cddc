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

The profile is eager PyTorch's op stream; a ``Pipeline`` says what the training program
runs around it. ``EAGER`` (the default, what ``gpuwise train`` runs) is the profile as
traced, in PyTorch's default channels-first layout. ``tuned_pipeline`` describes the
published NVIDIA containers the efficiencies are fitted on: a fused optimizer step, and
channels-last convolutions under AMP. The efficiencies describe kernels, the pipeline
which kernels run, so constants fitted on tuned runs apply to eager predictions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from gpuwise.config import Precision
from gpuwise.profile import ops
from gpuwise.profile.result import OpGroup, Profile, Recurrence

# Which peak a tensor op runs at, by its operands' dtype and the precision setting.
FP32, TF32, BF16, FP16 = "float32", "tf32", "bfloat16", "float16"
# FP8 products run on the FP8 tensor cores: NVIDIA Transformer Engine's layers (``Pipeline.fp8_layers``), and
# torch._scaled_mm on float8_e4m3fn / float8_e5m2 operands in a profile of torchao's FP8 layers (``--fp8``).
FP8 = "float8"


def rate_dtype(dtype: str) -> str:
    """The key of ``DeviceRates.tensor_tflops`` a product of operands in ``dtype`` runs at: FP8 for every
    8-bit float format (e4m3 and e5m2 run at the same rate), else the dtype itself."""
    return FP8 if dtype.startswith(FP8) else dtype

# The dtype a precision's matrix products run in: the key of ``DeviceRates.tensor_tflops`` (and of the measured
# ``Ceilings.matmul_tflops``). The one precision -> peak-rate mapping, read through ``DeviceRates.peak_tflops``.
MATMUL_DTYPE = {Precision.FP32: FP32, Precision.TF32: TF32, Precision.AMP_BF16: BF16, Precision.AMP_FP16: FP16}
# No real kernel sustains more than ~90% of a datasheet peak (clock throttling under load, tails,
# tile quantization); ``gpuwise.predict.fit`` bounds every fitted fraction by it.
MAX_EFFICIENCY = 0.9


@dataclass(frozen=True)
class DeviceRates:
    """The peaks a prediction needs from one device (a catalog GPU, or a calibrated local device)."""

    name: str
    tensor_tflops: dict[str, float]  # FP32 / TF32 / BF16 / FP16 (/ FP8) -> dense peak for matrix products
    vector_tflops: float  # FP32 non-tensor peak (elementwise math)
    memory_gbps: float
    is_gpu: bool = True
    # Streaming multiprocessors (AMD: compute units), which the thread blocks of a kernel share out;
    # 0: unknown, and a small matrix product is then taken to fill the device.
    sm_count: int = 0
    # NVIDIA's SMs, through which a kernel's DRAM bytes stream at ``Efficiency.sm_stream_gbps`` each
    # (measured on NVIDIA GPUs only; 0: not modelled, as on AMD's compute units and the CPU).
    streaming_sms: int = 0
    # Last-level cache. An op that moves no more than this per call works out of the cache, not DRAM;
    # 0: not modelled.
    cache_bytes: int = 0
    # The cache's measured read bandwidth (a catalog GPU's L2, GB/s), drawn at the same share as DRAM's
    # (``Efficiency.bandwidth``); 0: a multiple of DRAM's instead (``Efficiency.cache_bandwidth``, the CPU).
    cache_gbps: float = 0.0
    family: str = ""  # architecture generation ("Ampere", "Hopper"): which fitted attention efficiency applies

    def matmul_tflops(self, dtype: str, precision: Precision) -> float | None:
        dtype = rate_dtype(dtype)
        if dtype in (BF16, FP16, FP8):
            return self.tensor_tflops.get(dtype)
        if precision is Precision.TF32 and TF32 in self.tensor_tflops:
            return self.tensor_tflops[TF32]
        return self.tensor_tflops.get(FP32, self.vector_tflops)

    def peak_tflops(self, precision: Precision) -> float | None:
        """The dense rate of matrix products at ``precision`` (what MFU and a roof divide by): the tensor
        cores of its dtype; TF32 on a device without TF32 tensor cores runs, and is rated, as FP32; None
        where the device lacks the 16-bit dtype."""
        return self.matmul_tflops(MATMUL_DTYPE[precision], precision)

    def runs_tf32(self, precision: Precision) -> bool:
        """Whether FP32 products run on TF32 tensor cores: with ``tf32`` on a GPU that has them."""
        return precision is Precision.TF32 and TF32 in self.tensor_tflops


# A recurrent layer on a GPU (cuDNN's standard algorithm, which PyTorch picks for every FP32/TF32
# layer: aten/src/ATen/native/cudnn/RNN.cpp, get_algo) computes the input projections of all time
# steps in one large product, then loops over the steps: each step a product h·W_hhᵀ (backward
# d(gates)·W_hh) that needs the previous step's result, and an elementwise kernel for the gates
# (Appleyard, Kocisky & Blunsom 2016, "Optimizing Performance of Recurrent Neural Networks on GPUs",
# arXiv:1604.01946). Two things follow that a roofline of the whole op misses: two kernel launches
# per step, whose fixed costs add up in sequence, and a step product too small to fill the GPU.
KERNELS_PER_STEP = 2
# A product's kernel gives each thread block a tile of the output, 128×128 for the large kernels of
# cuBLAS and cuDNN, and each block runs on one SM (NVIDIA, "Matrix Multiplication Background User's
# Guide", tile and wave quantization). A step's (batch × gates·hidden) output, e.g. 128 × 4096 for
# GNMT, is 32 tiles: 30% of an A100's 108 SMs, whatever their peak.
GEMM_TILE = 128


def step_occupancy(r: Recurrence, sm_count: int) -> float:
    """The fraction of a GPU's SMs one time step's product keeps busy: one output tile per SM, the two
    directions of a bidirectional layer running at once (cuDNN runs them concurrently)."""
    if sm_count <= 0:
        return 1.0
    tiles = math.ceil(r.batch / GEMM_TILE) * math.ceil(r.gates * r.hidden / GEMM_TILE) * r.directions
    return min(1.0, tiles / sm_count)


@dataclass(frozen=True)
class Pipeline:
    """What the training program runs besides the traced ops: memory layout and optimizer kernel."""

    name: str = "eager PyTorch"
    # Activations of convolutions in NHWC. Tensor-core convolution kernels work in NHWC; on
    # NCHW tensors cuDNN transposes the input in and the output back around each call (NVIDIA,
    # "Convolutional Layers User's Guide", tensor layouts: NHWC avoids the transposes), which
    # costs a read and a write of both. CUDA-core (FP32 SIMT, grouped) kernels run NCHW natively.
    channels_last: bool = False
    # One multi-tensor kernel (apex FusedAdam/FusedLAMB, torch ``fused=True``) reads each
    # parameter, gradient and optimizer state once and writes parameters and states once,
    # instead of one pass per elementwise op of the eager update.
    fused_optimizer: bool = False
    # torch.compile (inductor): chains of memory-bound ops between two matrix products run as one
    # generated kernel each (``COMPILE_OPS_PER_KERNEL``); matrix products, attention and convolutions
    # stay library kernels. CUDA graphs are not assumed (the default mode does not use them).
    compiled: bool = False
    # NVIDIA Transformer Engine's FP8 layers (``te.Linear``, ``LayerNormMLP``, its FP8 attention), as NVIDIA's
    # MLPerf BERT runs them on GPUs with FP8 tensor cores (``--use_transformer_engine2``): the 16-bit matrix
    # products and attention of the step run at the FP8 tensor rate, and each FP8 layer writes FP8 copies of
    # its input and output gradient (``fp8_cast_s``; the products' own bytes stay counted at 16 bits). A GPU
    # without FP8 tensor cores runs them in 16 bits. Convolutions stay 16-bit (TE has no FP8 convolution).
    fp8_layers: bool = False
    # The program's own fused kernels around its matrix products (NVIDIA's MLPerf implementations: bias and
    # GELU in the GEMM epilogue, dropout fused with the residual add, BN+ReLU and BN+add+ReLU as one cuDNN
    # kernel): priced as torch.compile's fusion is (``COMPILE_OPS_PER_KERNEL``), the same stated assumption.
    fused_elementwise: bool = False
    # A distributed optimizer whose 16-bit gradients are reduced after backward, none of it behind backward:
    # NVIDIA's MLPerf BERT (apex DistributedFusedLAMB on a ``.half()`` model, ``dwu_overlap_reductions=False``;
    # priced as one all-reduce of 2 bytes per parameter, each GPU stepping its 1/n of the parameters,
    # ``gpuwise.predict.step.gpu_step``). False: DDP's overlapped sync, every GPU stepping all of them.
    sync_after_backward: bool = False


# What the model assumes torch.compile fuses: on average two memory-bound ops per generated kernel
# (a transformer block's chains are short: norm -> cast, silu -> mul, rotary mul -> add, add -> norm),
# so their bytes, launches and host dispatches halve: each chain reads its inputs and writes its output
# once instead of once per op. An assumption, stated: inductor's fusion depends on the graph.
COMPILE_OPS_PER_KERNEL = 2.0


EAGER = Pipeline()


def tuned_pipeline(precision: Precision, *, has_convs: bool, fused_optimizer: bool = True, fp8_layers: bool = False,
                   fused_elementwise: bool = False, sync_after_backward: bool = False,
                   channels_first: bool = False, channels_last: bool = False) -> Pipeline:
    """NVIDIA DeepLearningExamples' recipes: fused optimizers (but GNMT's: ``fused_optimizer=False``),
    and NHWC convnets under AMP only (``channels_first``: a run that kept PyTorch's default NCHW;
    ``channels_last``: a run in NHWC at every precision).

    ConvNets/configs.yml sets ``memory_format: nhwc`` for AMP runs and leaves TF32/FP32 runs
    NCHW. SSD's main.py defaults to ``--data-layout channels_last`` at every precision (its help recommends
    channels-first with ``--no-amp``); its shipped TF32/FP32 rows are still read NCHW, as the fit was made
    (benchmarks/RESULTS.md, 2026-12-07 afternoon: read NHWC, the refit generalises worse).
    """
    amp = precision in (Precision.AMP_FP16, Precision.AMP_BF16)
    parts = ["fused optimizer" if fused_optimizer else "eager optimizer"]
    channels_last = has_convs and not channels_first and (amp or channels_last)
    if channels_last:
        parts.append("channels-last")
    fp8_layers = fp8_layers and amp
    if fp8_layers:
        parts.append("FP8 layers")
    if fused_elementwise:
        parts.append("fused elementwise kernels")
    if sync_after_backward:
        parts.append("16-bit gradients reduced after backward")
    return Pipeline(
        name=f"tuned ({', '.join(parts)})", channels_last=channels_last, fused_optimizer=fused_optimizer,
        fp8_layers=fp8_layers, fused_elementwise=fused_elementwise,
        sync_after_backward=sync_after_backward,
    )


@dataclass(frozen=True)
class Efficiency:
    """Achievable fractions of peak and fixed costs; see ``gpuwise.predict.fit`` for where they come from."""

    matmul: float = 0.70
    conv: float = 0.60
    grouped_conv: float = 0.10  # of the vector (CUDA-core) peak on GPUs: depthwise convs skip tensor cores
    # A fused attention kernel (PyTorch SDPA's flash or memory-efficient kernel, NVIDIA's FMHA, Transformer
    # Engine's), pooled over GPU generations; fitted on the published LLM runs (``fit.fit_attention``). The
    # default is FlashAttention-2's training range on A100 (Dao 2023, arXiv:2307.08691). Attention a program
    # writes out is profiled as its separate kernels (``gpuwise.profile.attention``), not priced by this.
    attention: float = 0.45
    rnn: float = 0.35
    # A large FP32 matrix product on CUDA cores (fp32 precision, no tensor cores). A large SGEMM
    # runs at the FP32 peak (2·10240³ FLOP in 0.11 s on an A100, PyTorch docs, CUDA semantics,
    # "TensorFloat-32 (TF32) on Ampere": 19.5 TFLOP/s), capped at MAX_EFFICIENCY. Other kinds keep
    # their loss against a large GEMM (``on_cuda_cores``). The default is what a fit without FP32
    # rows (Ampere-only data) keeps.
    simt: float = MAX_EFFICIENCY
    bandwidth: float = 0.75
    kernel_latency_s: float = 4e-6  # launch + tail of one kernel on the device
    host_op_s: float = 1.2e-5  # eager PyTorch dispatch per op on the host
    # Bandwidth of ops that fit the last-level cache, as a multiple of the DRAM bandwidth; 0: no cache model.
    cache_bandwidth: float = 0.0
    # How fast one SM streams data (GB/s per SM): by Little's law an SM moves the bytes it keeps in flight
    # once per memory latency, and neither grows with the DRAM's bandwidth. A memory-bound kernel's DRAM
    # bytes take their time at the DRAM's share (``bandwidth``) plus their time through the SMs (SMs × this;
    # the two overlap little in the short kernels of a training step): a GPU with more DRAM bandwidth per SM
    # (H200, B200) gains less on such kernels than its bandwidth says. Measured, not fitted: the catalog's
    # L2 read bandwidth per SM (``Catalog.sm_stream_gbps``). 0: not modelled (the CPU; an SM count unknown).
    sm_stream_gbps: float = 0.0
    source: str = "defaults (not fitted)"
    # A fused attention kernel by GPU generation, fitted on published LLM runs and shrunk toward its kernel's
    # published share of the tensor peak × a fitted scale, else toward ``attention``
    # (``gpuwise.predict.fit.fit_attention``); a generation without runs or a published share takes ``attention``.
    flash_attention: dict[str, float] = field(default_factory=dict)
    flash_attention_source: str = ""
    # How much one GPU's step varies from step to step (standard deviation / mean of a 100 ms step) by
    # workload family, fitted on the published multi-GPU rows (``gpuwise.predict.fit.fit_step_spread``);
    # data parallelism waits for the slowest GPU (``gpuwise.predict.parallel.sync_wait_s``). A family
    # without rows takes ``step_spread_global``.
    step_spread: dict[str, float] = field(default_factory=dict)
    step_spread_global: float = 0.0
    step_spread_source: str = ""
    # How fast a GPU generation's kernels run against the constants above (a multiple of every kernel efficiency
    # and streaming rate but the fused attention kernel's, which ``flash_attention`` gives per generation already),
    # fitted on the shipped published rows of the generation and shrunk toward 1
    # (``gpuwise.predict.fit.fit_generation_scale``); a generation without rows runs at 1.
    generation_scale: dict[str, float] = field(default_factory=dict)
    generation_scale_source: str = ""

    def at_generation(self, generation: str) -> Efficiency:
        """The constants a GPU of ``generation`` runs at: its ``generation_scale`` × each kernel efficiency and
        streaming rate (the fixed costs per kernel and per op, the fused attention kernel's and the step spread
        kept)."""
        scale = self.generation_scale.get(generation, 1.0)
        if scale == 1.0:
            return self
        return replace(self, matmul=self.matmul * scale, conv=self.conv * scale,
                       grouped_conv=self.grouped_conv * scale, rnn=self.rnn * scale, simt=self.simt * scale,
                       bandwidth=self.bandwidth * scale, sm_stream_gbps=self.sm_stream_gbps * scale,
                       generation_scale={})

    def for_kind(self, kind: str, *, flash_family: str | None = None) -> float:
        """The efficiency of an op kind; ``flash_family``: attention runs a fused kernel on a GPU of that
        generation."""
        if kind == ops.ATTENTION and flash_family is not None:
            return self.flash_attention.get(flash_family, self.attention)
        return {
            ops.MATMUL: self.matmul, ops.CONV: self.conv, ops.GROUPED_CONV: self.grouped_conv,
            ops.ATTENTION: self.attention, ops.RNN: self.rnn,
        }[kind]

    def spread_for(self, family: str) -> float:
        """The step-to-step spread of one GPU's step for a workload family (``step_spread``)."""
        return self.step_spread.get(family, self.step_spread_global)

    def on_cuda_cores(self, kind: str) -> float:
        """An FP32 matrix op on CUDA cores: ``simt`` times what the op's kind loses against a large
        GEMM on tensor cores (kind / matmul, never a gain): efficiency taken as separable into a
        unit factor and a kind factor. The kind's loss is mostly its shapes': a recurrent layer's
        per-step GEMM (batch × hidden, e.g. 128 × 1024 · 1024 × 4096 for GNMT) fills a fraction of
        the SMs with thread blocks, whichever unit then runs them."""
        return self.simt * min(1.0, self.for_kind(kind) / self.matmul)


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


def _fused_optimizer_bytes(profile: Profile) -> int:
    """Read parameters, gradients and states once; write parameters and states once."""
    m = profile.memory
    return 2 * m.weights_bytes + m.gradients_bytes + 2 * m.optimizer_state_bytes


@dataclass(frozen=True)
class OpCost:
    """What one call of an op group costs on a device (seconds, but ``kernels`` and ``host_share``)."""

    compute: float  # its FLOPs at the rate its kind and dtype run at
    memory: float  # its bytes at the bandwidth it draws (DRAM, or the cache it fits in)
    transpose_s: float  # NCHW <-> NHWC copies around a tensor-core convolution, kernels of their own
    kernels: float  # kernel launches (a fused chain's share; a recurrent layer's per-step kernels)
    host_share: float  # of one eager dispatch on the host (a fused chain's share)
    cast_s: float = 0.0  # the FP8 copies of an FP8 layer's input and output gradient (``fp8_cast_s``)

    @property
    def device_s(self) -> float:
        """Its time on the device, given the kernel latency per launch of ``eff``."""
        return max(self.compute, self.memory) + self.transpose_s + self.cast_s

    @property
    def compute_bound(self) -> bool:
        return self.compute >= self.memory


def _tensor_compute(g: OpGroup, device: DeviceRates, eff: Efficiency, pipeline: Pipeline, precision: Precision
                    ) -> tuple[float, bool]:
    """A matrix op's compute time per call, and whether it runs on the CUDA cores (no tensor cores for it)."""
    peak = device.matmul_tflops(FP8 if runs_fp8(g, device, pipeline) else g.dtype, precision)
    # Without tensor cores for its dtype a product runs on the CUDA cores: FP32 (TF32 where the GPU has
    # no TF32: PyTorch's flag is then a no-op), and BF16 on a V100 or T4, which PyTorch runs, slowly,
    # without tensor cores: priced at the FP32 rate and the CUDA cores' efficiency.
    on_cuda_cores = device.is_gpu and (peak is None or (g.dtype == FP32 and not device.runs_tf32(precision)))
    if peak is None:
        peak = device.matmul_tflops(FP32, Precision.FP32) or device.vector_tflops
    flash = device.family if device.is_gpu else None
    efficiency = eff.on_cuda_cores(g.kind) if on_cuda_cores else eff.for_kind(g.kind, flash_family=flash)
    rate = peak * 1e12 * efficiency
    compute = g.flops / rate
    loop = g.recurrence if device.is_gpu else None  # the CPU's oneDNN layer is one call, priced whole
    if loop is not None:
        # The step-by-step products run on the SMs they fill, the batched rest at the full rate.
        serial = min(g.flops, loop.steps * loop.step_flops)
        compute += serial / rate * (1 / step_occupancy(loop, device.sm_count) - 1)
    return compute, on_cuda_cores


def runs_fp8(g: OpGroup, device: DeviceRates, pipeline: Pipeline) -> bool:
    """Whether ``g`` runs on the FP8 tensor cores: a 16-bit product or attention of FP8 layers, on a GPU
    that has them (``Pipeline.fp8_layers``)."""
    return (pipeline.fp8_layers and g.dtype in (BF16, FP16) and g.kind in (ops.MATMUL, ops.ATTENTION)
            and FP8 in device.tensor_tflops)


def fp8_cast_s(g: OpGroup, device: DeviceRates, eff: Efficiency, pipeline: Pipeline) -> float:
    """The FP8 copies a forward FP8 product's layer writes, per call: Transformer Engine casts each FP8
    layer's input (forward) and output gradient (backward) to FP8 and keeps a transposed copy of each for the
    other GEMMs of backward (``fp8_cast_transpose_fused``), 2 bytes written per element of each: as many bytes
    as the forward product's 16-bit input and output (its weight matrix, 2-3% of its bytes at MLPerf's 24k
    tokens per GPU, is counted with them). The lower bound: a cast kernel of its own also reads the 16-bit
    tensor again, where TE has not fused the cast into the kernel before (layer norm, GELU, bias gradient)."""
    if g.phase != "forward" or g.kind != ops.MATMUL or not runs_fp8(g, device, pipeline):
        return 0.0
    return dram_s(g.bytes, device, eff)


def dram_s(nbytes: float, device: DeviceRates, eff: Efficiency) -> float:
    """Seconds to stream ``nbytes`` through DRAM: at the DRAM's share of its bandwidth, plus, on an NVIDIA
    GPU of known SM count, through its SMs (``Efficiency.sm_stream_gbps``)."""
    seconds = nbytes / (device.memory_gbps * 1e9 * eff.bandwidth)
    if device.streaming_sms > 0 and eff.sm_stream_gbps > 0:
        seconds += nbytes / (device.streaming_sms * eff.sm_stream_gbps * 1e9)
    return seconds


def traffic_s(nbytes: float, device: DeviceRates, eff: Efficiency) -> float:
    """Seconds an op moving ``nbytes`` per call takes to move them: at the cache's bandwidth where they fit
    in it, else through DRAM (``dram_s``)."""
    through_dram = dram_s(nbytes, device, eff)
    if nbytes > device.cache_bytes:
        return through_dram
    if device.cache_gbps > 0:
        return min(nbytes / (device.cache_gbps * 1e9 * eff.bandwidth), through_dram)
    return nbytes / (device.memory_gbps * 1e9 * eff.cache_bandwidth) if eff.cache_bandwidth > 0 else through_dram


def op_cost(g: OpGroup, device: DeviceRates, eff: Efficiency, pipeline: Pipeline, precision: Precision) -> OpCost:
    """One call of ``g``: max(compute, memory) on the device, the transposes around it, its launches."""
    fused = ((pipeline.compiled or pipeline.fused_elementwise) and device.is_gpu and g.kind not in ops.TENSOR_KINDS
             and g.phase != "optimizer")
    share = 1 / COMPILE_OPS_PER_KERNEL if fused else 1.0  # of its bytes, launches and dispatch
    memory = share * traffic_s(g.bytes, device, eff)
    transposes = 0
    if g.kind == ops.GROUPED_CONV and device.is_gpu:
        # Depthwise/grouped convolutions have too little math per output for tensor cores:
        # cuDNN runs them on the CUDA cores, so their ceiling is the vector peak.
        compute = g.flops / (device.vector_tflops * 1e12 * eff.grouped_conv)
    elif g.kind in ops.TENSOR_KINDS:
        compute, on_cuda_cores = _tensor_compute(g, device, eff, pipeline, precision)
        if g.kind == ops.CONV and device.is_gpu and not on_cuda_cores and not pipeline.channels_last:
            transposes = 2  # NCHW -> NHWC in, NHWC -> NCHW out: each reads and writes its tensor
    else:
        compute = g.vector_flops / (device.vector_tflops * 1e12)
    kernels: float = share + transposes
    loop = g.recurrence if device.is_gpu else None
    if loop is not None:
        # Each direction's steps run in sequence; a bidirectional layer's two run side by side.
        kernels += KERNELS_PER_STEP * loop.steps / loop.directions
    return OpCost(compute=compute, memory=memory, transpose_s=transposes * dram_s(g.bytes, device, eff),
                  cast_s=fp8_cast_s(g, device, eff, pipeline),
                  kernels=kernels, host_share=share)


def step_time(profile: Profile, device: DeviceRates, eff: Efficiency, pipeline: Pipeline = EAGER) -> StepTime:
    """The sum of ``op_cost`` over the profile's ops (the optimizer as one fused kernel where the pipeline
    fuses it); the device and the host overlap on a GPU and add on a CPU."""
    precision = profile.precision
    if device.is_gpu:
        eff = eff.at_generation(device.family)
    compute_s = memory_s = latency_s = host_s = backward_s = 0.0
    by_kind: dict[str, float] = {}
    fuse_optimizer = pipeline.fused_optimizer and device.is_gpu
    for g in profile.ops:
        if fuse_optimizer and g.phase == "optimizer":
            continue  # replaced by one fused kernel below
        c = op_cost(g, device, eff, pipeline, precision)
        bound = g.count * max(c.compute, c.memory)
        if c.compute_bound:
            compute_s += bound
        else:
            memory_s += bound
        memory_s += g.count * (c.transpose_s + c.cast_s)
        latency_s += g.count * c.kernels * eff.kernel_latency_s
        host_s += g.count * c.host_share * eff.host_op_s
        op_s = g.count * (c.device_s + c.kernels * eff.kernel_latency_s)
        by_kind[g.kind] = by_kind.get(g.kind, 0.0) + op_s
        if g.phase == "backward":
            backward_s += op_s
    if fuse_optimizer and any(g.phase == "optimizer" for g in profile.ops):
        fused_s = dram_s(_fused_optimizer_bytes(profile), device, eff)
        memory_s += fused_s
        latency_s += eff.kernel_latency_s
        host_s += eff.host_op_s
        by_kind[ops.ELEMENTWISE] = by_kind.get(ops.ELEMENTWISE, 0.0) + fused_s + eff.kernel_latency_s
    device_s = compute_s + memory_s + latency_s
    return StepTime(
        step_s=max(device_s, host_s) if device.is_gpu else device_s + host_s,
        device_s=device_s, host_s=host_s, compute_bound_s=compute_s, memory_bound_s=memory_s,
        latency_s=latency_s, backward_s=backward_s, by_kind_s=by_kind,
    )
