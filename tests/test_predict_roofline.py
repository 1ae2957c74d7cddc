"""The roofline's pipeline physics on hand-made profiles: layout transposes around tensor-core
convolutions, the fused optimizer step, and which published rows get which pipeline.

No tracing: each profile is a few ``OpGroup``s with round numbers, so every expected time is
arithmetic a reader can check.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from gpuwise.config import Precision
from gpuwise.predict.roofline import (
    EAGER,
    FP16,
    FP32,
    DeviceRates,
    Efficiency,
    Pipeline,
    op_cost,
    step_occupancy,
    step_time,
    tuned_pipeline,
)
from gpuwise.profile import ops
from gpuwise.profile.result import Memory, OpGroup, Profile, Recurrence

GPU = DeviceRates(
    name="test GPU", tensor_tflops={FP32: 10.0, "tf32": 80.0, FP16: 160.0}, vector_tflops=10.0, memory_gbps=1000.0
)
# Whole peaks, no latency or dispatch: a time is FLOPs / peak or bytes / bandwidth.
EFF = Efficiency(
    matmul=1.0, conv=1.0, grouped_conv=1.0, attention=1.0, rnn=1.0, simt=1.0, bandwidth=1.0,
    kernel_latency_s=0.0, host_op_s=0.0,
)
GB = 10**9


def _profile(precision: str, groups: list[OpGroup], *, weights: int = 0, grads: int = 0, state: int = 0) -> Profile:
    memory = Memory(
        weights_bytes=weights, gradients_bytes=grads, optimizer_state_bytes=state, inputs_bytes=0,
        activations_bytes=0, peak_bytes=0, peak_phase="forward", at_peak_bytes={},
    )
    return Profile(
        workload="hand-made", family="vision", sample_unit="image", batch_size=1, seq_len=None, image_size=None,
        precision=Precision(precision), optimizer="sgd-momentum", params_total=0, params_trainable=0, forward_flops=0,
        backward_flops=0, optimizer_vector_flops=0, tokens_per_sample=None, kinds=(), layers=(), ops=tuple(groups),
        uncounted=(), substitutions=(), memory=memory, notes=(),
    )


def _conv(dtype: str, *, flops: int = 0, nbytes: int = GB) -> OpGroup:
    return OpGroup(op="convolution", kind=ops.CONV, phase="forward", dtype=dtype, count=1, flops=flops,
                   vector_flops=0, bytes=nbytes)


def test_nchw_tensor_core_convs_pay_a_transpose_in_and_out() -> None:
    p = _profile("amp-fp16", [_conv(FP16)])  # 1 GB at 1000 GB/s: 1 ms; no FLOPs
    nchw = step_time(p, GPU, EFF, EAGER)
    nhwc = step_time(p, GPU, EFF, Pipeline(channels_last=True))
    assert nhwc.step_s == pytest.approx(1e-3)
    assert nchw.step_s == pytest.approx(3e-3)  # the conv, then a read + write of its tensors twice
    assert nchw.memory_bound_s - nhwc.memory_bound_s == pytest.approx(2e-3)


def test_cuda_core_convs_run_nchw_natively() -> None:
    """FP32 without TF32 runs on the CUDA cores: no tensor-core layout, no transposes."""
    p = _profile("fp32", [_conv(FP32)])
    nhwc = step_time(p, GPU, EFF, Pipeline(channels_last=True))
    assert step_time(p, GPU, EFF, EAGER).step_s == pytest.approx(nhwc.step_s)


def test_tf32_convs_use_tensor_cores_and_pay_the_transposes() -> None:
    p = _profile("tf32", [_conv(FP32, flops=80 * 10**9)])  # 80 GFLOP at 80 TFLOP/s: 1 ms, like its bytes
    assert step_time(p, GPU, EFF, Pipeline(channels_last=True)).step_s == pytest.approx(1e-3)
    assert step_time(p, GPU, EFF, EAGER).step_s == pytest.approx(3e-3)


def test_the_cpu_never_pays_gpu_layout_transposes() -> None:
    cpu = DeviceRates(name="cpu", tensor_tflops={FP32: 1.0}, vector_tflops=0.1, memory_gbps=1000.0, is_gpu=False)
    p = _profile("amp-bf16", [_conv("bfloat16")])
    assert step_time(p, cpu, EFF, EAGER).step_s == pytest.approx(1e-3)


def test_fused_optimizer_reads_each_tensor_once() -> None:
    """Eager: five passes over 1 GB each. Fused: read w, g, state, write w, state = 2w + g + 2s."""
    update = [
        OpGroup(op=f"foreach_{i}", kind=ops.ELEMENTWISE, phase="optimizer", dtype=FP32, count=1, flops=0,
                vector_flops=0, bytes=GB)
        for i in range(5)
    ]
    p = _profile("fp32", update, weights=GB // 10, grads=GB // 10, state=GB // 10)
    eager = step_time(p, GPU, EFF, EAGER)
    fused = step_time(p, GPU, EFF, Pipeline(fused_optimizer=True))
    assert eager.step_s == pytest.approx(5e-3)
    assert fused.step_s == pytest.approx(5 * (GB // 10) / 1e12)
    assert fused.step_s < eager.step_s


def test_fusing_leaves_forward_and_backward_alone() -> None:
    p = _profile("amp-fp16", [_conv(FP16)], weights=GB, grads=GB, state=GB)  # no optimizer ops traced
    assert step_time(p, GPU, EFF, Pipeline(fused_optimizer=True)).step_s == pytest.approx(step_time(p, GPU, EFF).step_s)


@pytest.mark.parametrize(
    ("precision", "has_convs", "channels_last"),
    [
        (Precision.AMP_FP16, True, True),  # DeepLearningExamples' convnets: memory_format nhwc under AMP
        (Precision.TF32, True, False),  # and NCHW in TF32/FP32
        (Precision.FP32, True, False),
        (Precision.AMP_FP16, False, False),  # no convolutions: the layout is moot
    ],
)
def test_tuned_pipeline_of_the_published_recipes(precision: Precision, has_convs: bool, channels_last: bool) -> None:
    pipeline = tuned_pipeline(precision, has_convs=has_convs)
    assert pipeline.fused_optimizer
    assert pipeline.channels_last is channels_last
    assert ("channels-last" in pipeline.name) is channels_last


@pytest.mark.parametrize(
    ("precision", "has_convs", "channels_last"),
    [
        (Precision.TF32, True, True),  # SSD300's main.py: NHWC by default, --no-amp included
        (Precision.FP32, True, True),
        (Precision.TF32, False, False),  # no convolutions: the layout is moot
    ],
)
def test_tuned_pipeline_channels_last_at_every_precision(precision: Precision, has_convs: bool,
                                                          channels_last: bool) -> None:
    pipeline = tuned_pipeline(precision, has_convs=has_convs, channels_last=True)
    assert pipeline.fused_optimizer
    assert pipeline.channels_last is channels_last
    assert ("channels-last" in pipeline.name) is channels_last


def test_eager_is_the_default_and_says_so() -> None:
    assert EAGER == Pipeline()
    assert not EAGER.channels_last and not EAGER.fused_optimizer
    assert "eager" in EAGER.name


def test_simt_default_is_a_capped_fraction() -> None:
    """The unfitted CUDA-core fraction stays a plausible fraction of peak (see roofline.Efficiency)."""
    assert 0.0 < Efficiency().simt <= 0.9
    assert math.isclose(Efficiency().simt, 0.9)


def test_validation_statistics_are_of_magnitudes() -> None:
    from gpuwise.validate import stats

    s = stats([0.1, -0.3, 0.2, -0.05, 0.0, 0.5, -0.4, 0.15, 0.25, -0.35])
    assert (s.count, s.median, s.p90) == (10, pytest.approx(0.225), pytest.approx(0.4))
    assert stats([]).count == 0


def test_ops_that_fit_the_last_level_cache_stream_at_its_bandwidth() -> None:
    from dataclasses import replace

    def add(nbytes: int) -> OpGroup:
        return OpGroup(op="add", kind="elementwise", phase="forward", dtype=FP32, count=1, flops=0, vector_flops=0,
                       bytes=nbytes)

    cpu = DeviceRates(name="test CPU", tensor_tflops={FP32: 1.0}, vector_tflops=1.0, memory_gbps=10.0, is_gpu=False,
                      cache_bytes=32 * 2**20)
    cached = replace(EFF, cache_bandwidth=4.0)
    small, large = 16 * 2**20, 64 * 2**20  # within and beyond the 32 MiB cache
    assert step_time(_profile("fp32", [add(small)]), cpu, cached).step_s == pytest.approx(small / 40e9)
    assert step_time(_profile("fp32", [add(large)]), cpu, cached).step_s == pytest.approx(large / 10e9)
    # No cache term (the default): DRAM for all.
    assert step_time(_profile("fp32", [add(small)]), cpu, EFF).step_s == pytest.approx(small / 10e9)
    assert step_time(_profile("fp32", [add(small)]), replace(cpu, cache_bytes=0), cached).step_s == pytest.approx(
        small / 10e9)


def _rnn(dtype: str, flops: int) -> OpGroup:
    return OpGroup(op="rnn_layer", kind=ops.RNN, phase="forward", dtype=dtype, count=1, flops=flops, vector_flops=0,
                   bytes=0)


def test_cuda_cores_keep_what_a_kind_loses_against_a_large_gemm() -> None:
    """An FP32 op on CUDA cores runs at simt x (its kind / matmul): a recurrent layer's small per-step
    GEMMs fill as few SMs there as on tensor cores. A kind at least as good as a GEMM gets simt."""
    from dataclasses import replace

    eff = replace(EFF, matmul=0.8, rnn=0.4, conv=0.9, attention=0.2, simt=0.9)
    assert eff.on_cuda_cores(ops.RNN) == pytest.approx(0.45)
    assert eff.on_cuda_cores(ops.ATTENTION) == pytest.approx(0.225)
    assert eff.on_cuda_cores(ops.CONV) == pytest.approx(0.9)  # never a gain
    assert eff.on_cuda_cores(ops.MATMUL) == pytest.approx(0.9)
    flops = 9 * 10**9  # 9 GFLOP
    fp32 = step_time(_profile("fp32", [_rnn(FP32, flops)]), GPU, eff)
    assert fp32.step_s == pytest.approx(flops / (10e12 * 0.45))  # FP32 peak 10 TFLOP/s
    # The same layer in TF32 runs on tensor cores at the rnn fraction of the TF32 peak.
    tf32 = step_time(_profile("tf32", [_rnn(FP32, flops)]), GPU, eff)
    assert tf32.step_s == pytest.approx(flops / (80e12 * 0.4))


def test_gnmt_rows_step_an_eager_optimizer() -> None:
    """NVIDIA's GNMT trainer builds plain torch.optim.Adam; their other recipes use fused optimizers."""
    from gpuwise.predict.published import MappedRow, load_published, map_row

    mapped = [m for r in load_published() if isinstance(m := map_row(r), MappedRow)]
    by_workload = {m.workload: m.fused_optimizer for m in mapped}
    assert by_workload["gnmt"] is False
    assert all(by_workload[w] for w in ("resnet50", "ssd300", "efficientnet_b0", "bert-large", "bert-large-squad"))
    pipeline = tuned_pipeline(Precision.AMP_FP16, has_convs=False, fused_optimizer=False)
    assert not pipeline.fused_optimizer and "eager optimizer" in pipeline.name


def _recurrent(phase: str, loop: Recurrence, flops: int) -> OpGroup:
    return OpGroup(op="rnn_layer", kind=ops.RNN, phase=phase, dtype=FP16, count=1, flops=flops, vector_flops=0,
                   bytes=0, recurrence=loop)


# 10 steps of a (128 × 1024) · (1024 × 4096) product: 32 output tiles of 128 × 128.
LOOP = Recurrence(steps=10, batch=128, hidden=1024, gates=4, directions=1)
SERIAL = 10 * 2 * 128 * 1024 * 4096


def test_recurrent_steps_run_on_the_sms_they_fill_and_launch_two_kernels_each() -> None:
    """A layer's batched input projection runs at the full rate; its step-by-step products keep 32 of
    64 SMs busy, so they take twice as long; each step launches a product and a gates kernel."""
    from dataclasses import replace

    gpu = replace(GPU, sm_count=64)
    eff = replace(EFF, kernel_latency_s=1e-6)
    flops = 2 * SERIAL  # input size = hidden: half the layer's FLOPs are the recurrent products
    rate = 160e12  # FP16 peak, rnn efficiency 1
    for phase in ("forward", "backward"):
        t = step_time(_profile("amp-fp16", [_recurrent(phase, LOOP, flops)]), gpu, eff)
        assert t.compute_bound_s == pytest.approx((flops - SERIAL) / rate + SERIAL / (0.5 * rate))
        assert t.latency_s == pytest.approx((1 + 2 * 10) * 1e-6)


def test_a_bidirectional_layer_runs_its_directions_side_by_side() -> None:
    """Two directions' step products fill 64 SMs together, and their launches overlap."""
    from dataclasses import replace

    gpu = replace(GPU, sm_count=64)
    eff = replace(EFF, kernel_latency_s=1e-6)
    both = replace(LOOP, directions=2)
    t = step_time(_profile("amp-fp16", [_recurrent("forward", both, 2 * SERIAL)] * 2), gpu, eff)
    assert t.compute_bound_s == pytest.approx(2 * 2 * SERIAL / 160e12)
    assert t.latency_s == pytest.approx(2 * (1 + 10) * 1e-6)


def test_step_occupancy_without_an_sm_count_or_on_the_cpu() -> None:
    """A GPU whose SM count the catalog lacks is taken to be filled; the CPU's profile prices its RNN
    as oneDNN runs it, one call per layer, with neither term."""
    from dataclasses import replace

    assert step_occupancy(LOOP, 0) == 1.0
    assert step_occupancy(LOOP, 16) == 1.0  # more tiles than SMs
    assert step_occupancy(replace(LOOP, batch=129), 128) == pytest.approx(64 / 128)  # a second row of tiles
    eff = replace(EFF, kernel_latency_s=1e-6)
    p = _profile("amp-fp16", [_recurrent("forward", LOOP, 2 * SERIAL)])
    assert step_time(p, GPU, eff).compute_bound_s == pytest.approx(2 * SERIAL / 160e12)
    cpu = replace(GPU, is_gpu=False, sm_count=64)
    assert step_time(p, cpu, eff).latency_s == pytest.approx(1e-6)


def test_one_ops_cost_names_its_parts() -> None:
    """``op_cost`` is the per-call piece ``step_time`` sums: an NCHW tensor-core convolution pays two
    transposes (three kernels); a compiled elementwise op half a kernel and half a dispatch."""
    conv = op_cost(_conv(FP16, flops=160 * 10**12), GPU, EFF, EAGER, Precision.AMP_FP16)
    assert (conv.compute, conv.memory, conv.kernels, conv.host_share) == (1.0, 1e-3, 3, 1.0)
    assert conv.transpose_s == pytest.approx(2e-3) and conv.device_s == pytest.approx(1.002) and conv.compute_bound
    add = OpGroup(op="add", kind=ops.ELEMENTWISE, phase="forward", dtype=FP32, count=1, flops=0, vector_flops=0,
                  bytes=GB)
    fused = op_cost(add, GPU, EFF, Pipeline(compiled=True), Precision.FP32)
    assert (fused.memory, fused.kernels, fused.host_share, fused.compute_bound) == (5e-4, 0.5, 0.5, False)


def test_a_gpus_l2_is_drawn_at_its_measured_bandwidth_and_the_drams_share() -> None:
    """A catalog GPU's L2 (``cache_gbps``): an op that fits streams at the L2's measured bandwidth times
    the share of a microbenchmark the kernels reach (``Efficiency.bandwidth``), the same share as DRAM."""
    from dataclasses import replace

    add = OpGroup(op="add", kind="elementwise", phase="forward", dtype=FP32, count=1, flops=0, vector_flops=0,
                  bytes=16 * 2**20)
    gpu = replace(GPU, cache_bytes=32 * 2**20, cache_gbps=4000.0)
    half = replace(EFF, bandwidth=0.5, cache_bandwidth=9.0)  # the CPU's multiple is not used on a GPU's L2
    assert step_time(_profile("fp32", [add]), gpu, half).step_s == pytest.approx(16 * 2**20 / 2000e9)
    big = replace(add, bytes=64 * 2**20)
    assert step_time(_profile("fp32", [big]), gpu, half).step_s == pytest.approx(64 * 2**20 / 500e9)


def test_dram_bytes_take_their_time_at_the_sms_streaming_rate_too() -> None:
    """``Efficiency.sm_stream_gbps``: an op's DRAM bytes take bytes / (DRAM × bandwidth share) plus
    bytes / (SMs × the per-SM streaming rate); so do the layout transposes and the fused optimizer."""
    from dataclasses import replace

    gpu = replace(GPU, sm_count=100, streaming_sms=100)  # 100 SMs
    sm = replace(EFF, sm_stream_gbps=10.0)  # 100 × 10 GB/s = 1000 GB/s on the SMs' side
    add = OpGroup(op="add", kind=ops.ELEMENTWISE, phase="forward", dtype=FP32, count=1, flops=0, vector_flops=0,
                  bytes=GB)
    assert step_time(_profile("fp32", [add]), gpu, sm).step_s == pytest.approx(1e-3 + 1e-3)
    conv = op_cost(_conv(FP16), gpu, sm, EAGER, Precision.AMP_FP16)
    assert conv.memory == pytest.approx(2e-3) and conv.transpose_s == pytest.approx(2 * 2e-3)
    p = _profile("fp32", [OpGroup(op="_foreach_add", kind=ops.ELEMENTWISE, phase="optimizer", dtype=FP32, count=1,
                                  flops=0, vector_flops=0, bytes=0)], weights=GB, grads=GB, state=GB)
    fused = step_time(p, gpu, sm, Pipeline(fused_optimizer=True))
    assert fused.memory_bound_s == pytest.approx(5e-3 + 5e-3)  # 5 GB read and written once, both sides
    # Off without streaming SMs (a CPU, an AMD GPU, an SM count unknown) or at the default (0): DRAM alone.
    for device, eff in ((GPU, sm), (replace(gpu, streaming_sms=0), sm), (gpu, EFF)):
        assert step_time(_profile("fp32", [add]), device, eff).step_s == pytest.approx(1e-3)


def test_more_dram_bandwidth_per_sm_buys_less_on_memory_bound_ops() -> None:
    """Two GPUs with the same SMs, one with twice the DRAM bandwidth (an H200 against an H100): a
    memory-bound op gains less than 2× once the SMs' side is priced, exactly 2× without it."""
    from dataclasses import replace

    add = _profile("fp32", [OpGroup(op="add", kind=ops.ELEMENTWISE, phase="forward", dtype=FP32, count=1, flops=0,
                                    vector_flops=0, bytes=GB)])
    slow = replace(GPU, sm_count=100, streaming_sms=100)
    fast = replace(slow, memory_gbps=2000.0)
    for eff, gain in ((EFF, 2.0), (replace(EFF, sm_stream_gbps=10.0), 2e-3 / 1.5e-3)):
        assert step_time(add, slow, eff).step_s / step_time(add, fast, eff).step_s == pytest.approx(gain)


def test_an_op_in_the_l2_skips_the_sms_dram_side() -> None:
    """An op that fits the L2 streams at the L2's bandwidth, never slower than it would through DRAM."""
    from dataclasses import replace

    small = OpGroup(op="add", kind=ops.ELEMENTWISE, phase="forward", dtype=FP32, count=1, flops=0, vector_flops=0,
                    bytes=16 * 2**20)
    gpu = replace(GPU, sm_count=100, streaming_sms=100, cache_bytes=32 * 2**20, cache_gbps=4000.0)
    sm = replace(EFF, sm_stream_gbps=10.0)
    assert step_time(_profile("fp32", [small]), gpu, sm).step_s == pytest.approx(16 * 2**20 / 4000e9)


def _op(kind: str, dtype: str, *, flops: int = 0, nbytes: int = 0, count: int = 1) -> OpGroup:
    return OpGroup(op=kind, kind=kind, phase="forward", dtype=dtype, count=count, flops=flops, vector_flops=0,
                   bytes=nbytes)


def test_fp8_layers_run_products_and_attention_at_the_fp8_rate() -> None:
    """Transformer Engine's FP8 layers: 16-bit matrix products and attention at the FP8 tensor rate; convolutions
    and FP32 products keep theirs; a GPU without FP8 tensor cores runs them in 16 bits."""
    fp8_gpu = DeviceRates(name="fp8 GPU", tensor_tflops={FP32: 10.0, FP16: 160.0, "float8": 320.0},
                          vector_tflops=10.0, memory_gbps=1000.0)
    flops = 16 * 10**12
    fp8 = Pipeline(fp8_layers=True)
    for kind in (ops.MATMUL, ops.ATTENTION):
        p = _profile("amp-fp16", [_op(kind, FP16, flops=flops)])
        assert step_time(p, fp8_gpu, EFF, fp8).step_s == pytest.approx(flops / 320e12)
        assert step_time(p, fp8_gpu, EFF, Pipeline()).step_s == pytest.approx(flops / 160e12)
        assert step_time(p, GPU, EFF, fp8).step_s == pytest.approx(flops / 160e12)  # no FP8 tensor cores
    conv = _profile("amp-fp16", [_op(ops.CONV, FP16, flops=flops)])
    assert step_time(conv, fp8_gpu, EFF, replace(fp8, channels_last=True)).step_s == pytest.approx(flops / 160e12)
    fp32 = _profile("amp-fp16", [_op(ops.MATMUL, FP32, flops=flops)])
    assert step_time(fp32, fp8_gpu, EFF, fp8).step_s == pytest.approx(flops / 10e12)
    assert "FP8 layers" in tuned_pipeline(Precision.AMP_BF16, has_convs=False, fp8_layers=True).name
    assert not tuned_pipeline(Precision.TF32, has_convs=False, fp8_layers=True).fp8_layers  # FP8 beside AMP only


def test_fused_elementwise_kernels_halve_the_memory_bound_chains() -> None:
    """A program's own fused kernels (NVIDIA's MLPerf implementations) are priced as torch.compile's fusion:
    elementwise bytes and launches over COMPILE_OPS_PER_KERNEL; products and the optimizer as before."""
    from gpuwise.predict.roofline import COMPILE_OPS_PER_KERNEL

    p = _profile("amp-fp16", [_op(ops.ELEMENTWISE, FP16, nbytes=GB), _op(ops.MATMUL, FP16, flops=160 * 10**12)])
    plain = step_time(p, GPU, EFF, tuned_pipeline(Precision.AMP_FP16, has_convs=False))
    fused = step_time(p, GPU, EFF, tuned_pipeline(Precision.AMP_FP16, has_convs=False, fused_elementwise=True))
    assert plain.step_s == pytest.approx(1.0 + 1e-3)
    assert fused.step_s == pytest.approx(1.0 + 1e-3 / COMPILE_OPS_PER_KERNEL)


def test_a_sync_after_backward_is_all_exposed_in_16_bits() -> None:
    """NVIDIA's MLPerf BERT reduces its 16-bit gradients once backward is done: the whole all-reduce of 2 bytes
    per parameter adds to the step, where DDP hides its 4-byte all-reduce behind a long enough backward."""
    from gpuwise.hardware.catalog import load_catalog
    from gpuwise.predict import parallel
    from gpuwise.predict.step import gpu_step

    gpu = load_catalog().get("H100-PCIe-80GB")
    params = 10**9
    backward = OpGroup(op="mm", kind=ops.MATMUL, phase="backward", dtype=FP16, count=1, flops=10**15,
                       vector_flops=0, bytes=0)
    p = replace(_profile("amp-fp16", [backward], grads=4 * params), params_trainable=params)
    link = parallel.links(gpu.nvlink_gbps, gpu.pcie_gen, 400.0)
    bandwidth = parallel.ring_bandwidth_gbps(link, 8, 8)
    ddp = gpu_step(p, gpu, EFF, num_gpus=8, pipeline=tuned_pipeline(Precision.AMP_FP16, has_convs=False))
    after = gpu_step(p, gpu, EFF, num_gpus=8,
                     pipeline=tuned_pipeline(Precision.AMP_FP16, has_convs=False, sync_after_backward=True))
    assert ddp.compute.backward_s > parallel.allreduce_s(4 * params, 8, bandwidth)  # DDP: only its last bucket
    assert ddp.communication_s < 0.05 * parallel.allreduce_s(4 * params, 8, bandwidth)
    assert after.communication_s == pytest.approx(parallel.allreduce_s(2 * params, 8, bandwidth))
    assert after.compute.step_s == pytest.approx(ddp.compute.step_s)  # no optimizer step in this profile


def test_a_distributed_optimizer_steps_each_gpus_share() -> None:
    """apex's DistributedFusedLAMB (``sync_after_backward``) steps each GPU's 1/n of the parameters: the
    fused optimizer kernel's bytes over n; DDP steps all of them on every GPU."""
    from gpuwise.hardware.catalog import load_catalog
    from gpuwise.predict.step import gpu_step, optimizer_shard

    gpu = load_catalog().get("H100-SXM5-80GB")
    update = OpGroup(op="add", kind=ops.ELEMENTWISE, phase="optimizer", dtype=FP32, count=1, flops=0,
                     vector_flops=0, bytes=GB)
    p = _profile("amp-fp16", [update], weights=4 * GB, grads=4 * GB, state=8 * GB)
    tuned = tuned_pipeline(Precision.AMP_FP16, has_convs=False)
    ddp = gpu_step(p, gpu, EFF, num_gpus=8, pipeline=tuned)
    dist = gpu_step(p, gpu, EFF, num_gpus=8, pipeline=replace(tuned, sync_after_backward=True))
    assert dist.compute.step_s == pytest.approx(ddp.compute.step_s / 8)  # the fused kernel's bytes, all of it
    assert optimizer_shard(p, 1) is p
    assert optimizer_shard(p, 8).memory.optimizer_state_bytes == GB


def test_fp8_layers_write_fp8_copies_of_their_inputs_and_gradients() -> None:
    """Transformer Engine writes an FP8 copy and its transpose of each FP8 layer's input (forward) and output
    gradient (backward): the forward product's 16-bit bytes once more, through DRAM, beside the product."""
    fp8_gpu = DeviceRates(name="fp8 GPU", tensor_tflops={FP32: 10.0, FP16: 160.0, "float8": 320.0},
                          vector_tflops=10.0, memory_gbps=1000.0)
    fp8 = Pipeline(fp8_layers=True)
    flops = 32 * 10**12
    forward = _op(ops.MATMUL, FP16, flops=flops, nbytes=GB)  # 0.1 s of FP8 math, 1 ms of bytes
    assert step_time(_profile("amp-fp16", [forward]), fp8_gpu, EFF, fp8).step_s == pytest.approx(0.1 + 1e-3)
    backward = replace(forward, phase="backward")  # its casts are counted once, with the forward product
    assert step_time(_profile("amp-fp16", [backward]), fp8_gpu, EFF, fp8).step_s == pytest.approx(0.1)
    attention = _op(ops.ATTENTION, FP16, flops=flops, nbytes=GB)  # FP8 attention reads the QKV GEMM's output
    assert step_time(_profile("amp-fp16", [attention]), fp8_gpu, EFF, fp8).step_s == pytest.approx(0.1)
    # No FP8 tensor cores, no FP8 copies: the 16-bit product alone.
    assert step_time(_profile("amp-fp16", [forward]), GPU, EFF, fp8).step_s == pytest.approx(0.2)
