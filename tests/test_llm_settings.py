"""LLM training as people run it: activation checkpointing, FSDP2 mixed precision, causal flash attention,
gradient accumulation, torch.compile, the network between nodes — each checked against its arithmetic."""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace

import pytest
import torch
from torch import nn

from gpuwise import profile
from gpuwise.config import Precision
from gpuwise.errors import GpuwiseError
from gpuwise.hardware.catalog import achievable_fractions, load_catalog
from gpuwise.predict import memory, parallel
from gpuwise.predict.fit import shipped_efficiency
from gpuwise.predict.published import PublishedRow, map_llm_run
from gpuwise.predict.roofline import Pipeline
from gpuwise.predict.step import accumulated_step, fsdp_step, gpu_rates, gpu_step, profile_for_gpu
from gpuwise.profile import ops
from gpuwise.workloads import Shape, Workload
from gpuwise.workloads.decoder import Decoder, DecoderConfig, _loss
from tests.helpers import make_workload, run_cli

TINY = DecoderConfig(dim=256, n_layers=4, n_heads=8, n_kv_heads=2, ffn_dim=688, vocab_size=1000)
SEQ = 128


def tiny_decoder(name: str = "tiny-decoder") -> Workload:
    def make_batch(n: int, shape: Shape) -> dict[str, torch.Tensor]:
        tokens = torch.randint(0, TINY.vocab_size, (n, SEQ + 1))
        return {"tokens": tokens[:, :-1], "labels": tokens[:, 1:]}

    return Workload(
        name=name, family="language (transformer)", sample_unit="token", default_batch_size=2, summary="test",
        build_model=lambda shape: Decoder(TINY, SEQ), make_batch=make_batch, forward_loss=_loss,
        default_shape=Shape(seq_len=SEQ), tokens_per_sample=lambda shape: SEQ,
    )


# ------------------------------------------------------------------ causal attention


def test_causal_attention_counts_half_of_the_products() -> None:
    full = ops.attention_flops((2, 8, SEQ, 32), (2, 8, SEQ, 32), (2, 8, SEQ, 32))
    assert full == 2 * 2 * 2 * 8 * SEQ * SEQ * 32  # Q·Kᵀ and P·V, 2 FLOPs a multiply-add
    assert ops.attention_flops((2, 8, SEQ, 32), (2, 8, SEQ, 32), (2, 8, SEQ, 32), causal=True) == full // 2


def test_the_decoder_profiles_causal_flash_attention_at_half_the_flops() -> None:
    p = profile(tiny_decoder(), batch_size=2, gpu_kernels=True)
    attention = sum(g.flops * g.count for g in p.ops if g.kind == ops.ATTENTION)
    head_dim = TINY.dim // TINY.n_heads
    forward = 4 * 2 * TINY.n_heads * SEQ * SEQ * head_dim // 2  # causal: half
    assert attention == TINY.n_layers * 3 * forward  # forward + backward (twice the forward)


# ------------------------------------------------------------------ activation checkpointing


@pytest.mark.parametrize("mode", ["selective", "full"])
def test_checkpointing_trades_saved_activations_for_recompute(mode: str) -> None:
    w = tiny_decoder()
    none = profile(w, batch_size=2, gpu_kernels=True)
    ac = profile(w, batch_size=2, gpu_kernels=True, activation_checkpointing=mode)
    assert ac.activation_checkpointing == mode
    assert ac.memory.activations_bytes < 0.7 * none.memory.activations_bytes
    assert ac.recompute_flops > 0 and ac.backward_flops == none.backward_flops + ac.recompute_flops
    assert ac.training_flops == none.training_flops  # the model's FLOPs: recompute apart
    assert ac.recompute_flops <= none.forward_flops


def test_full_checkpointing_recomputes_each_block_forward() -> None:
    w = tiny_decoder()
    none = profile(w, batch_size=2, gpu_kernels=True)
    full = profile(w, batch_size=2, gpu_kernels=True, activation_checkpointing="full")
    tokens = 2 * SEQ
    output_layer = 2 * tokens * TINY.dim * TINY.vocab_size  # not in a block: never recomputed
    # torch stops a recompute once the last saved tensor is back (early_stop): a block's last product,
    # w2, whose output nothing saved depends on, is not rerun.
    w2 = 2 * tokens * TINY.ffn_dim * TINY.dim
    assert full.recompute_flops == none.forward_flops - output_layer - TINY.n_layers * w2


def test_checkpointing_a_model_without_blocks_is_one_line() -> None:
    w = make_workload(lambda: nn.Linear(4, 2), lambda n: torch.randn(n, 4), lambda m, x: m(x).sum())
    with pytest.raises(GpuwiseError, match=r"--activation-checkpointing full: .* no blocks to recompute"):
        profile(w, batch_size=2, activation_checkpointing="full")


# ------------------------------------------------------------------ CUDA's autocast lists, FSDP memory


def test_gpu_profiles_follow_cudas_autocast_lists() -> None:
    def build() -> nn.Module:
        return nn.Sequential(nn.Linear(64, 64), nn.LayerNorm(64), nn.Linear(64, 8))

    w = make_workload(build, lambda n: torch.randn(n, 64), lambda m, x: m(x).float().pow(2).mean())
    cpu = profile(w, batch_size=4, precision="amp-bf16")
    gpu = profile(w, batch_size=4, precision="amp-bf16", gpu_kernels=True)

    def norm_dtype(p: object) -> set[str]:
        return {g.dtype for g in p.ops if g.op == "aten.native_layer_norm.default"}  # type: ignore[attr-defined]

    assert norm_dtype(cpu) == {"bfloat16"}  # the CPU's lists leave layer_norm in bf16
    assert norm_dtype(gpu) == {"float32"}  # CUDA's run it in float32


def test_fsdp_memory_adds_the_activations_the_unsharded_peak_hides() -> None:
    # The peak of a step with a large vocabulary is at the end of backward, where no activation is left;
    # per rank FSDP must still hold the largest the activations ever were.
    p = profile_for_gpu(tiny_decoder(), batch_size=8, precision=Precision.AMP_BF16, optimizer="adamw",
                        low_precision_params=True)
    m = p.memory
    assert m.peak_activity_bytes >= m.activations_bytes
    per_rank = memory.tensor_bytes(p, num_gpus=8, sharded=True)
    assert per_rank >= m.activations_bytes + memory.state_bytes(p) / 8
    assert m.at_peak_bytes.get("weight_copies", 0) == 0  # FSDP's bf16 parameters: no autocast copies
    autocast = profile_for_gpu(tiny_decoder(), batch_size=8, precision=Precision.AMP_BF16, optimizer="adamw")
    assert autocast.memory.peak_activity_bytes > autocast.memory.peak_activity_no_copies_bytes
    # the state is float32 in FSDP's shards, though the profile traced it in bf16
    assert memory.state_bytes(p) == pytest.approx(memory.state_bytes(autocast), rel=1e-4)  # Adam's fp32 steps


def test_fsdp_mixed_precision_moves_eight_bytes_a_parameter() -> None:
    n, params = 8, 1_000_000
    assert parallel.fsdp_traffic_bytes(params, n, param_bytes=2, reduce_bytes=4) == pytest.approx(7 / 8 * params * 8)
    assert parallel.fsdp_traffic_bytes(params, n, param_bytes=4, reduce_bytes=4) == pytest.approx(7 / 8 * params * 12)
    assert parallel.fsdp_traffic_bytes(params, 1, param_bytes=2, reduce_bytes=4) == 0


def test_a_ring_across_nodes_uses_every_nic_of_the_node() -> None:
    links = parallel.links(600.0, None, network_gbits=200)  # NVLink 300 GB/s a direction, 25 GB/s NIC per GPU
    one_node = parallel.ring_bandwidth_gbps(links, 8, 8)
    two_nodes = parallel.ring_bandwidth_gbps(links, 16, 8)
    assert one_node == pytest.approx(300 * parallel.LINK_EFFICIENCY)
    assert two_nodes == pytest.approx(8 * 25 * parallel.LINK_EFFICIENCY)
    thin = parallel.links(600.0, None, network_gbits=50)
    assert parallel.ring_bandwidth_gbps(thin, 16, 8) == pytest.approx(8 * 50 / 8 * parallel.LINK_EFFICIENCY)


def test_a_ring_over_pcie_reaches_the_share_published_pcie_rings_reach() -> None:
    # The measured PCIe rings (parallel.PCIE_RING_EFFICIENCY's sources) reach 37-81% of the x16 link, NVLink ~80%.
    gen5 = parallel.links(None, 5, network_gbits=400)
    assert gen5.via == "PCIe 5.0"
    assert parallel.ring_bandwidth_gbps(gen5, 8, 8) == pytest.approx(64 * parallel.PCIE_RING_EFFICIENCY)
    assert 0.37 <= parallel.PCIE_RING_EFFICIENCY <= 0.81 and parallel.PCIE_RING_EFFICIENCY < parallel.LINK_EFFICIENCY
    # Across nodes the slower of the PCIe ring and the node's NICs (4 GPUs × 400 Gb/s = 200 GB/s: PCIe's).
    assert parallel.ring_bandwidth_gbps(gen5, 16, 4) == pytest.approx(64 * parallel.PCIE_RING_EFFICIENCY)
    thin = parallel.links(None, 4, network_gbits=25)  # 4 × 3.125 GB/s: the network's
    assert parallel.ring_bandwidth_gbps(thin, 8, 4) == pytest.approx(4 * 25 / 8 * parallel.LINK_EFFICIENCY)


def test_the_network_default_follows_the_gpu_class() -> None:
    catalog = load_catalog()
    h100, a100, l40s = (catalog.get(n) for n in ("H100-SXM5-80GB", "A100-SXM4-80GB", "L40S"))
    assert parallel.default_network_gbits(h100.architecture, h100.nvlink_gbps)[0] == 400
    assert parallel.default_network_gbits(a100.architecture, a100.nvlink_gbps)[0] == 200
    assert parallel.default_network_gbits(l40s.architecture, l40s.nvlink_gbps)[0] == 50


# ------------------------------------------------------------------ accumulation and compile


def test_gradient_accumulation_repeats_the_passes_not_the_optimizer() -> None:
    p = profile_for_gpu(tiny_decoder(), batch_size=2, precision=Precision.AMP_BF16, optimizer="adamw")
    gpu = load_catalog().get("A100-SXM4-80GB")
    eff, rates, eager = shipped_efficiency(), gpu_rates(gpu), Pipeline()
    one = accumulated_step(p, rates, eff, eager, 1)
    four = accumulated_step(p, rates, eff, eager, 4)
    passes = accumulated_step(replace(p, ops=tuple(g for g in p.ops if g.phase != "optimizer")), rates, eff,
                              eager, 1)
    assert four.step_s == pytest.approx(one.step_s + 3 * passes.step_s)
    step1 = gpu_step(p, gpu, eff, num_gpus=8)
    step4 = gpu_step(p, gpu, eff, num_gpus=8, grad_accum=4)
    assert step4.grad_accum == 4 and step4.compute.step_s == pytest.approx(four.step_s)
    assert step4.communication_s <= step1.communication_s  # one all-reduce, behind the last backward
    sharded1 = fsdp_step(p, gpu, eff, num_gpus=8)
    sharded4 = fsdp_step(p, gpu, eff, num_gpus=8, grad_accum=4)
    assert sharded4.compute.step_s > sharded1.compute.step_s
    assert sharded4.communication_s >= sharded1.communication_s  # FSDP gathers and reduces every micro batch


def test_compile_fuses_memory_bound_ops_only() -> None:
    p = profile_for_gpu(tiny_decoder(), batch_size=2, precision=Precision.AMP_BF16, optimizer="adamw")
    gpu = load_catalog().get("H100-SXM5-80GB")
    eager = gpu_step(p, gpu, shipped_efficiency())
    compiled = gpu_step(p, gpu, shipped_efficiency(), pipeline=Pipeline(compiled=True))
    assert compiled.compute.memory_bound_s < eager.compute.memory_bound_s
    assert compiled.compute.by_kind_s[ops.MATMUL] == pytest.approx(eager.compute.by_kind_s[ops.MATMUL])


# ------------------------------------------------------------------ catalog: achievable rates


def test_achievable_share_is_measured_or_borrowed_from_the_chip() -> None:
    catalog = load_catalog()
    a100, a100_40 = catalog.get("A100-SXM4-80GB"), catalog.get("A100-SXM4-40GB")
    assert a100.achievable_fraction == pytest.approx(271.2 / 312)
    assert a100.achievable_basis.startswith("measured")
    assert "Ampere (GA100)" in a100_40.achievable_basis
    assert 0.8 < a100_40.achievable_fraction < 0.87
    assert gpu_rates(a100).tensor_tflops["bfloat16"] == pytest.approx(271.2)


def test_a_geforce_card_borrows_the_measured_geforce_share_and_lends_it_to_no_other_side() -> None:
    """GeForce boards boost past their rated clock, data-center parts are capped below it: a consumer card
    without a measurement takes the consumer cards' mean, the others keep the mean of theirs."""
    catalog = load_catalog()
    base = catalog.all()
    fast = replace(catalog.get("RTX-3090"), name="G1", achievable_bf16_tflops=None)
    slow = replace(catalog.get("RTX-A6000"), name="W1", achievable_bf16_tflops=None)
    before = {g.name: g.achievable_fraction for g in achievable_fractions([*base, fast, slow])}
    boosted = replace(catalog.get("RTX-3090"), name="G2", achievable_bf16_tflops=1.2 * 71)
    after = {g.name: g for g in achievable_fractions([*base, fast, slow, boosted])}
    consumer = [g for g in after.values()  # G1's chip on the consumer side: the RTX 3090 and G2
                if g.segment == "consumer" and g.achievable_bf16_tflops and g.architecture == fast.architecture]
    assert len(consumer) == 2 and after["G1"].achievable_fraction == pytest.approx(
        sum(g.achievable_bf16_tflops / g.bf16_tflops for g in consumer) / len(consumer))  # type: ignore[operator]
    assert "consumer" in after["G1"].achievable_basis
    assert after["W1"].achievable_fraction == pytest.approx(before["W1"])  # untouched by the GeForce card
    assert "consumer" not in after["W1"].achievable_basis


def test_a_power_capped_card_keeps_its_own_share_and_lends_first_to_its_chip_at_the_same_power() -> None:
    """The 350 W H100 PCIe measures 66% of its peak, the 700 W SXM boards 80%; a GPU without BF16 tensor
    cores is measured in FP16; past its chip a card borrows from cards of a like board power."""
    catalog = load_catalog()
    pcie, v100, v100_32 = catalog.get("H100-PCIe-80GB"), catalog.get("V100-SXM2-16GB"), catalog.get("V100-SXM2-32GB")
    assert pcie.achievable_fraction == pytest.approx(495.93 / 756) and pcie.achievable_basis.startswith("measured")
    assert v100.achievable_fraction == pytest.approx(96.1 / 125) and "FP16" in v100.achievable_basis
    assert v100_32.achievable_fraction == pytest.approx(96.1 / 125) and "300 W" in v100_32.achievable_basis
    quadro = catalog.get("Quadro-RTX-8000")  # 295 W: not the 70 W T4's 65%, the only measured Turing card
    assert "W GPUs" in quadro.achievable_basis and quadro.achievable_fraction > 0.7
    sxm_like = replace(catalog.get("H100-SXM5-80GB"), name="X700", achievable_bf16_tflops=None)
    (x,) = (g for g in achievable_fractions([*catalog.all(), sxm_like]) if g.name == "X700")
    assert x.achievable_fraction == pytest.approx(794.5 / 989.2, rel=1e-3)  # the 700 W boards, not the PCIe card


# ------------------------------------------------------------------ predict, its flags and the LLM rows


def test_predict_json_carries_the_settings_and_the_global_batch() -> None:
    code, out, err = run_cli("predict", "tinyllama-1.1b", "--gpu", "A100-SXM4-80GB", "--num-gpus", "8",
                             "--batch-size", "2", "--seq-len", "256", "--precision", "amp-bf16", "--strategy",
                             "fsdp", "--activation-checkpointing", "full", "--grad-accum", "4", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["settings"] == {"strategy": "fsdp", "activation_checkpointing": "full", "grad_accum": 4,
                                "compile": False, "fp8": False}
    assert data["strategy"] == "FSDP"
    assert data["global_batch_size"] == 2 * 4 * 8
    assert data["step"]["tokens_per_s"] == pytest.approx(data["step"]["samples_per_s"] * 256)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--num-gpus", "1", "--strategy", "fsdp"], r"--strategy fsdp shards over several GPUs"),
        (["--grad-accum", "0"], r"--grad-accum must be a positive integer"),
        (["--activation-checkpointing", "some"], r"unknown activation-checkpointing 'some'"),
        (["--strategy", "zero3"], r"unknown strategy 'zero3'"),
    ],
)
def test_bad_settings_get_one_line(args: list[str], message: str) -> None:
    code, _, err = run_cli("predict", "gpt2", "--gpu", "H100-SXM5-80GB", *args)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and re.search(message, err), err


def _row(notes: str, precision: str = "AMP-BF16", batch: int | None = 2, model: str = "llama3-8b") -> PublishedRow:
    return PublishedRow(index=2, model=model, task="causal LM pre-training", gpu="H100-SXM5-80GB", num_gpus=8,
                        precision=precision, batch_per_gpu=batch, throughput=46096, unit="tokens/s", source="test",
                        notes=notes)


def test_published_llm_runs_map_to_settings_or_say_why_not() -> None:
    run = map_llm_run(_row("seq len 8192; strategy fsdp2; activation checkpointing selective (op-level); "
                           "compile no; memory 82.4 GiB (reserved)"))
    assert not isinstance(run, str)
    assert (run.workload, run.seq_len, run.strategy, run.activation_checkpointing, run.compile, run.memory_gib) == (
        "llama3-8b", 8192, "fsdp", "selective", False, 82.4)
    assert run.tokens_per_gpu_s == pytest.approx(46096 / 8)
    why = [
        map_llm_run(_row("seq len 8192; strategy fsdp2; activation checkpointing full", precision="FP16")),
        map_llm_run(_row("seq len 8192; strategy fsdp2 dp_shard=32 tp=8; activation checkpointing full")),
        map_llm_run(_row("seq len 4096; strategy fsdp; activation checkpointing selective (layer)")),
        map_llm_run(_row("seq len 4096; strategy fsdp; activation checkpointing full", batch=None)),
        map_llm_run(_row("seq len 4096; strategy fsdp; activation checkpointing full", model="gpt-j-6b")),
    ]
    assert all(isinstance(w, str) for w in why)
    assert "bf16" in str(why[0]) and "tensor" in str(why[1]) and "op-level" in str(why[2])
    assert "micro batch" in str(why[3]) and "gpt-j-6b" in str(why[4])


@pytest.mark.parametrize(("notes", "settings"), [
    ("seq len 2048; strategy fsdp; activation checkpointing full; compile no", (2048, "fsdp", "full", False)),
    ("sequence length 2048; sharding_strategy: FULL_SHARD; activation_checkpointing: true",
     (2048, "fsdp", "full", False)),
    ("seq_len=4096; sharding strategy HYBRID_SHARD; gradient checkpointing false; compile true",
     (4096, "fsdp", "none", True)),
    ("max_seq_len 8192; strategy ZeRO-3; activation checkpointing no", (8192, "fsdp", "none", False)),
    ("Seq len 1024; Strategy DDP; Activation checkpointing off; Compile yes", (1024, "ddp", "none", True)),
    ("seq len 2048; strategy NO_SHARD; activation checkpointing none", (2048, "ddp", "none", False)),
])
def test_llm_run_notes_as_other_files_spell_them(notes: str, settings: tuple[object, ...]) -> None:
    run = map_llm_run(_row(notes))
    assert not isinstance(run, str), run
    assert (run.seq_len, run.strategy, run.activation_checkpointing, run.compile) == settings


def test_llm_run_notes_that_name_no_setting_gpuwise_predicts_say_so() -> None:
    zero2 = map_llm_run(_row("seq len 2048; strategy SHARD_GRAD_OP; activation checkpointing no"))
    assert "strategy shard_grad_op: not one gpuwise predicts" in str(zero2)
    assert map_llm_run(_row("seq len 2048; strategy fsdp; activation checkpointing maybe")) == (
        "activation checkpointing not stated")


def test_the_zoo_decoders_have_their_published_parameter_counts() -> None:
    # Meta's model cards: Llama 3 8B has 8.03B parameters; Llama 2 7B 6.74B.
    from gpuwise.workloads import get_workload
    from gpuwise.workloads.params import count_parameters

    assert count_parameters(get_workload("llama3-8b")) == 8_030_261_248
    assert count_parameters(get_workload("llama2-7b")) == 6_738_415_616


def test_fsdp_mixed_precision_profile_keeps_tied_weights_tied() -> None:
    # Llama 3.2 1B ties its embedding and output weights: one parameter in two modules.
    bf16 = profile_for_gpu("llama-1b", batch_size=1, precision=Precision.AMP_BF16, optimizer="adamw", seq_len=128,
                           low_precision_params=True)
    autocast = profile_for_gpu("llama-1b", batch_size=1, precision=Precision.AMP_BF16, optimizer="adamw", seq_len=128)
    assert bf16.params_total == autocast.params_total
    assert 2 * bf16.memory.weights_bytes == autocast.memory.weights_bytes  # traced in bf16, float32 in the shards


def test_the_held_out_fit_leaves_fsdp_and_checkpointed_runs_to_the_llm_path() -> None:
    from gpuwise.predict.published import FSDP_OR_CHECKPOINTING, is_llm_run, map_row

    row = _row("seq len 8192; strategy fsdp2; activation checkpointing selective (op-level)")
    why = map_row(row)
    assert why == FSDP_OR_CHECKPOINTING and is_llm_run(row, why) and "validate --frozen" in why
    plain = map_row(_row("seq len 1024; strategy ddp; activation checkpointing none", model="gpt2"))
    assert not isinstance(plain, str) and plain.seq_len == 1024


def test_achievable_bandwidth_is_a_measured_triad_or_borrowed() -> None:
    catalog = load_catalog()
    a100, v100_sxm, mi250x = (catalog.get(n) for n in ("A100-SXM4-40GB", "V100-SXM2-16GB", "MI250X"))
    assert a100.achievable_bandwidth_fraction == pytest.approx(1377.5 / 1555)
    assert "Volta (GV100)" in v100_sxm.achievable_bandwidth_basis  # borrowed from the measured V100 PCIe
    assert "measured amd GPUs" in mi250x.achievable_bandwidth_basis  # from the MI300X: no CDNA2 measurement
    assert gpu_rates(a100).memory_gbps == pytest.approx(1377.5)
    # a vendor nobody measured borrows from every measured GPU
    other = replace(mi250x, name="X1", vendor="acme", architecture="Foo (F1)", achievable_memory_gbps=None)
    (x1,) = (g for g in achievable_fractions([*catalog.all(), other]) if g.name == "X1")
    assert "every measured GPU" in x1.achievable_bandwidth_basis


def test_a_held_out_generation_takes_its_own_kernels_published_share_not_the_others_fit(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """FlashAttention-2 reaches 73% of the A100's tensor peak and 35% of the H100's (fit.FLASH_KERNEL_SHARE):
    fitted on Ampere runs alone, Hopper's attention is its own share × the scale the Ampere runs give, not the
    Ampere value; a generation without a published share takes the pooled value."""
    from types import SimpleNamespace

    import gpuwise.predict.fit as fit
    from gpuwise.predict.roofline import Efficiency

    catalog = load_catalog()
    truth = {"Ampere": 0.73 * 0.8, "Hopper": 0.35 * 0.8, "Blackwell": 0.5}

    def loss(members: list[SimpleNamespace], eff: Efficiency, profiles: object) -> float:
        gens = [catalog.get(m.row.gpu).generation for m in members]
        return sum(math.log(eff.flash_attention.get(g, eff.attention) / truth[g]) ** 2 for g in gens)

    monkeypatch.setattr(fit, "_llm_loss", loss)
    runs = [SimpleNamespace(row=SimpleNamespace(gpu=gpu)) for gpu in
            ["A100-SXM4-80GB"] * 4 + ["H100-SXM5-80GB"] * 4 + ["B200"] * 2]
    held = fit.fit_attention(runs, Efficiency(), catalog, None, exclude="Hopper")  # type: ignore[arg-type]
    assert held.flash_attention["Hopper"] == pytest.approx(0.35 * 0.8, rel=0.05)
    assert held.flash_attention["Ampere"] == pytest.approx(0.73 * 0.8, rel=0.05)
    assert held.flash_attention["Blackwell"] == pytest.approx(0.5, rel=0.1)
    no_share = fit.fit_attention(runs, Efficiency(), catalog, None, exclude="Blackwell")  # type: ignore[arg-type]
    assert "Blackwell" not in no_share.flash_attention  # no published share: it takes the pooled value
    assert no_share.attention == pytest.approx(math.sqrt(0.73 * 0.8 * 0.35 * 0.8), rel=0.05)
