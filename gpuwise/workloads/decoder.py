"""Llama-style decoders written in plain PyTorch, as torchtitan writes them.

The LLM runs people publish (torchtitan, FSDP on PyTorch) train this model, not Hugging Face's:
``nn.RMSNorm`` (one fused kernel on CUDA), ``F.scaled_dot_product_attention(..., is_causal=True)``
(flash attention), a SwiGLU feed-forward, grouped-query attention by repeating the K/V heads. The
layers are an ``nn.ModuleList``, the blocks that FSDP shards and activation checkpointing recomputes.
Modelled on ``torchtitan/models/llama3/model/model.py`` (real-valued rotary embedding instead of its
complex one: the same shapes and traffic, and fake tensors need no complex kernels).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gpuwise.workloads import recipes
from gpuwise.workloads.registry import RecipeBatch, Shape, Workload, register

FAMILY = "language (transformer)"


@dataclass(frozen=True)
class DecoderConfig:
    dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    ffn_dim: int
    vocab_size: int
    norm_eps: float = 1e-5
    rope_theta: float = 500000.0

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class Attention(nn.Module):
    def __init__(self, c: DecoderConfig) -> None:
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = c.n_heads, c.n_kv_heads, c.head_dim
        self.wq = nn.Linear(c.dim, c.n_heads * c.head_dim, bias=False)
        self.wk = nn.Linear(c.dim, c.n_kv_heads * c.head_dim, bias=False)
        self.wv = nn.Linear(c.dim, c.n_kv_heads * c.head_dim, bias=False)
        self.wo = nn.Linear(c.n_heads * c.head_dim, c.dim, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        b, s, _ = x.shape
        q = self.wq(x).view(b, s, self.n_heads, self.head_dim)
        k = self.wk(x).view(b, s, self.n_kv_heads, self.head_dim)
        v = self.wv(x).view(b, s, self.n_kv_heads, self.head_dim)
        q = q * cos + _rotate_half(q) * sin
        k = k * cos + _rotate_half(k) * sin
        repeats = self.n_heads // self.n_kv_heads
        if repeats > 1:  # torchtitan's repeat_kv: expand, then one copy
            k = k[:, :, :, None, :].expand(b, s, self.n_kv_heads, repeats, self.head_dim).reshape(b, s, -1,
                                                                                               self.head_dim)
            v = v[:, :, :, None, :].expand(b, s, self.n_kv_heads, repeats, self.head_dim).reshape(b, s, -1,
                                                                                               self.head_dim)
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True)
        return self.wo(out.transpose(1, 2).reshape(b, s, -1))


class FeedForward(nn.Module):
    def __init__(self, c: DecoderConfig) -> None:
        super().__init__()
        self.w1 = nn.Linear(c.dim, c.ffn_dim, bias=False)
        self.w2 = nn.Linear(c.ffn_dim, c.dim, bias=False)
        self.w3 = nn.Linear(c.dim, c.ffn_dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Block(nn.Module):
    def __init__(self, c: DecoderConfig) -> None:
        super().__init__()
        self.attention_norm = nn.RMSNorm(c.dim, eps=c.norm_eps)
        self.attention = Attention(c)
        self.ffn_norm = nn.RMSNorm(c.dim, eps=c.norm_eps)
        self.feed_forward = FeedForward(c)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        h = x + self.attention(self.attention_norm(x), cos, sin)
        return h + self.feed_forward(self.ffn_norm(h))


class Decoder(nn.Module):
    def __init__(self, c: DecoderConfig, seq_len: int) -> None:
        super().__init__()
        self.tok_embeddings = nn.Embedding(c.vocab_size, c.dim)
        self.layers = nn.ModuleList(Block(c) for _ in range(c.n_layers))
        self.norm = nn.RMSNorm(c.dim, eps=c.norm_eps)
        self.output = nn.Linear(c.dim, c.vocab_size, bias=False)
        inv_freq = 1.0 / (c.rope_theta ** (torch.arange(0, c.head_dim, 2, dtype=torch.float32) / c.head_dim))
        angles = torch.outer(torch.arange(seq_len, dtype=torch.float32), inv_freq)
        angles = torch.cat((angles, angles), dim=-1)[None, :, None, :]  # (1, seq, 1, head_dim)
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        s = tokens.shape[1]
        h = self.tok_embeddings(tokens)
        cos: torch.Tensor = self.get_buffer("cos")[:, :s].to(h.dtype)
        sin: torch.Tensor = self.get_buffer("sin")[:, :s].to(h.dtype)
        for layer in self.layers:
            h = layer(h, cos, sin)
        return self.output(self.norm(h))


def _loss(model: nn.Module, batch: Any) -> torch.Tensor:
    """Next-token cross entropy in float32, as torchtitan's ``cross_entropy_loss``."""
    logits = model(batch["tokens"])
    return F.cross_entropy(logits.flatten(0, 1).float(), batch["labels"].flatten())


def register_causal_lm(name: str, build_for: Callable[[int], nn.Module], vocab_size: int, *, batch: int, seq_len: int,
                       summary: str, reference: str, recipe_batch: RecipeBatch) -> None:
    """Register a causal LM in plain PyTorch: ``build_for(seq_len)`` makes the model, trained on next-token cross
    entropy over random tokens (torchtitan's decoders here, llm-foundry's MPT in ``gpuwise.workloads.mpt``)."""
    def build(shape: Shape) -> nn.Module:
        assert shape.seq_len is not None
        return build_for(shape.seq_len)

    def make_batch(batch_size: int, shape: Shape) -> dict[str, torch.Tensor]:
        assert shape.seq_len is not None
        tokens = torch.randint(0, vocab_size, (batch_size, shape.seq_len + 1))
        return {"tokens": tokens[:, :-1], "labels": tokens[:, 1:]}

    def tokens_per_sample(shape: Shape) -> int:
        assert shape.seq_len is not None
        return shape.seq_len

    register(Workload(
        name=name, family=FAMILY, sample_unit="token", default_batch_size=batch, summary=summary,
        build_model=build, make_batch=make_batch, forward_loss=_loss, default_shape=Shape(seq_len=seq_len),
        tokens_per_sample=tokens_per_sample, reference=reference, data_layout="tokens", recipe_batch=recipe_batch,
    ))


_TORCHTITAN = "model as torchtitan/models/llama3/model/model.py (plain PyTorch, nn.RMSNorm, causal SDPA)"


def _llama2(dim: int, n_layers: int, n_heads: int, n_kv_heads: int, ffn_dim: int) -> DecoderConfig:
    return DecoderConfig(dim, n_layers, n_heads, n_kv_heads, ffn_dim, vocab_size=32000, rope_theta=1e4)


def _llama3(dim: int, n_layers: int, n_heads: int, n_kv_heads: int, ffn_dim: int) -> DecoderConfig:
    return DecoderConfig(dim, n_layers, n_heads, n_kv_heads, ffn_dim, vocab_size=128256, rope_theta=500000.0)


# name: (config, default batch, default sequence length, what it is, its config's source)
_DECODERS: dict[str, tuple[DecoderConfig, int, int, str, str]] = {
    "llama3-8b": (_llama3(4096, 32, 32, 8, 14336), 1, 8192,
                  "Llama 3 8B", "meta-llama/Meta-Llama-3-8B config.json (32 layers, 4096 wide, 32 heads, 8 KV heads, "
                  "FFN 14336, vocab 128256)"),
    "llama3-70b": (_llama3(8192, 80, 64, 8, 28672), 1, 8192,
                   "Llama 3 70B", "meta-llama/Meta-Llama-3-70B config.json (80 layers, 8192 wide, 64 heads, "
                   "8 KV heads, FFN 28672, vocab 128256)"),
    "llama2-7b": (_llama2(4096, 32, 32, 32, 11008), 1, 4096,
                  "Llama 2 7B", "meta-llama/Llama-2-7b-hf config.json (32 layers, 4096 wide, 32 heads, FFN 11008, "
                  "vocab 32000)"),
    "llama2-13b": (_llama2(5120, 40, 40, 40, 13824), 1, 4096,
                   "Llama 2 13B", "meta-llama/Llama-2-13b-hf config.json (40 layers, 5120 wide, 40 heads, FFN 13824, "
                   "vocab 32000)"),
    "llama2-34b": (DecoderConfig(dim=8192, n_layers=48, n_heads=64, n_kv_heads=8, ffn_dim=22016, vocab_size=32000,
                                 rope_theta=1e6), 1, 4096,
                   "Llama 2 34B-shaped (Code Llama 34B's shapes)", "codellama/CodeLlama-34b-hf config.json (48 layers, "
                   "8192 wide, 64 heads, 8 KV heads, FFN 22016, vocab 32000; the 34B foundation-model-stack/fms-fsdp "
                   "trains)"),
    "llama2-70b": (_llama2(8192, 80, 64, 8, 28672), 1, 4096,
                   "Llama 2 70B", "meta-llama/Llama-2-70b-hf config.json (80 layers, 8192 wide, 64 heads, 8 KV heads, "
                   "FFN 28672, vocab 32000)"),
    "tinyllama-1.1b": (_llama2(2048, 22, 32, 4, 5632), 8, 2048,
                       "TinyLlama 1.1B", "Zhang et al. 2024, arXiv:2401.02385; TinyLlama/TinyLlama-1.1B-intermediate-"
                       "step-1431k-3T config.json (22 layers, 2048 wide, 32 heads, 4 KV heads, FFN 5632, vocab 32000)"),
}
# The global batch each trains with by default in plan (gpuwise.workloads.recipes: each with its source).
_RECIPES: dict[str, RecipeBatch] = {
    "llama3-8b": recipes.LLAMA_3_AT_8K, "llama3-70b": recipes.LLAMA_3_AT_8K, "llama2-7b": recipes.LLAMA_2,
    "llama2-13b": recipes.LLAMA_2, "llama2-34b": recipes.LLAMA_2, "llama2-70b": recipes.LLAMA_2,
    "tinyllama-1.1b": recipes.TINYLLAMA,
}
for _name, (_config, _batch, _seq, _what, _source) in _DECODERS.items():
    register_causal_lm(_name, partial(Decoder, _config), _config.vocab_size, batch=_batch, seq_len=_seq,
                       summary=f"{_what} decoder in plain PyTorch (torchtitan's), causal LM",
                       reference=f"{_source}; {_TORCHTITAN}", recipe_batch=_RECIPES[_name])
