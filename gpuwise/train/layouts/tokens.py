"""Language models: a flat file of token ids, memory-mapped with numpy.

The file's name says how its ids are stored (no flag needed):

- ``FILE.npy``: a 1-D integer array saved by ``numpy.save``, which records its own dtype;
- ``FILE.bin`` or ``FILE.u16.bin``: raw uint16, nanoGPT's ``train.bin`` convention;
- ``FILE.u32.bin``: raw uint32, for vocabularies past 65,535 ids (Llama 3's 128,256). For such a
  model a plain ``.bin`` is refused as ambiguous: it must say ``.u16.bin`` or ``.u32.bin``.

Samples are the non-overlapping windows of ``--seq-len`` tokens (the tail that does not fill one is
dropped). Causal LMs (gpt2, llama-*) read a window as it is; the model shifts it by one for its
labels. BERT pre-training (bert-base, bert-large) builds, from window i, ``[CLS] A [SEP] B [SEP]``:
A and B split the window at a random point, and half the time B is replaced by a span of another
window (next-sentence label 1, as transformers numbers "not next"); then 15% of the positions
(``masked_count``, rounded, as Google's create_pretraining_data.py), chosen among the non-special ones, are
predicted, of which 80% become ``[MASK]``, 10% a random token and 10% stay
(Devlin et al. 2018, section 3.1). The ids are taken to be BERT's uncased WordPiece vocabulary
(``bert-base-uncased``'s vocab.txt: [CLS] 101, [SEP] 102, [MASK] 103), the one NVIDIA's recipe uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from gpuwise.errors import GpuwiseError
from gpuwise.train.data import EpochSeeded, TrainData, layout_error
from gpuwise.workloads.registry import Shape, Workload

CLS, SEP, MASK = 101, 102, 103  # bert-base-uncased vocab.txt
BERT_SPECIAL = 3  # [CLS] A [SEP] B [SEP]
SCAN_CHUNK = 1 << 24  # tokens read at a time when checking the ids
BERT_WORKLOADS = ("bert-base", "bert-large")


def model_vocab(workload: Workload) -> int:
    from gpuwise.workloads.language import BERT_VOCAB, CAUSAL_LM_VOCAB

    return BERT_VOCAB if workload.name in BERT_WORKLOADS else CAUSAL_LM_VOCAB[workload.name]


def open_token_file(workload: Workload, path: Path, vocab: int) -> np.ndarray[Any, Any]:
    """The file's ids as a read-only memory map, its format taken from its name."""
    name = path.name
    if path.is_dir():
        raise layout_error(workload, path, "is a folder, not a token file")
    if name.endswith(".npy"):
        try:
            tokens: np.ndarray[Any, Any] = np.load(path, mmap_mode="r", allow_pickle=False)
        except ValueError as e:
            raise layout_error(workload, path, f"not a numpy array file ({e})") from e
        if tokens.ndim != 1 or tokens.dtype.kind not in "iu":
            raise layout_error(workload, path, f"holds a {tokens.ndim}-D {tokens.dtype} array, not 1-D integers")
        return tokens
    if name.endswith(".u32.bin"):
        dtype: Any = np.uint32
    elif name.endswith(".u16.bin"):
        dtype = np.uint16
    elif name.endswith(".bin"):
        if vocab > 1 << 16:
            raise GpuwiseError(
                f"--data {path}: {workload.name}'s vocabulary ({vocab:,}) does not fit uint16, so a plain .bin is "
                "ambiguous; rename it FILE.u32.bin (uint32 ids) or FILE.u16.bin (uint16 ids)"
            )
        dtype = np.uint16
    else:
        raise layout_error(workload, path, "not a token file by its name")
    itemsize = np.dtype(dtype).itemsize
    if path.stat().st_size % itemsize:
        raise layout_error(workload, path, f"its size is not a whole number of {itemsize}-byte ids")
    if path.stat().st_size == 0:
        raise layout_error(workload, path, "is empty")
    return np.memmap(path, dtype=dtype, mode="r")


def check_ids(workload: Workload, path: Path, tokens: np.ndarray[Any, Any], vocab: int) -> None:
    """Every id must be a row of the model's embedding; read in chunks, so a large file is not loaded whole."""
    for start in range(0, len(tokens), SCAN_CHUNK):
        chunk = tokens[start : start + SCAN_CHUNK]
        high, low = int(chunk.max()), int(chunk.min())
        if high >= vocab or low < 0:
            bad = high if high >= vocab else low
            raise GpuwiseError(
                f"--data {path}: token id {bad} is outside {workload.name}'s vocabulary (0-{vocab - 1}); "
                "tokenize with the model's tokenizer, or check the file's dtype (.u16.bin/.u32.bin/.npy)"
            )


class CausalWindows(Dataset[torch.Tensor]):
    def __init__(self, tokens: np.ndarray[Any, Any], seq_len: int) -> None:
        self.tokens = tokens
        self.seq_len = seq_len

    def __len__(self) -> int:
        return len(self.tokens) // self.seq_len

    def window(self, index: int, length: int | None = None) -> torch.Tensor:
        start = index * self.seq_len
        return torch.from_numpy(self.tokens[start : start + (length or self.seq_len)].astype(np.int64))

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.window(index)


def collate_causal(items: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    return {"input_ids": torch.stack(items)}


class BertPairs(EpochSeeded, CausalWindows):
    """Masked-LM and next-sentence examples, each from one window (and, for "not next", a second)."""

    def __init__(self, tokens: np.ndarray[Any, Any], seq_len: int, vocab: int, seed: int) -> None:
        super().__init__(tokens, seq_len)
        self.vocab = vocab
        self.seed = seed

    # A dict where the windows give a tensor: the collate differs too, and the loop only passes items through.
    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:  # type: ignore[override]
        from gpuwise.workloads.language import IGNORE_INDEX, masked_count

        g = self.item_generator(index)
        content = self.seq_len - BERT_SPECIAL
        first = self.window(index, content)
        split = int(torch.randint(1, content, (), generator=g))
        a, b = first[:split], first[split:]
        not_next = len(self) > 1 and bool(torch.rand((), generator=g) < 0.5)
        if not_next:
            other = int(torch.randint(0, len(self) - 1, (), generator=g))
            other += other >= index  # any window but this one
            b = self.window(other, content)[: content - split]
        input_ids = torch.cat([torch.tensor([CLS]), a, torch.tensor([SEP]), b, torch.tensor([SEP])])
        token_type_ids = (torch.arange(self.seq_len) >= split + 2).long()  # [CLS] A [SEP] is segment 0
        special = torch.zeros(self.seq_len, dtype=torch.bool)  # by position: the ids may occur in the text too
        special[0] = special[split + 1] = special[-1] = True
        # masked_count of the non-special positions, chosen at random (as Google's create_pretraining_data.py)
        order = torch.randperm(self.seq_len, generator=g)
        chosen = order[~special[order]][: min(masked_count(self.seq_len), self.seq_len - BERT_SPECIAL)]
        predicted = torch.zeros(self.seq_len, dtype=torch.bool)
        predicted[chosen] = True
        labels = torch.where(predicted, input_ids, IGNORE_INDEX)
        roll = torch.rand(self.seq_len, generator=g)
        masked = input_ids.clone()
        masked[predicted & (roll < 0.8)] = MASK
        random_ids = torch.randint(0, self.vocab, (self.seq_len,), generator=g)
        swap = predicted & (roll >= 0.8) & (roll < 0.9)
        masked[swap] = random_ids[swap]
        return {
            "input_ids": masked,
            "token_type_ids": token_type_ids,
            "labels": labels,
            "next_sentence_label": torch.tensor(int(not_next)),
        }


def collate_bert(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {key: torch.stack([item[key] for item in items]) for key in items[0]}


def open_tokens(workload: Workload, shape: Shape, path: Path, seed: int) -> TrainData:
    assert shape.seq_len is not None
    vocab = model_vocab(workload)
    tokens = open_token_file(workload, path, vocab)
    bert = workload.name in BERT_WORKLOADS
    if bert and shape.seq_len <= BERT_SPECIAL + 1:
        raise GpuwiseError(f"--seq-len {shape.seq_len} leaves no room for two sentences; use --seq-len 8 or more")
    if len(tokens) < shape.seq_len:
        raise GpuwiseError(
            f"--data {path}: {len(tokens):,} tokens, fewer than one window of --seq-len {shape.seq_len}; "
            f"use --seq-len {len(tokens)} or less, or a larger file"
        )
    check_ids(workload, path, tokens, vocab)
    dataset = BertPairs(tokens, shape.seq_len, vocab, seed) if bert else CausalWindows(tokens, shape.seq_len)
    kind = "masked-LM + next-sentence pairs" if bert else "windows"
    return TrainData(
        dataset=dataset,
        collate=collate_bert if bert else collate_causal,
        layout="token file",
        description=f"tokens {path}: {len(tokens):,} {tokens.dtype} ids, {len(dataset):,} {kind} "
        f"of {shape.seq_len}",
    )
