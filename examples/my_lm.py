"""A factory that takes the shape flags, and names its optimizer.

    gpuwise profile examples/my_lm.py:build --seq-len 512 --batch-size 8
    gpuwise plan examples/my_lm.py:build --dataset-size 1e9 --unit token --epochs 1

Because ``build`` takes ``seq_len`` (with a default), ``--seq-len`` applies to it; ``image_size``
works the same way. ``optimizer="sgd-momentum"`` is what profile, plan and train use unless
``--optimizer`` says otherwise.
"""

import torch
import torch.nn.functional as F
from torch import nn

import gpuwise

VOCAB = 32000


class TinyLM(nn.Module):
    """A 4-layer transformer language model with learned positions (its table is seq_len long)."""

    def __init__(self, seq_len: int, width: int = 512) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, width)
        self.positions = nn.Parameter(torch.zeros(seq_len, width))
        layer = nn.TransformerEncoderLayer(width, nhead=8, dim_feedforward=4 * width, batch_first=True)
        self.blocks = nn.TransformerEncoder(layer, num_layers=4)
        self.head = nn.Linear(width, VOCAB)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens) + self.positions[: tokens.shape[1]]
        mask = nn.Transformer.generate_square_subsequent_mask(tokens.shape[1])
        return self.head(self.blocks(x, mask=mask, is_causal=True))


def build(seq_len: int = 256) -> gpuwise.UserWorkload:
    def make_batch(n: int) -> torch.Tensor:
        return torch.randint(0, VOCAB, (n, seq_len + 1))  # one more token: the targets are shifted by one

    def loss(model: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
        logits = model(tokens[:, :-1])
        return F.cross_entropy(logits.flatten(0, 1), tokens[:, 1:].flatten())

    return gpuwise.UserWorkload(model=TinyLM(seq_len), make_batch=make_batch, loss=loss, sample_unit="token",
                                default_batch_size=16, tokens_per_sample=seq_len, optimizer="sgd-momentum")
