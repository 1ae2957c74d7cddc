"""Recurrent sequence models: DeepSpeech2 (speech-to-text, CTC) and GNMT v2 (translation).

Both are written here as plain ``torch.nn`` modules, after the implementations the
published numbers come from, and both run a full training step under
``FakeTensorMode`` (nothing allocated):

- every sequence is full length (no ``pack_padded_sequence``, whose lengths are read
  from the data); lengths the loss needs are Python ints or ``torch.full`` tensors;
- the CTC loss goes through the ``gpuwise::ctc_loss`` custom op below, because
  ``aten::_ctc_loss`` (both the int-list and the tensor-lengths overload) is tagged
  ``dynamic_output_shape`` and FakeTensorMode refuses it with
  ``DynamicOutputShapeException``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gpuwise.workloads.registry import Shape, Workload, register

# ---------------------------------------------------------------------------
# CTC loss that FakeTensorMode can trace
# ---------------------------------------------------------------------------
#
# aten::_ctc_loss returns (neg_log_likelihood [N], log_alpha [N, T, 2*max(target_lengths)+1]).
# Its C++ Meta kernel exists, but the op carries the ``dynamic_output_shape`` tag (with tensor
# lengths, max(target_lengths) is data), and FakeTensorMode raises for every op with that tag
# before looking for a kernel. With the lengths as Python ints the shapes are static, so we
# wrap the aten forward and backward kernels in two custom ops whose fake kernels compute
# those shapes. On real tensors (CPU or CUDA) they call the same aten kernels F.ctc_loss uses
# (the native kernel, not cuDNN's).


@torch.library.custom_op(
    "gpuwise::ctc_loss",
    mutates_args=(),
    schema="(Tensor log_probs, Tensor targets, int[] input_lengths, int[] target_lengths, int blank, "
    "bool zero_infinity) -> (Tensor, Tensor)",
)
def ctc_loss_op(
    log_probs: torch.Tensor,
    targets: torch.Tensor,
    input_lengths: list[int],
    target_lengths: list[int],
    blank: int,
    zero_infinity: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample CTC negative log-likelihood (N,) and the alpha table (for the backward)."""
    nll, log_alpha = torch.ops.aten._ctc_loss.default(
        log_probs, targets, input_lengths, target_lengths, blank, zero_infinity
    )
    return nll, log_alpha


@ctc_loss_op.register_fake
def _ctc_loss_fake(
    log_probs: torch.Tensor,
    targets: torch.Tensor,
    input_lengths: list[int],
    target_lengths: list[int],
    blank: int,
    zero_infinity: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    batch = log_probs.size(1)
    nll = log_probs.new_empty((batch,))
    log_alpha = log_probs.new_empty((batch, log_probs.size(0), 2 * max(target_lengths) + 1))
    return nll, log_alpha


@torch.library.custom_op(
    "gpuwise::ctc_loss_backward",
    mutates_args=(),
    schema="(Tensor grad, Tensor log_probs, Tensor targets, int[] input_lengths, int[] target_lengths, "
    "Tensor neg_log_likelihood, Tensor log_alpha, int blank, bool zero_infinity) -> Tensor",
)
def ctc_loss_backward_op(
    grad: torch.Tensor,
    log_probs: torch.Tensor,
    targets: torch.Tensor,
    input_lengths: list[int],
    target_lengths: list[int],
    neg_log_likelihood: torch.Tensor,
    log_alpha: torch.Tensor,
    blank: int,
    zero_infinity: bool,
) -> torch.Tensor:
    """Gradient of the CTC loss with respect to ``log_probs``."""
    return torch.ops.aten._ctc_loss_backward.default(
        grad.contiguous(),
        log_probs,
        targets,
        input_lengths,
        target_lengths,
        neg_log_likelihood,
        log_alpha,
        blank,
        zero_infinity,
    )


@ctc_loss_backward_op.register_fake
def _ctc_loss_backward_fake(
    grad: torch.Tensor,
    log_probs: torch.Tensor,
    targets: torch.Tensor,
    input_lengths: list[int],
    target_lengths: list[int],
    neg_log_likelihood: torch.Tensor,
    log_alpha: torch.Tensor,
    blank: int,
    zero_infinity: bool,
) -> torch.Tensor:
    return torch.empty_like(log_probs)


def _ctc_setup_context(ctx: Any, inputs: tuple[Any, ...], output: tuple[torch.Tensor, torch.Tensor]) -> None:
    log_probs, targets, input_lengths, target_lengths, blank, zero_infinity = inputs
    nll, log_alpha = output
    ctx.save_for_backward(log_probs, targets, nll, log_alpha)
    ctx.lengths = (list(input_lengths), list(target_lengths))
    ctx.blank = blank
    ctx.zero_infinity = zero_infinity


def _ctc_backward(ctx: Any, grad_nll: torch.Tensor, grad_log_alpha: torch.Tensor) -> tuple[Any, ...]:
    log_probs, targets, nll, log_alpha = ctx.saved_tensors
    input_lengths, target_lengths = ctx.lengths
    grad = ctc_loss_backward_op(
        grad_nll, log_probs, targets, input_lengths, target_lengths, nll, log_alpha, ctx.blank, ctx.zero_infinity
    )
    return grad, None, None, None, None, None


ctc_loss_op.register_autograd(_ctc_backward, setup_context=_ctc_setup_context)


def ctc_loss(
    log_probs: torch.Tensor,
    targets: torch.Tensor,
    input_lengths: list[int],
    target_lengths: list[int],
    blank: int = 0,
    zero_infinity: bool = True,
) -> torch.Tensor:
    """Per-sample CTC loss (N,), like ``F.ctc_loss(..., reduction='none')``; lengths are Python ints."""
    nll, _ = ctc_loss_op(log_probs, targets, list(input_lengths), list(target_lengths), blank, zero_infinity)
    if zero_infinity:  # F.ctc_loss zeroes infinite losses (impossible alignments) after the kernel
        nll = torch.where(torch.isinf(nll), torch.zeros_like(nll), nll)
    return nll


# ---------------------------------------------------------------------------
# DeepSpeech2
# ---------------------------------------------------------------------------
#
# After SeanNaren/deepspeech.pytorch (model.py, DeepSpeech), a widely used PyTorch
# DeepSpeech2; its train.py/benchmark.py defaults: GRU, 5 bidirectional layers, hidden 800,
# 161-bin spectrogram (20 ms window at 16 kHz, 10 ms stride), 29 labels from labels.json
# ("_'ABCDEFGHIJKLMNOPQRSTUVWXYZ " with blank "_" at 0). (Its later Lightning rewrite switched
# the default to LSTM, hidden 1024.) The conv front end is the paper's 2-layer 2D one, as
# deepspeech.pytorch builds it: 32 channels, 41x11 stride 2x2 and 21x11 stride 2x1, BN, Hardtanh(0, 20).

DS2_FREQ_BINS = 161  # floor(16000 * 0.02 / 2) + 1
DS2_CHANNELS = 32
DS2_HIDDEN = 800
DS2_RNN_LAYERS = 5
DS2_LABELS = 29
DS2_BLANK = 0
# deepspeech.pytorch's labels.json, in order: the blank "_" (0), the apostrophe (1), A-Z (2-27), space (28).
DS2_ALPHABET = "_'ABCDEFGHIJKLMNOPQRSTUVWXYZ "


def ds2_conv_out_freq(freq: int = DS2_FREQ_BINS) -> int:
    """Frequency bins left after the two convolutions (161 -> 81 -> 41)."""
    freq = (freq + 2 * 20 - 41) // 2 + 1
    return (freq + 2 * 10 - 21) // 2 + 1


def ds2_conv_out_time(frames: int) -> int:
    """Time steps left after the convolutions: only the first one strides in time (by 2)."""
    return (frames + 2 * 5 - 11) // 2 + 1


class SequenceWise(nn.Module):
    """Apply a module to a (T, N, H) tensor as if it were (T*N, H)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, n = x.size(0), x.size(1)
        return self.module(x.reshape(t * n, -1)).view(t, n, -1)


class BatchRNN(nn.Module):
    """Optional sequence-wise BatchNorm, then a bidirectional GRU whose two directions are summed."""

    def __init__(self, input_size: int, hidden_size: int, batch_norm: bool = True) -> None:
        super().__init__()
        self.batch_norm = SequenceWise(nn.BatchNorm1d(input_size)) if batch_norm else None
        self.rnn = nn.GRU(input_size, hidden_size, bidirectional=True, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.batch_norm is not None:
            x = self.batch_norm(x)
        x, _ = self.rnn(x)  # full-length sequences: no pack_padded_sequence
        t, n = x.size(0), x.size(1)
        return x.view(t, n, 2, -1).sum(2)  # (T, N, 2H) -> (T, N, H)


class DeepSpeech2(nn.Module):
    """Spectrogram (N, 1, 161, T) -> per-frame character logits (T', N, 29), T' = ceil(T / 2)."""

    def __init__(
        self,
        hidden_size: int = DS2_HIDDEN,
        rnn_layers: int = DS2_RNN_LAYERS,
        num_classes: int = DS2_LABELS,
        freq_bins: int = DS2_FREQ_BINS,
    ) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, DS2_CHANNELS, kernel_size=(41, 11), stride=(2, 2), padding=(20, 5)),
            nn.BatchNorm2d(DS2_CHANNELS),
            nn.Hardtanh(0, 20, inplace=True),
            nn.Conv2d(DS2_CHANNELS, DS2_CHANNELS, kernel_size=(21, 11), stride=(2, 1), padding=(10, 5)),
            nn.BatchNorm2d(DS2_CHANNELS),
            nn.Hardtanh(0, 20, inplace=True),
        )
        rnn_input = DS2_CHANNELS * ds2_conv_out_freq(freq_bins)  # 32 * 41 = 1312
        self.rnns = nn.Sequential(
            BatchRNN(rnn_input, hidden_size, batch_norm=False),
            *(BatchRNN(hidden_size, hidden_size) for _ in range(rnn_layers - 1)),
        )
        self.fc = SequenceWise(
            nn.Sequential(nn.BatchNorm1d(hidden_size), nn.Linear(hidden_size, num_classes, bias=False))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)  # (N, 32, 41, T')
        n, c, f, t = x.shape
        x = x.view(n, c * f, t).permute(2, 0, 1).contiguous()  # (T', N, 1312)
        x = self.rnns(x)
        return self.fc(x)  # (T', N, classes)


def ds2_target_len(frames: int) -> int:
    """Characters per synthetic transcript: ~0.3 per output frame (LibriSpeech reads at ~15
    characters per second, 50 output frames per second), so CTC always has a valid path."""
    return max(1, (3 * ds2_conv_out_time(frames)) // 10)


def _ds2_build(shape: Shape) -> nn.Module:
    return DeepSpeech2().train()


def _ds2_batch(batch_size: int, shape: Shape) -> tuple[torch.Tensor, torch.Tensor]:
    assert shape.seq_len is not None
    spect = torch.randn(batch_size, 1, DS2_FREQ_BINS, shape.seq_len)
    targets = torch.randint(1, DS2_LABELS, (batch_size, ds2_target_len(shape.seq_len)))  # never the blank
    return spect, targets


def _ds2_loss(model: nn.Module, batch: Any) -> torch.Tensor:
    """CTC loss of a batch ``(spect, targets)`` of full-length utterances (synthetic), or
    ``(spect, targets, frames, target_lengths)`` of padded ones (real data: each utterance's
    spectrogram frames and transcript length, (N,) int64 tensors; padding is ignored by the loss)."""
    spect, targets, *lengths = batch
    logits = model(spect)  # (T', N, C)
    frames, n = logits.size(0), logits.size(1)
    # CTC needs fp32 (autocast keeps ctc_loss and log_softmax in fp32 too).
    log_probs = logits.float().log_softmax(-1)
    if lengths:  # real tensors only: the lengths are read back to the host, as F.ctc_loss would
        input_frames, target_lengths = lengths
        output_lengths = [min(frames, ds2_conv_out_time(f)) for f in input_frames.tolist()]
        nll = ctc_loss(log_probs, targets, output_lengths, target_lengths.tolist(), blank=DS2_BLANK)
    else:
        nll = ctc_loss(log_probs, targets, [frames] * n, [targets.size(1)] * n, blank=DS2_BLANK)
    return nll.sum() / n  # deepspeech.pytorch: CTCLoss(reduction="sum") / minibatch size


DEEPSPEECH2 = register(
    Workload(
        name="deepspeech2",
        family="speech-to-text (RNN)",
        data_layout="speech",
        sample_unit="utterance",
        default_batch_size=64,  # deepspeech.pytorch's DataConfig.batch_size
        summary="DeepSpeech2: 2 conv + 5 bi-GRU (800) + CTC, 161-bin spectrogram, seq_len frames (100/s)",
        build_model=_ds2_build,
        make_batch=_ds2_batch,
        forward_loss=_ds2_loss,
        default_shape=Shape(seq_len=1000),  # 1000 frames of 10 ms = 10 s of audio
        tokens_per_sample=None,
        reference="Amodei et al. 2015, arXiv:1512.02595; layout and sizes of SeanNaren/deepspeech.pytorch "
        "(model.py; train.py defaults: GRU, 5 layers, hidden 800, 29 labels)",
    )
)


# ---------------------------------------------------------------------------
# GNMT v2
# ---------------------------------------------------------------------------
#
# After NVIDIA/DeepLearningExamples PyTorch/Translation/GNMT (seq2seq/models/{gnmt,encoder,
# decoder,attention}.py, train.py defaults): hidden 1024, 4 encoder + 4 decoder LSTM layers,
# shared embedding, vocabulary 32320 (BPE 32000 + 4 special tokens, padded to a multiple of 8),
# dropout 0.2 on LSTM inputs, normalized Bahdanau attention, label smoothing 0.1, time-major
# tensors (batch_first=False), batch 128 per GPU, --train-max-length 50.

GNMT_VOCAB = 32320
GNMT_HIDDEN = 1024
GNMT_LAYERS = 4
GNMT_DROPOUT = 0.2
GNMT_SMOOTHING = 0.1
GNMT_PAD = 0  # seq2seq/data/config.py: PAD, UNK, BOS, EOS = 0, 1, 2, 3
GNMT_FIRST_WORD = 4
GNMT_INIT = 0.1  # uniform(-0.1, 0.1) init of LSTMs, embedding, attention and classifier


def _init_uniform(module: nn.Module, bound: float = GNMT_INIT) -> None:
    for p in module.parameters():
        nn.init.uniform_(p, -bound, bound)


class BahdanauAttention(nn.Module):
    """Normalized Bahdanau (additive) attention, as in NVIDIA's seq2seq/models/attention.py."""

    def __init__(self, query_size: int, key_size: int, num_units: int) -> None:
        super().__init__()
        self.linear_q = nn.Linear(query_size, num_units, bias=False)
        self.linear_k = nn.Linear(key_size, num_units, bias=False)
        self.linear_att = nn.Parameter(torch.empty(num_units))
        self.normalize_scalar = nn.Parameter(torch.empty(1))
        self.normalize_bias = nn.Parameter(torch.empty(num_units))
        for p in (self.linear_q.weight, self.linear_k.weight, self.linear_att):
            nn.init.uniform_(p, -GNMT_INIT, GNMT_INIT)
        nn.init.constant_(self.normalize_scalar, 1.0 / math.sqrt(num_units))
        nn.init.zeros_(self.normalize_bias)

    def forward(self, query: torch.Tensor, keys: torch.Tensor, key_lengths: torch.Tensor) -> torch.Tensor:
        """query (t_q, b, n), keys (t_k, b, n), key_lengths (b,) -> context (t_q, b, n)."""
        keys = keys.transpose(0, 1)  # (b, t_k, n)
        query = query.transpose(0, 1)  # (b, t_q, n)
        b, t_k, n = keys.shape
        t_q = query.size(1)
        processed_query = self.linear_q(query)
        processed_key = self.linear_k(keys)
        # Additive score over the full (b, t_q, t_k, n) grid, as the reference computes it.
        att_query = processed_query.unsqueeze(2).expand(b, t_q, t_k, n)
        att_keys = processed_key.unsqueeze(1).expand(b, t_q, t_k, n)
        sum_qk = att_query + att_keys + self.normalize_bias
        linear_att = self.linear_att / self.linear_att.norm() * self.normalize_scalar
        scores = torch.tanh(sum_qk).matmul(linear_att)  # (b, t_q, t_k)
        # Mask padded keys (all valid here: full-length sequences; the op is kept for fidelity).
        mask = torch.arange(t_k, device=keys.device) >= key_lengths.unsqueeze(1)  # (b, t_k)
        scores = scores.masked_fill(mask.unsqueeze(1), -65504.0)
        context = torch.bmm(F.softmax(scores, dim=-1), keys)  # (b, t_q, n)
        return context.transpose(0, 1)


class GNMTEncoder(nn.Module):
    """Bidirectional LSTM, then unidirectional ones; residual connections from the 3rd layer."""

    def __init__(self, embedder: nn.Embedding, hidden: int = GNMT_HIDDEN, layers: int = GNMT_LAYERS) -> None:
        super().__init__()
        self.embedder = embedder
        self.rnn_layers = nn.ModuleList([nn.LSTM(hidden, hidden, bidirectional=True)])
        self.rnn_layers.append(nn.LSTM(2 * hidden, hidden))
        self.rnn_layers.extend(nn.LSTM(hidden, hidden) for _ in range(layers - 2))
        _init_uniform(self.rnn_layers)
        self.dropout = nn.Dropout(GNMT_DROPOUT)

    def forward(self, src: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.embedder(src))
        x, _ = self.rnn_layers[0](x)  # reference packs by length here; all full length in ours
        x, _ = self.rnn_layers[1](self.dropout(x))
        for rnn in self.rnn_layers[2:]:
            residual = x
            x, _ = rnn(self.dropout(x))
            x = x + residual
        return x


class GNMTDecoder(nn.Module):
    """LSTM + attention, then LSTMs fed [x, context]; residual connections from the 3rd layer."""

    def __init__(
        self, embedder: nn.Embedding, vocab: int = GNMT_VOCAB, hidden: int = GNMT_HIDDEN, layers: int = GNMT_LAYERS
    ) -> None:
        super().__init__()
        self.embedder = embedder
        self.att_rnn = nn.LSTM(hidden, hidden)
        self.attn = BahdanauAttention(hidden, hidden, hidden)
        self.rnn_layers = nn.ModuleList(nn.LSTM(2 * hidden, hidden) for _ in range(layers - 1))
        _init_uniform(self.att_rnn)
        _init_uniform(self.rnn_layers)
        self.classifier = nn.Linear(hidden, vocab)
        _init_uniform(self.classifier)
        self.dropout = nn.Dropout(GNMT_DROPOUT)

    def forward(self, tgt: torch.Tensor, context: torch.Tensor, context_lengths: torch.Tensor) -> torch.Tensor:
        x = self.embedder(tgt)
        x, _ = self.att_rnn(self.dropout(x))
        attn = self.attn(x, context, context_lengths)
        x, _ = self.rnn_layers[0](self.dropout(torch.cat((x, attn), dim=2)))
        for rnn in self.rnn_layers[1:]:
            residual = x
            x, _ = rnn(self.dropout(torch.cat((x, attn), dim=2)))
            x = x + residual
        return self.classifier(x)  # (t, b, vocab)


class GNMT(nn.Module):
    """GNMT v2: (src (S, B), src_lengths (B,), tgt_in (T, B)) -> logits (T, B, vocab)."""

    def __init__(self, vocab: int = GNMT_VOCAB, hidden: int = GNMT_HIDDEN, layers: int = GNMT_LAYERS) -> None:
        super().__init__()
        embedder = nn.Embedding(vocab, hidden, padding_idx=GNMT_PAD)  # shared by encoder and decoder
        nn.init.uniform_(embedder.weight, -GNMT_INIT, GNMT_INIT)
        self.encoder = GNMTEncoder(embedder, hidden, layers)
        self.decoder = GNMTDecoder(embedder, vocab, hidden, layers)

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        return self.decoder(tgt_in, self.encoder(src), src_lengths)


def label_smoothing_loss(
    logits: torch.Tensor, target: torch.Tensor, smoothing: float = GNMT_SMOOTHING, padding_idx: int = GNMT_PAD
) -> torch.Tensor:
    """NVIDIA's seq2seq/train/smoothing.py LabelSmoothing, summed; padding masked by a multiply
    instead of boolean indexing (same value, no data-dependent shape)."""
    logprobs = F.log_softmax(logits, dim=-1, dtype=torch.float32)
    nll = -logprobs.gather(dim=-1, index=target.unsqueeze(1)).squeeze(1)
    smooth = -logprobs.mean(dim=-1)
    loss = (1.0 - smoothing) * nll + smoothing * smooth
    return (loss * (target != padding_idx).to(loss.dtype)).sum()


def _gnmt_build(shape: Shape) -> nn.Module:
    return GNMT().train()


def _gnmt_batch(batch_size: int, shape: Shape) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Source (L, B), its lengths (B,) = L, and target (L + 1, B): the decoder reads tgt[:-1] and
    is scored on tgt[1:], so each sentence pair has L source and L target tokens."""
    assert shape.seq_len is not None
    length = shape.seq_len
    src = torch.randint(GNMT_FIRST_WORD, GNMT_VOCAB, (length, batch_size))
    src_lengths = torch.full((batch_size,), length, dtype=torch.int64)
    tgt = torch.randint(GNMT_FIRST_WORD, GNMT_VOCAB, (length + 1, batch_size))
    return src, src_lengths, tgt


def _gnmt_loss(model: nn.Module, batch: Any) -> torch.Tensor:
    src, src_lengths, tgt = batch
    logits = model(src, src_lengths, tgt[:-1])
    t, b, v = logits.shape
    loss = label_smoothing_loss(logits.reshape(t * b, v), tgt[1:].reshape(-1))
    return loss / b  # trainer.py: loss /= B * iter_size


def _gnmt_tokens(shape: Shape) -> int:
    # NVIDIA's "Tok/s" is total tokens: sum(src_length) + sum(tgt_length - 1) per batch
    # (seq2seq/train/trainer.py; README: "Performance is reported in total tokens per second"),
    # i.e. source plus target tokens, so a pair of seq_len-token sentences counts 2 * seq_len.
    assert shape.seq_len is not None
    return 2 * shape.seq_len


GNMT_WORKLOAD = register(
    Workload(
        name="gnmt",
        family="translation (RNN seq2seq)",
        sample_unit="sequence",
        default_batch_size=128,  # train.py --train-batch-size; every published row uses 128 per GPU
        summary="GNMT v2: 4+4 LSTM (1024) enc/dec, Bahdanau attention, vocab 32320; seq_len src = tgt tokens",
        build_model=_gnmt_build,
        make_batch=_gnmt_batch,
        forward_loss=_gnmt_loss,
        # train.py --train-max-length 50 (incl. BOS/EOS): the longest bucket and the size
        # NVIDIA's preallocation step runs; the epoch average is shorter.
        default_shape=Shape(seq_len=50),
        tokens_per_sample=_gnmt_tokens,
        reference="Wu et al. 2016, arXiv:1609.08144; GNMT v2 of NVIDIA/DeepLearningExamples "
        "PyTorch/Translation/GNMT (seq2seq/models, train.py defaults)",
    )
)
