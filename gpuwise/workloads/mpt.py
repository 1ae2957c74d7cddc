"""MosaicML's MPT decoders as llm-foundry pre-trains them, in plain PyTorch.

llm-foundry's pre-training configs (``scripts/train/yamls/pretrain/mpt-*.yaml``) name nine sizes, 125M to 70B;
what the configs leave out takes ``MPTConfig``'s defaults (``llmfoundry/models/mpt/configuration_mpt.py`` and the
attention defaults in ``llmfoundry/models/layers/blocks.py``): learned position embeddings over the run's
``max_seq_len`` (no ALiBi, no rotary), biases in every layer (``no_bias`` False), one fused QKV projection of
multi-head attention run by a flash kernel (``attn_impl`` flash or triton), a 4x GELU MLP, pre-norm blocks
with ``low_precision_layernorm``, and the output head tied to the token embedding. Dropout is 0.

``low_precision_layernorm`` (llm-foundry's ``LPLayerNorm``) runs layer norm in autocast's 16-bit dtype with
autocast off, where CUDA's autocast would run ``nn.LayerNorm`` in float32: its input, weight and bias are cast
down and its output stays 16-bit. The sequence length sizes the position table (the configs set ``max_seq_len``
to the run's), so any length is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from gpuwise.workloads.decoder import register_causal_lm
from gpuwise.workloads.registry import RecipeBatch

VOCAB_SIZE = 50368  # every config's (GPT-NeoX-20B's tokenizer, 50277 tokens, padded to a multiple of 64)
EXPANSION_RATIO = 4
CONFIGS_SEQ_LEN = 2048  # every config's max_seq_len


@dataclass(frozen=True)
class MptConfig:
    d_model: int
    n_heads: int
    n_layers: int
    micro_batch: int  # the config's device_train_microbatch_size
    global_batch: int  # its global_train_batch_size, in sequences of CONFIGS_SEQ_LEN tokens
    checkpointing: bool  # its fsdp_config activation_checkpointing


class LowPrecisionLayerNorm(nn.LayerNorm):
    """llm-foundry's ``LPLayerNorm``: under autocast, layer norm in autocast's dtype (input, weight and bias cast
    down, autocast off for the kernel), not in float32 as CUDA's autocast runs ``nn.LayerNorm``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        device = x.device.type
        if not torch.is_autocast_enabled(device):
            return super().forward(x)
        dtype = torch.get_autocast_dtype(device)
        with torch.autocast(device, enabled=False):
            return F.layer_norm(x.to(dtype), self.normalized_shape, self.weight.to(dtype), self.bias.to(dtype),
                                self.eps)


class Attention(nn.Module):
    """Multi-head attention with one fused QKV projection, causal, through a fused (flash) kernel."""

    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.Wqkv = nn.Linear(d_model, 3 * d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, d = x.shape
        q, k, v = (t.view(b, s, self.n_heads, d // self.n_heads).transpose(1, 2)
                   for t in self.Wqkv(x).chunk(3, dim=2))
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.out_proj(out.transpose(1, 2).reshape(b, s, d))


class Mlp(nn.Module):
    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.up_proj = nn.Linear(d_model, EXPANSION_RATIO * d_model)
        self.down_proj = nn.Linear(EXPANSION_RATIO * d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.gelu(self.up_proj(x)))  # nn.GELU(approximate='none'), MPTMLP's default


class Block(nn.Module):
    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.norm_1 = LowPrecisionLayerNorm(d_model)
        self.attn = Attention(d_model, n_heads)
        self.norm_2 = LowPrecisionLayerNorm(d_model)
        self.ffn = Mlp(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm_1(x))
        return x + self.ffn(self.norm_2(x))


class Mpt(nn.Module):
    def __init__(self, c: MptConfig, seq_len: int) -> None:
        super().__init__()
        self.wte = nn.Embedding(VOCAB_SIZE, c.d_model)
        # llm-foundry's kaiming_normal_ (fan_in, linear) init: the tied head's logits start near unit variance,
        # where nn.Embedding's N(0, 1) would start them at d_model (a first loss in the hundreds).
        nn.init.normal_(self.wte.weight, std=c.d_model**-0.5)
        self.wpe = nn.Embedding(seq_len, c.d_model)
        self.blocks = nn.ModuleList(Block(c.d_model, c.n_heads) for _ in range(c.n_layers))
        self.norm_f = LowPrecisionLayerNorm(c.d_model)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        h = self.wte(tokens) + self.wpe(positions)[None]
        for block in self.blocks:
            h = block(h)
        return F.linear(self.norm_f(h), self.wte.weight)  # tied: the token embedding is the output head


_SOURCE = ("https://github.com/mosaicml/llm-foundry/blob/main/scripts/train/yamls/pretrain/{name}.yaml (d_model {d}, "
           "n_heads {h}, n_layers {n}, expansion_ratio 4, vocab_size 50368, max_seq_len 2048, "
           "device_train_microbatch_size {mb}, global_train_batch_size {gb}, activation_checkpointing {ac}) and "
           "MPTConfig's defaults (llmfoundry/models/mpt/configuration_mpt.py, llmfoundry/models/layers/blocks.py) "
           "(read 2026-12-07)")
# name: d_model, heads, layers, micro batch, global batch (sequences), activation checkpointing (the configs')
MPT_CONFIGS: dict[str, MptConfig] = {
    "mpt-125m": MptConfig(768, 12, 12, 16, 256, False),
    "mpt-350m": MptConfig(1024, 16, 24, 8, 256, False),
    "mpt-760m": MptConfig(1536, 12, 24, 4, 256, False),
    "mpt-1b": MptConfig(2048, 16, 24, 4, 512, False),
    "mpt-3b": MptConfig(2560, 20, 32, 8, 512, True),
    "mpt-7b": MptConfig(4096, 32, 32, 8, 1024, True),
    "mpt-13b": MptConfig(5120, 40, 40, 8, 1024, True),
    "mpt-30b": MptConfig(7168, 56, 48, 8, 2048, True),
    "mpt-70b": MptConfig(8192, 64, 80, 4, 2048, True),
}


for _name, _c in MPT_CONFIGS.items():
    _reference = _SOURCE.format(name=_name, d=_c.d_model, h=_c.n_heads, n=_c.n_layers, mb=_c.micro_batch,
                                gb=_c.global_batch, ac=str(_c.checkpointing).lower())
    register_causal_lm(
        _name, partial(Mpt, _c), VOCAB_SIZE, batch=_c.micro_batch, seq_len=CONFIGS_SEQ_LEN,
        summary=f"MPT {_name.removeprefix('mpt-').upper()} decoder as llm-foundry pre-trains it, causal LM",
        reference=_reference,
        recipe_batch=RecipeBatch(tokens=_c.global_batch * CONFIGS_SEQ_LEN, recipe=f"llm-foundry's {_name}",
                                 source=_reference),
    )
