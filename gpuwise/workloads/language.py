"""Language models: GPT-2, BERT (pre-training and SQuAD) and Llama, built with transformers.

Every model is built from a config written out here (never downloaded, never
``from_pretrained``), with SDPA attention, in train mode and with the dropout of
its reference config. Synthetic batches hold full-length sequences and pass no
``attention_mask``: with no padding the mask is all ones, and leaving it out lets
SDPA run its unmasked kernels (``is_causal=True`` for the causal LMs), as a real
step on unpadded data does. Each ``forward_loss`` returns the model's own training
loss (labels -> cross entropy); BERT pre-training runs its masked-LM head on the predicted
positions only, as NVIDIA's recipe does (``masked_lm_loss``).

The steps also run under ``FakeTensorMode`` (build, batch, forward, backward),
which is how the profiler traces them without allocating anything; see
``_one_sequence_per_row`` for the one place where that needs help.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from gpuwise.errors import GpuwiseError
from gpuwise.workloads import recipes
from gpuwise.workloads.registry import RecipeBatch, Shape, Workload, register

FAMILY = "language (transformer)"

IGNORE_INDEX = -100  # transformers' label value for "no loss at this position"
MLM_PROBABILITY = 0.15  # BERT predicts 15% of the tokens (Devlin et al. 2018, section 3.1)


def masked_count(seq_len: int) -> int:
    """How many positions of a ``seq_len``-token BERT sequence are predicted: 15% of them, rounded, at least
    one, as Google's create_pretraining_data.py chooses them (``num_to_predict = max(1, round(len(tokens) *
    masked_lm_prob))``, google-research/bert); NVIDIA's recipe caps it at 20 of 128 and 80 of 512
    (``--max_predictions_per_seq``), which this never reaches."""
    return max(1, round(MLM_PROBABILITY * seq_len))

# BERT's WordPiece vocabulary has 30522 entries; NVIDIA's run_pretraining.py pads it to a
# multiple of 8 (30528) for Tensor Cores ("Padding for divisibility by 8"), and so do we.
BERT_VOCAB = 30522
BERT_VOCAB_PADDED = 30528

# Vocabulary of each causal LM by workload name (filled as they register): token ids a real
# token file may hold.
CAUSAL_LM_VOCAB: dict[str, int] = {}


# --- configs ------------------------------------------------------------------------------
# Written out as in each model's config.json, so that nothing depends on transformers' defaults.

# The 124M "gpt2" checkpoint: dropout 0.1 on embeddings, residuals and attention; tied LM head.
GPT2: dict[str, Any] = {
    "vocab_size": 50257,
    "n_positions": 1024,
    "n_embd": 768,
    "n_layer": 12,
    "n_head": 12,
    "activation_function": "gelu_new",
    "resid_pdrop": 0.1,
    "embd_pdrop": 0.1,
    "attn_pdrop": 0.1,
    "layer_norm_epsilon": 1e-5,
    "tie_word_embeddings": True,
}

# NVIDIA DeepLearningExamples PyTorch/LanguageModeling/BERT/bert_configs/{base,large}.json (Google's
# uncased BERT configs) with the vocabulary padded as run_pretraining.py pads it.
_BERT_COMMON: dict[str, Any] = {
    "vocab_size": BERT_VOCAB_PADDED,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "layer_norm_eps": 1e-12,
    "initializer_range": 0.02,
}
BERT_BASE: dict[str, Any] = {
    **_BERT_COMMON,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
}
BERT_LARGE: dict[str, Any] = {
    **_BERT_COMMON,
    "hidden_size": 1024,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "intermediate_size": 4096,
}

# Llama: SiLU-gated MLP, RMSNorm, no biases, no dropout.
_LLAMA_COMMON: dict[str, Any] = {
    "hidden_act": "silu",
    "rms_norm_eps": 1e-5,
    "attention_bias": False,
    "mlp_bias": False,
    "attention_dropout": 0.0,
}
# meta-llama/Llama-3.2-1B config.json
LLAMA_3_2_1B: dict[str, Any] = {
    **_LLAMA_COMMON,
    "vocab_size": 128256,
    "hidden_size": 2048,
    "intermediate_size": 8192,
    "num_hidden_layers": 16,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 64,
    "max_position_embeddings": 131072,
    "rope_parameters": {
        "rope_type": "llama3",
        "rope_theta": 500000.0,
        "factor": 32.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
    },
    "tie_word_embeddings": True,
    "bos_token_id": 128000,
    "eos_token_id": 128001,
}
# meta-llama/Llama-2-7b-hf config.json
LLAMA_2_7B: dict[str, Any] = {
    **_LLAMA_COMMON,
    "vocab_size": 32000,
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "max_position_embeddings": 4096,
    "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0},
    "tie_word_embeddings": False,
    "bos_token_id": 1,
    "eos_token_id": 2,
}
# meta-llama/Llama-2-70b-hf config.json: grouped-query attention with 8 KV heads
LLAMA_2_70B: dict[str, Any] = {
    **_LLAMA_COMMON,
    "vocab_size": 32000,
    "hidden_size": 8192,
    "intermediate_size": 28672,
    "num_hidden_layers": 80,
    "num_attention_heads": 64,
    "num_key_value_heads": 8,
    "max_position_embeddings": 4096,
    "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0},
    "tie_word_embeddings": False,
    "bos_token_id": 1,
    "eos_token_id": 2,
}


# --- building -----------------------------------------------------------------------------


def _check_positions(name: str, shape: Shape, max_positions: int | None) -> int:
    """The shape's sequence length, refused past a model's learned position embeddings."""
    assert shape.seq_len is not None
    if max_positions is not None and shape.seq_len > max_positions:
        raise GpuwiseError(
            f"--seq-len {shape.seq_len} is too long for workload '{name}': its learned position "
            f"embeddings stop at {max_positions}; use --seq-len {max_positions} or less"
        )
    return shape.seq_len


def _builder(
    name: str, config_class: str, model_class: str, config: dict[str, Any], max_positions: int | None
) -> Callable[[Shape], nn.Module]:
    def build(shape: Shape) -> nn.Module:
        _check_positions(name, shape, max_positions)
        import transformers

        # A copy: the config keeps nested dicts (rope_parameters) by reference.
        values = copy.deepcopy(config)
        # use_cache=False: a training step keeps no KV cache (with one, every layer would copy
        # its keys and values into it).
        cfg = getattr(transformers, config_class)(**values, attn_implementation="sdpa", use_cache=False)
        model: Any = getattr(transformers, model_class)(cfg)
        assert model.config._attn_implementation == "sdpa", model.config._attn_implementation
        if model_class == "GPT2LMHeadModel":
            # Its class name matches no entry of transformers' loss table: it would warn, then
            # fall back to this same loss.
            model.loss_type = "ForCausalLM"
        return model.train()

    return build


# --- batches ------------------------------------------------------------------------------


def _token_ids(batch_size: int, seq_len: int, vocab: int) -> torch.Tensor:
    return torch.randint(0, vocab, (batch_size, seq_len))


def _causal_lm_batch(name: str, vocab: int, max_positions: int | None) -> Callable[[int, Shape], Any]:
    def make_batch(batch_size: int, shape: Shape) -> dict[str, torch.Tensor]:
        seq_len = _check_positions(name, shape, max_positions)
        # The labels are the inputs: the model shifts them by one position itself.
        return {"input_ids": _token_ids(batch_size, seq_len, vocab)}

    return make_batch


def _segment_ids(batch_size: int, seq_len: int) -> torch.Tensor:
    """Sentence A then sentence B, split in the middle, as in a BERT sentence pair."""
    return (torch.arange(seq_len) >= seq_len // 2).long().expand(batch_size, seq_len)


def _bert_pretraining_batch(name: str) -> Callable[[int, Shape], Any]:
    def make_batch(batch_size: int, shape: Shape) -> dict[str, torch.Tensor]:
        seq_len = _check_positions(name, shape, 512)
        input_ids = _token_ids(batch_size, seq_len, BERT_VOCAB)
        chosen = torch.rand(batch_size, seq_len).argsort(dim=1)[:, : masked_count(seq_len)]
        predicted = torch.zeros(batch_size, seq_len, dtype=torch.bool).scatter(1, chosen, True)
        return {
            "input_ids": input_ids,
            "token_type_ids": _segment_ids(batch_size, seq_len),
            "labels": torch.where(predicted, input_ids, IGNORE_INDEX),
            "next_sentence_label": torch.randint(0, 2, (batch_size,)),
        }

    return make_batch


def _squad_batch(name: str) -> Callable[[int, Shape], Any]:
    def make_batch(batch_size: int, shape: Shape) -> dict[str, torch.Tensor]:
        seq_len = _check_positions(name, shape, 512)
        return {
            "input_ids": _token_ids(batch_size, seq_len, BERT_VOCAB),
            "token_type_ids": _segment_ids(batch_size, seq_len),
            "start_positions": torch.randint(0, seq_len, (batch_size,)),
            "end_positions": torch.randint(0, seq_len, (batch_size,)),
        }

    return make_batch


# --- losses -------------------------------------------------------------------------------


def _no_packed_sequences(position_ids: torch.Tensor) -> None:
    return None


@contextlib.contextmanager
def _one_sequence_per_row() -> Iterator[None]:
    """Tell transformers' causal-mask builder that no row packs several sequences.

    With no ``attention_mask``, transformers 5 (``masking_utils._preprocess_mask_arguments``)
    asks ``find_packed_sequence_indices(position_ids)`` whether the rows pack several
    sequences. With real tensors it reads the values, finds one sequence per row, returns
    None, and SDPA runs unmasked with ``is_causal=True``. Under FakeTensorMode it cannot read
    values (``is_tracing`` is true for fake tensors), so it assumes packing: the traced step
    would then build a (batch, 1, seq, seq) boolean mask and run masked attention (another
    SDPA kernel on GPUs, and repeat_kv copies instead of ``enable_gqa`` for Llama's grouped
    KV heads) - not the step a GPU runs. Our batches never pack sequences (the model makes
    its own ``arange`` position ids), so the answer is known: None. No config option or
    input avoids the check, hence this patch, scoped to one forward pass and undone in
    ``finally``. With real tensors it changes nothing but skipping that host read.
    """
    from transformers import masking_utils

    original = masking_utils.find_packed_sequence_indices
    masking_utils.find_packed_sequence_indices = _no_packed_sequences
    try:
        yield
    finally:
        masking_utils.find_packed_sequence_indices = original


def causal_lm_loss(model: nn.Module, batch: Any) -> torch.Tensor:
    """Next-token cross entropy, the model's own ``loss`` (labels = inputs, shifted inside)."""
    input_ids = batch["input_ids"]
    with _one_sequence_per_row():
        loss: torch.Tensor = model(input_ids=input_ids, labels=input_ids, use_cache=False).loss
    return loss


def masked_lm_loss(model: Any, batch: Any) -> torch.Tensor:
    """BertForPreTraining's loss (masked-LM plus next-sentence cross entropy) with the masked-LM head run on
    the predicted positions only, as NVIDIA's recipe runs it (DeepLearningExamples run_pretraining.py:
    ``sequence_output_is_dense`` unless ``--no_dense_sequence_output``; MLPerf's ``--dense_seq_output``):
    the same loss as ``model(**batch).loss``, without the vocabulary-wide logits of the other 85% of the
    tokens. The batch predicts ``masked_count(seq_len)`` positions per sequence, so their positions have a
    fixed shape (a stable sort of the label mask, where the recipe calls ``nonzero``, which fake tensors
    cannot size)."""
    labels = batch["labels"]
    positions = torch.argsort((labels == IGNORE_INDEX).to(torch.uint8), dim=1, stable=True)
    positions = positions[:, : masked_count(labels.shape[1])]
    out = model.bert(input_ids=batch["input_ids"], token_type_ids=batch["token_type_ids"])
    hidden = out.last_hidden_state
    picked = hidden.gather(1, positions.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))
    scores = model.cls.predictions(picked)
    next_sentence = model.cls.seq_relationship(out.pooler_output)
    masked_lm = nn.functional.cross_entropy(scores.reshape(-1, scores.shape[-1]),
                                            labels.gather(1, positions).reshape(-1), ignore_index=IGNORE_INDEX)
    return masked_lm + nn.functional.cross_entropy(next_sentence, batch["next_sentence_label"])


def labelled_loss(model: nn.Module, batch: Any) -> torch.Tensor:
    """The model's own loss from the labels in the batch: the mean of the start and end cross entropies
    for BertForQuestionAnswering."""
    loss: torch.Tensor = model(**batch).loss
    return loss


# --- the workloads ------------------------------------------------------------------------


def _seq_tokens(shape: Shape) -> int:
    assert shape.seq_len is not None
    return shape.seq_len


def _register(
    name: str,
    *,
    config_class: str,
    model_class: str,
    config: dict[str, Any],
    max_positions: int | None,
    make_batch: Callable[[int, Shape], Any],
    forward_loss: Callable[[nn.Module, Any], torch.Tensor],
    sample_unit: str,
    batch: int,
    seq_len: int,
    summary: str,
    reference: str,
    data_layout: str | None = "tokens",
    recipe_batch: RecipeBatch | None = None,
) -> None:
    register(
        Workload(
            name=name,
            family=FAMILY,
            sample_unit=sample_unit,
            default_batch_size=batch,
            summary=summary,
            build_model=_builder(name, config_class, model_class, config, max_positions),
            make_batch=make_batch,
            forward_loss=forward_loss,
            default_shape=Shape(seq_len=seq_len),
            tokens_per_sample=_seq_tokens,
            reference=reference,
            data_layout=data_layout,
            recipe_batch=recipe_batch,
        )
    )


def _causal_lm(name: str, config_class: str, model_class: str, config: dict[str, Any], **kwargs: Any) -> None:
    # Llama's rotary positions have no learned table, so any length runs.
    max_positions = config.get("n_positions")
    CAUSAL_LM_VOCAB[name] = config["vocab_size"]
    _register(
        name,
        config_class=config_class,
        model_class=model_class,
        config=config,
        max_positions=max_positions,
        make_batch=_causal_lm_batch(name, config["vocab_size"], max_positions),
        forward_loss=causal_lm_loss,
        sample_unit="token",
        **kwargs,
    )


_causal_lm(
    "gpt2",
    "GPT2Config",
    "GPT2LMHeadModel",
    GPT2,
    batch=8,
    seq_len=1024,
    recipe_batch=recipes.GPT2,
    summary="GPT-2 124M decoder, causal LM",
    reference="Radford et al. 2019, 'Language Models are Unsupervised Multitask Learners'; "
    "openai-community/gpt2 config.json (12 layers, 768 wide, 12 heads, 1024 positions, vocab 50257)",
)

_BERT_REFERENCE = (
    "Devlin et al. 2018, arXiv:1810.04805; config and loss as NVIDIA DeepLearningExamples "
    "PyTorch/LanguageModeling/BERT (bert_configs/{size}.json, vocab 30522 padded to 30528 as run_pretraining.py does)"
)

_register(
    "bert-base",
    config_class="BertConfig",
    model_class="BertForPreTraining",
    config=BERT_BASE,
    max_positions=512,
    make_batch=_bert_pretraining_batch("bert-base"),
    forward_loss=masked_lm_loss,
    sample_unit="sequence",
    batch=64,
    seq_len=128,
    summary="BERT-base pre-training (masked LM + next sentence), phase 1 seq 128",
    reference=_BERT_REFERENCE.format(size="base"),
)

_register(
    "bert-large",
    config_class="BertConfig",
    model_class="BertForPreTraining",
    config=BERT_LARGE,
    max_positions=512,
    make_batch=_bert_pretraining_batch("bert-large"),
    forward_loss=masked_lm_loss,
    sample_unit="sequence",
    batch=64,
    seq_len=128,
    summary="BERT-large pre-training (masked LM + next sentence), phase 1 seq 128",
    reference=_BERT_REFERENCE.format(size="large"),
)

for _size, _config in (("base", BERT_BASE), ("large", BERT_LARGE)):
    _register(
        f"bert-{_size}-squad",
        config_class="BertConfig",
        model_class="BertForQuestionAnswering",
        config=_config,
        max_positions=512,
        make_batch=_squad_batch(f"bert-{_size}-squad"),
        forward_loss=labelled_loss,
        sample_unit="sequence",
        batch=32,
        seq_len=384,
        summary=f"BERT-{_size} SQuAD v1.1 fine-tuning (start/end span head)",
        reference=_BERT_REFERENCE.format(size=_size) + "; SQuAD fine-tuning as its run_squad.py (max_seq_length 384)",
        data_layout=None,  # no SQuAD reader (yet): synthetic spans only
    )

_causal_lm(
    "llama-1b",
    "LlamaConfig",
    "LlamaForCausalLM",
    LLAMA_3_2_1B,
    batch=2,
    seq_len=4096,
    recipe_batch=recipes.LLAMA_3_AT_4K,
    summary="Llama 3.2 1B decoder (GQA, tied embeddings), causal LM",
    reference="Meta Llama 3.2 model card; meta-llama/Llama-3.2-1B config.json "
    "(16 layers, 2048 wide, 32 heads, 8 KV heads, FFN 8192, vocab 128256, llama3 RoPE)",
)

_causal_lm(
    "llama-7b",
    "LlamaConfig",
    "LlamaForCausalLM",
    LLAMA_2_7B,
    batch=1,
    seq_len=4096,
    recipe_batch=recipes.LLAMA_2,
    summary="Llama 2 7B decoder, causal LM",
    reference="Touvron et al. 2023, arXiv:2307.09288 (Llama 2); meta-llama/Llama-2-7b-hf config.json "
    "(32 layers, 4096 wide, 32 heads, FFN 11008, vocab 32000)",
)

_causal_lm(
    "llama-70b",
    "LlamaConfig",
    "LlamaForCausalLM",
    LLAMA_2_70B,
    batch=1,
    seq_len=4096,
    recipe_batch=recipes.LLAMA_2,
    summary="Llama 2 70B decoder (GQA), causal LM",
    reference="Touvron et al. 2023, arXiv:2307.09288 (Llama 2; 70B uses grouped-query attention); "
    "meta-llama/Llama-2-70b-hf config.json (80 layers, 8192 wide, 64 heads, 8 KV heads, FFN 28672, vocab 32000)",
)
