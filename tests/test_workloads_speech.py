"""The speech/RNN family: DeepSpeech2 (GRU + CTC) and GNMT v2 (LSTM seq2seq)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch._subclasses.fake_tensor import FakeTensorMode

from gpuwise.workloads import speech
from gpuwise.workloads.registry import Shape, Workload

WORKLOADS = {"deepspeech2": speech.DEEPSPEECH2, "gnmt": speech.GNMT_WORKLOAD}
# Small shapes: the fake step's op count grows with the number of RNN time steps.
SMALL = {"deepspeech2": Shape(seq_len=24), "gnmt": Shape(seq_len=6)}
AUTOCAST = (None, torch.bfloat16, torch.float16)


def _rnn_params(gates: int, input_size: int, hidden: int, directions: int = 1) -> int:
    """nn.GRU (3 gates) / nn.LSTM (4 gates), one layer: W_ih, W_hh, b_ih, b_hh per direction."""
    return directions * gates * (hidden * (input_size + hidden) + 2 * hidden)


def _gru(input_size: int, hidden: int) -> int:
    return _rnn_params(3, input_size, hidden, directions=2)


def _lstm(input_size: int, hidden: int, directions: int = 1) -> int:
    return _rnn_params(4, input_size, hidden, directions)


def _param_count(workload: Workload) -> int:
    with FakeTensorMode():  # the full-size model, nothing allocated
        model = workload.build_model(workload.resolve_shape())
        return sum(p.numel() for p in model.parameters())


def test_registered_metadata() -> None:
    ds2, gnmt = speech.DEEPSPEECH2, speech.GNMT_WORKLOAD
    assert (ds2.name, ds2.sample_unit, ds2.tokens_per_sample) == ("deepspeech2", "utterance", None)
    assert ds2.options == ("seq_len",) and ds2.default_shape.seq_len == 1000
    assert (gnmt.name, gnmt.sample_unit, gnmt.default_batch_size) == ("gnmt", "sequence", 128)
    assert gnmt.options == ("seq_len",) and gnmt.default_shape.seq_len == 50
    assert gnmt.tokens_per_sample is not None
    assert gnmt.tokens_per_sample(gnmt.resolve_shape(seq_len=30)) == 60  # source + target tokens


def test_deepspeech2_parameter_count() -> None:
    channels, hidden, labels = 32, 800, 29
    freq = (161 + 2 * 20 - 41) // 2 + 1  # 81 after conv 1
    freq = (freq + 2 * 10 - 21) // 2 + 1  # 41 after conv 2
    assert freq == 41
    conv = (channels * 1 * 41 * 11 + channels) + (channels * channels * 21 * 11 + channels)
    conv_bn = 2 * (2 * channels)
    rnns = _gru(channels * freq, hidden) + 4 * (2 * hidden + _gru(hidden, hidden))  # BN before layers 2-5
    fc = 2 * hidden + hidden * labels  # BatchNorm1d + Linear without bias
    expected = conv + conv_bn + rnns + fc
    assert expected == 41_187_968
    assert _param_count(speech.DEEPSPEECH2) == expected


def test_gnmt_parameter_count() -> None:
    vocab, h = 32320, 1024
    embedding = vocab * h  # shared by encoder and decoder
    encoder = _lstm(h, h, directions=2) + _lstm(2 * h, h) + 2 * _lstm(h, h)
    attention = 2 * h * h + h + 1 + h  # linear_q, linear_k, linear_att, normalize_scalar, normalize_bias
    decoder = _lstm(h, h) + attention + 3 * _lstm(2 * h, h)
    classifier = h * vocab + vocab
    expected = embedding + encoder + decoder + classifier
    assert expected == 160_671_297
    assert _param_count(speech.GNMT_WORKLOAD) == expected


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_fake_training_step(name: str) -> None:
    workload, shape = WORKLOADS[name], SMALL[name]
    with FakeTensorMode():
        model = workload.build_model(shape)
        assert model.training
        batch = workload.make_batch(2, shape)
        for dtype in AUTOCAST:
            model.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
                loss = workload.forward_loss(model, batch)
            assert loss.shape == () and loss.dtype == torch.float32
            loss.backward()
            assert all(p.grad is not None and p.grad.shape == p.shape for p in model.parameters())


def test_fake_training_step_default_gnmt() -> None:
    workload = speech.GNMT_WORKLOAD  # LSTMs are one op per layer on the CPU: the default size is cheap
    shape = workload.resolve_shape()
    with FakeTensorMode():
        model = workload.build_model(shape)
        src, src_lengths, tgt = workload.make_batch(workload.default_batch_size, shape)
        assert src.shape == (50, 128) and tgt.shape == (51, 128) and src_lengths.shape == (128,)
        workload.forward_loss(model, (src, src_lengths, tgt)).backward()


def test_ctc_op_matches_f_ctc_loss() -> None:
    torch.manual_seed(0)
    frames, batch, classes, target_len = 12, 3, 6, 4
    logits = torch.randn(frames, batch, classes, dtype=torch.float64, requires_grad=True)
    targets = torch.randint(1, classes, (batch, target_len))
    lengths, target_lengths = [frames] * batch, [target_len, 3, 2]
    ours = speech.ctc_loss(logits.log_softmax(-1), targets, lengths, target_lengths)
    (grad_ours,) = torch.autograd.grad(ours.sum(), logits)
    ref = F.ctc_loss(logits.log_softmax(-1), targets, lengths, target_lengths, reduction="none", zero_infinity=True)
    (grad_ref,) = torch.autograd.grad(ref.sum(), logits)
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(grad_ours, grad_ref)


def test_deepspeech2_real_step_small() -> None:
    torch.manual_seed(0)
    workload = speech.DEEPSPEECH2
    shape = workload.resolve_shape(seq_len=40)
    model = speech.DeepSpeech2(hidden_size=32).train()  # full size works too, but its GRU backward takes seconds
    loss = workload.forward_loss(model, workload.make_batch(2, shape))
    loss.backward()
    assert math.isfinite(loss.item()) and loss.item() > 0
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_gnmt_real_step_small() -> None:
    torch.manual_seed(0)
    vocab, length, batch = 50, 5, 2
    model = speech.GNMT(vocab=vocab, hidden=16).train()  # the full model is 160M parameters
    src = torch.randint(speech.GNMT_FIRST_WORD, vocab, (length, batch))
    tgt = torch.randint(speech.GNMT_FIRST_WORD, vocab, (length + 1, batch))
    src_lengths = torch.full((batch,), length, dtype=torch.int64)
    loss = speech.GNMT_WORKLOAD.forward_loss(model, (src, src_lengths, tgt))
    loss.backward()
    # Near-uniform predictions at init: about length * ln(vocab) per sentence.
    assert math.isfinite(loss.item()) and 0.5 * length * math.log(vocab) < loss.item() < 2 * length * math.log(vocab)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
