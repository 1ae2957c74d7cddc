"""The global batches that published recipes trained the zoo's language models with.

``gpuwise plan`` keeps one of these by default for a language model (``Workload.recipe_batch``): its own
default batch is what one GPU holds (1-8 sequences), and a plan that kept that as the global batch would price
a run nobody makes. Each number is the recipe's own, in tokens per optimizer step over all GPUs, with where it
is written and when that was read. Where a model's makers published no batch for that size, the entry says
whose recipe stands in.
"""

from __future__ import annotations

from gpuwise.workloads.registry import RecipeBatch

GPT2 = RecipeBatch(
    tokens=512 * 1024,
    recipe="the GPT-2 paper's",
    source="Radford et al. 2019, 'Language Models are Unsupervised Multitask Learners', section 2.3 ('we increase "
    "the context size from 512 to 1024 tokens and a larger batchsize of 512 is used'), "
    "https://cdn.openai.com/better-language-models/language_models_are_unsupervised_multitask_learners.pdf "
    "(read 2026-12-06)",
)

LLAMA_2 = RecipeBatch(
    tokens=4 * 2**20,
    recipe="the Llama 2 paper's",
    source="Touvron et al. 2023, arXiv:2307.09288, Table 1 ('All models are trained with a global batch-size of 4M "
    "tokens'; 7B, 13B, 34B and 70B, context 4k), https://arxiv.org/abs/2307.09288 (read 2026-12-06)",
)

# Llama 3's paper gives the 405B's schedule only; the 8B and 70B (and Llama 3.2 1B) get it as the nearest recipe.
LLAMA_3_AT_4K = RecipeBatch(
    tokens=4 * 2**20,
    recipe="the Llama 3 paper's first stage",
    source="Llama Team 2024, 'The Llama 3 Herd of Models', arXiv:2407.21783, section 3.4.1 ('an initial batch size "
    "of 4M tokens and sequences of length 4,096'; the 405B's schedule, none is given for the smaller models), "
    "https://arxiv.org/abs/2407.21783 (read 2026-12-06)",
)
LLAMA_3_AT_8K = RecipeBatch(
    tokens=8 * 2**20,
    recipe="the Llama 3 paper's",
    source="Llama Team 2024, 'The Llama 3 Herd of Models', arXiv:2407.21783, section 3.4.1 ('double these values "
    "to a batch size of 8M sequences of 8,192 tokens after pre-training 252M tokens'; the 405B's schedule, none is "
    "given for the 8B and 70B), https://arxiv.org/abs/2407.21783 (read 2026-12-06)",
)

TINYLLAMA = RecipeBatch(
    tokens=2048 * 1024,
    recipe="TinyLlama's",
    source="TinyLlama README, 'Training Details' ('Batch Size: 2 million tokens (2048 * 1024)', sequence length "
    "2048), https://github.com/jzhang38/TinyLlama; Zhang et al. 2024, arXiv:2401.02385 (read 2026-12-06)",
)
