"""The language family: GPT-2, BERT (pre-training, SQuAD) and Llama, built with transformers."""

from __future__ import annotations

import math
import subprocess
import sys
from typing import Any

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode
from torch.utils._python_dispatch import TorchDispatchMode

from gpuwise.errors import GpuwiseError
from gpuwise.workloads import get_workload, list_workloads
from gpuwise.workloads.mpt import MPT_CONFIGS
from gpuwise.workloads.params import count_parameters

NAMES = (
    "gpt2", "bert-base", "bert-large", "bert-base-squad", "bert-large-squad", "llama-1b", "llama-7b", "llama-70b",
)
CAUSAL_LMS = ("gpt2", "llama-1b", "llama-7b", "llama-70b")
SMALL_SEQ = 32
AUTOCAST = (None, torch.bfloat16, torch.float16)


# --- parameter counts, from the config numbers --------------------------------------------


def _gpt2_params(vocab: int, positions: int, d: int, layers: int) -> int:
    """GPT-2: token + position embeddings, per block 2 LayerNorms, fused QKV, out proj, 4x MLP
    (all with biases), a final LayerNorm; the LM head is the token embedding (tied)."""
    block = 2 * (2 * d) + (d * 3 * d + 3 * d) + (d * d + d) + (d * 4 * d + 4 * d) + (4 * d * d + d)
    return vocab * d + positions * d + layers * block + 2 * d


def _bert_encoder_params(vocab: int, d: int, layers: int, ffn: int) -> int:
    """Embeddings (word, 512 positions, 2 token types, LayerNorm) and the encoder layers."""
    embeddings = (vocab + 512 + 2) * d + 2 * d
    layer = 4 * (d * d + d) + 2 * d + (d * ffn + ffn) + (ffn * d + d) + 2 * d
    return embeddings + layers * layer


def _bert_pretraining_params(vocab: int, d: int, layers: int, ffn: int) -> int:
    """Encoder + pooler + MLM transform (dense, LayerNorm) + decoder bias (its weight is the
    word embedding) + next-sentence classifier."""
    heads = (d * d + d) + 2 * d + vocab + (2 * d + 2)
    return _bert_encoder_params(vocab, d, layers, ffn) + (d * d + d) + heads


def _llama_params(
    vocab: int, d: int, ffn: int, layers: int, heads: int, kv_heads: int, head_dim: int, tied: bool
) -> int:
    """Embedding (+ untied LM head), per layer q/k/v/o (no biases), gate/up/down, 2 RMSNorms; final RMSNorm."""
    attention = d * heads * head_dim + 2 * d * kv_heads * head_dim + heads * head_dim * d
    layer = attention + 3 * d * ffn + 2 * d
    return vocab * d * (1 if tied else 2) + layers * layer + d


EXPECTED_PARAMS = {
    "gpt2": (_gpt2_params(50257, 1024, 768, 12), 124_439_808),
    "bert-base": (_bert_pretraining_params(30528, 768, 12, 3072), 110_111_042),
    "bert-large": (_bert_pretraining_params(30528, 1024, 24, 4096), 336_232_258),
    # no pooler (add_pooling_layer=False); the span head is Linear(d, 2)
    # bert-base-uncased's 109,482,240 (BertModel, vocab 30522) - pooler 590,592 + 6 padded rows x 768 + span head 1,538
    "bert-base-squad": (_bert_encoder_params(30528, 768, 12, 3072) + 2 * 768 + 2, 108_897_794),
    "bert-large-squad": (_bert_encoder_params(30528, 1024, 24, 4096) + 2 * 1024 + 2, 334_100_482),
    "llama-1b": (_llama_params(128256, 2048, 8192, 16, 32, 8, 64, tied=True), 1_235_814_400),
    "llama-7b": (_llama_params(32000, 4096, 11008, 32, 32, 32, 128, tied=False), 6_738_415_616),
    "llama-70b": (_llama_params(32000, 8192, 28672, 80, 64, 8, 128, tied=False), 68_976_648_192),
}


@pytest.mark.parametrize("name", NAMES)
def test_parameter_count(name: str) -> None:
    formula, published = EXPECTED_PARAMS[name]
    assert formula == published  # the arithmetic above reproduces the published/known count
    assert count_parameters(get_workload(name)) == published


# --- registration -------------------------------------------------------------------------


def test_registered_metadata() -> None:
    language = [w.name for w in list_workloads() if w.family == "language (transformer)"]
    # Hugging Face's models (this module), then torchtitan's plain-PyTorch decoders (gpuwise.workloads.decoder)
    decoders = ("llama3-8b", "llama3-70b", "llama2-13b", "llama2-70b", "llama2-7b", "tinyllama-1.1b", "llama2-34b")
    mpt = tuple(MPT_CONFIGS)  # llm-foundry's MPT (gpuwise.workloads.mpt, tests/test_workloads_mpt.py)
    assert sorted(language) == sorted(NAMES + decoders + mpt)
    defaults = {n: get_workload(n).default_shape.seq_len for n in NAMES}
    assert defaults == {
        "gpt2": 1024,
        "bert-base": 128,
        "bert-large": 128,
        "bert-base-squad": 384,
        "bert-large-squad": 384,
        "llama-1b": 4096,
        "llama-7b": 4096,
        "llama-70b": 4096,
    }
    for name in NAMES:
        w = get_workload(name)
        assert w.sample_unit == ("token" if name in CAUSAL_LMS else "sequence")
        assert w.options == ("seq_len",)
        assert w.tokens_per_sample is not None and w.tokens_per_sample(w.resolve_shape(seq_len=77)) == 77
        assert w.reference and w.default_batch_size >= 1


def test_importing_the_family_does_not_import_transformers() -> None:
    code = "import sys, gpuwise.workloads.language; sys.exit('transformers' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# --- shape errors -------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_image_size_does_not_apply(name: str) -> None:
    with pytest.raises(GpuwiseError, match=r"--image-size does not apply .*--seq-len"):
        get_workload(name).resolve_shape(image_size=224)


@pytest.mark.parametrize(("name", "limit"), [("gpt2", 1024), ("bert-base", 512), ("bert-large-squad", 512)])
def test_seq_len_past_learned_positions(name: str, limit: int) -> None:
    w = get_workload(name)
    shape = w.resolve_shape(seq_len=limit + 1)
    with pytest.raises(GpuwiseError, match=rf"--seq-len {limit + 1} is too long .*--seq-len {limit} or less"):
        w.make_batch(1, shape)
    with FakeTensorMode(), pytest.raises(GpuwiseError, match="too long"):
        w.build_model(shape)


def test_rotary_llama_takes_any_length() -> None:
    w = get_workload("llama-7b")
    with FakeTensorMode():
        batch = w.make_batch(1, w.resolve_shape(seq_len=16384))
    assert batch["input_ids"].shape == (1, 16384)


# --- the step under FakeTensorMode ----------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_fake_training_step(name: str) -> None:
    """Full-size model, small sequence: fp32 then CPU autocast bf16 and fp16, fwd + bwd."""
    # The fake step's cost is its op count, not its size: 70B's 80 layers take seconds per
    # pass, and its code path is 1B's (grouped KV heads), which runs all three.
    precisions = AUTOCAST[:2] if name == "llama-70b" else AUTOCAST
    w = get_workload(name)
    shape = w.resolve_shape(seq_len=SMALL_SEQ)
    with FakeTensorMode():
        model = w.build_model(shape)
        assert model.training
        params = list(model.parameters())
        assert all(isinstance(p, FakeTensor) and p.device.type == "cpu" for p in params)
        batch = w.make_batch(2, shape)
        assert batch["input_ids"].shape == (2, SMALL_SEQ)
        for dtype in precisions:
            model.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
                loss = w.forward_loss(model, batch)
            assert loss.shape == () and loss.dtype == torch.float32
            loss.backward()
            # every parameter takes part in the step (BERT-SQuAD has no pooler to leave out)
            assert all(p.grad is not None and p.grad.shape == p.shape for p in params)


class _Recorder(TorchDispatchMode):
    """Every aten op with its args and the shapes of its tensor outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any], list[tuple[int, ...]]]] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        outs = out if isinstance(out, (tuple, list)) else (out,)
        shapes = [tuple(t.shape) for t in outs if isinstance(t, torch.Tensor)]
        self.calls.append((str(func), args, kwargs or {}, shapes))
        return out


@pytest.mark.parametrize("name", ["gpt2", "llama-1b"])
def test_causal_attention_is_unmasked_under_fake_tensors(name: str) -> None:
    """No (batch, 1, seq, seq) mask is built: SDPA gets is_causal=True, as on real tensors."""
    from transformers import masking_utils

    original = masking_utils.find_packed_sequence_indices
    w = get_workload(name)
    shape = w.resolve_shape(seq_len=SMALL_SEQ)
    with FakeTensorMode():
        model = w.build_model(shape)
        batch = w.make_batch(2, shape)
        with _Recorder() as recorder:
            w.forward_loss(model, batch).backward()
    assert masking_utils.find_packed_sequence_indices is original  # the patch is undone
    assert not [c for c in recorder.calls if (2, 1, SMALL_SEQ, SMALL_SEQ) in c[3]]
    if name == "llama-1b":  # no dropout, so the CPU runs the fused kernel
        flash = [c for c in recorder.calls if c[0] == "aten._scaled_dot_product_flash_attention_for_cpu.default"]
        assert len(flash) == 16  # one per layer
        for _, args, kwargs, _ in flash:
            assert args[4] is True and kwargs.get("attn_mask") is None  # is_causal, no mask
            assert args[1].shape[1] == 8 and args[0].shape[1] == 32  # grouped KV heads, no repeat_kv copy


# --- the same step on real tensors (what bench runs) --------------------------------------

_FAKE_THEN_REAL = """
from gpuwise.workloads import get_workload
from gpuwise.workloads.params import count_parameters
w = get_workload("gpt2")
count_parameters(w)  # a fake build, as profile does, before transformers was ever imported
model = w.build_model(w.resolve_shape(seq_len=8))
std = model.transformer.wte.weight.std().item()
assert abs(std - 0.02) < 0.002, f"token embedding std {std}, not GPT-2's initializer_range 0.02"
"""


def test_real_weights_after_a_fake_build() -> None:
    result = subprocess.run([sys.executable, "-c", _FAKE_THEN_REAL], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.slow
def test_real_training_step_gpt2() -> None:
    torch.manual_seed(0)
    w = get_workload("gpt2")
    shape = w.resolve_shape(seq_len=SMALL_SEQ)
    model = w.build_model(shape)
    loss = w.forward_loss(model, w.make_batch(1, shape))
    loss.backward()
    # an untrained LM guesses about uniformly: cross entropy near ln(vocab)
    assert abs(loss.item() - math.log(50257)) < 0.5
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_bert_pretraining_runs_its_masked_lm_head_on_the_predicted_positions_only() -> None:
    """The loss is BertForPreTraining's own, but its vocabulary-wide head runs on the 15% of positions that
    are predicted, as NVIDIA's recipe runs it (``sequence_output_is_dense``): the profile's decoder product
    is (batch × masked_count) × hidden × vocab, not (batch × seq_len) × hidden × vocab."""
    import transformers

    from gpuwise.profile import profile
    from gpuwise.workloads import Shape
    from gpuwise.workloads.language import BERT_VOCAB_PADDED, masked_count, masked_lm_loss

    cfg = transformers.BertConfig(vocab_size=BERT_VOCAB_PADDED, hidden_size=32, num_hidden_layers=1,
                                  num_attention_heads=2, intermediate_size=64, attn_implementation="sdpa")
    torch.manual_seed(0)
    model = transformers.BertForPreTraining(cfg).eval()
    batch = get_workload("bert-base").make_batch(3, Shape(seq_len=40))
    with torch.no_grad():
        assert masked_lm_loss(model, batch) == pytest.approx(float(model(**batch).loss), rel=1e-6)

    p = profile("bert-base", batch_size=4, seq_len=128)
    decoder = 2 * 768 * BERT_VOCAB_PADDED  # FLOPs of one position's logits
    forward = [g for g in p.ops if g.phase == "forward" and g.kind == "matmul" and g.flops % decoder == 0]
    assert [g.flops // decoder for g in forward] == [4 * masked_count(128)]  # 4 sequences × 19 positions
