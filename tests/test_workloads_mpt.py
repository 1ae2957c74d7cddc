"""MosaicML's MPT decoders as llm-foundry pre-trains them (``gpuwise.workloads.mpt``)."""

from __future__ import annotations

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

from gpuwise import profile
from gpuwise.config import Precision
from gpuwise.predict.published import PublishedRow, map_llm_run
from gpuwise.profile import ops
from gpuwise.workloads import get_workload
from gpuwise.workloads.mpt import MPT_CONFIGS, VOCAB_SIZE, LowPrecisionLayerNorm, Mpt, MptConfig
from gpuwise.workloads.params import count_parameters

SMALL = MptConfig(d_model=64, n_heads=4, n_layers=2, micro_batch=2, global_batch=4, checkpointing=False)


def _mpt_params(d: int, layers: int, seq_len: int) -> int:
    """Token and position embeddings (the head is the token embedding, tied); per block two LayerNorms (weight and
    bias), fused QKV, output projection, a 4x MLP, every linear layer with its bias; a final LayerNorm."""
    block = 2 * 2 * d + (d * 3 * d + 3 * d) + (d * d + d) + (d * 4 * d + 4 * d) + (4 * d * d + d)
    return VOCAB_SIZE * d + seq_len * d + layers * block + 2 * d


@pytest.mark.parametrize(("name", "d", "layers"), [("mpt-125m", 768, 12), ("mpt-1b", 2048, 24), ("mpt-7b", 4096, 32)])
def test_parameter_count(name: str, d: int, layers: int) -> None:
    assert count_parameters(get_workload(name)) == _mpt_params(d, layers, 2048)


def test_the_nine_configs_are_registered_with_their_batches() -> None:
    for name, c in MPT_CONFIGS.items():
        w = get_workload(name)
        assert w.sample_unit == "token" and w.default_shape.seq_len == 2048
        assert w.default_batch_size == c.micro_batch
        assert w.recipe_batch is not None and w.recipe_batch.tokens == c.global_batch * 2048
        assert c.d_model % c.n_heads == 0
    assert get_workload("MPT-7B").name == "mpt-7b"


def test_positions_follow_the_sequence_length() -> None:
    """The configs set max_seq_len to the run's: the position table grows with it, nothing is refused."""
    w = get_workload("mpt-125m")
    with FakeTensorMode():
        model = w.build_model(w.resolve_shape(seq_len=8192))
    assert sum(p.numel() for p in model.parameters()) - count_parameters(w) == (8192 - 2048) * 768


def test_low_precision_layer_norm_stays_in_autocast_dtype() -> None:
    norm = LowPrecisionLayerNorm(16)
    x = torch.randn(2, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert norm(x).dtype == torch.bfloat16
    assert norm(x).dtype == torch.float32  # no autocast: the plain float32 layer norm
    torch.testing.assert_close(norm(x.bfloat16().float()), torch.nn.functional.layer_norm(x.bfloat16().float(), (16,)))


def test_the_gpu_profile_runs_layer_norm_in_bf16_where_cudas_autocast_would_not() -> None:
    p = profile(get_workload("mpt-125m"), batch_size=1, seq_len=64, precision=Precision.AMP_BF16, gpu_kernels=True)
    norms = [g for g in p.ops if g.kind == ops.NORM]
    assert norms and {g.dtype for g in norms} == {"bfloat16"}
    attention = [g for g in p.ops if g.kind == ops.ATTENTION]
    assert attention and all(g.dtype == "bfloat16" for g in attention)  # the fused flash kernel


def test_the_output_head_is_the_token_embedding() -> None:
    model = Mpt(SMALL, seq_len=8)
    tokens = torch.randint(0, VOCAB_SIZE, (2, 8))
    logits = model(tokens)
    assert logits.shape == (2, 8, VOCAB_SIZE)
    assert not any(p.shape == (VOCAB_SIZE, 64) for n, p in model.named_parameters() if n != "wte.weight")
    logits.sum().backward()
    assert model.wte.weight.grad is not None and model.wpe.weight.grad is not None


def test_a_published_mpt_run_maps_like_a_llama_run() -> None:
    row = PublishedRow(
        index=2, model="mpt-7b", task="causal LM pre-training", gpu="A100-SXM4-80GB", num_gpus=8,
        precision="AMP-BF16", batch_per_gpu=8, throughput=1.0, unit="tokens/s",
        source="a test row, no measurement",
        notes="seq len 2048; strategy fsdp; activation checkpointing full; compile no",
    )
    run = map_llm_run(row)
    assert not isinstance(run, str), run
    assert (run.workload, run.seq_len, run.strategy, run.activation_checkpointing) == ("mpt-7b", 2048, "fsdp", "full")
