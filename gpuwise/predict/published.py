"""The published measurements shipped with gpuwise, mapped onto zoo workloads.

Every row is either mapped to a zoo workload with the same settings, or skipped with
its reason — never dropped silently.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from importlib import resources

# NVIDIA's model names -> (zoo workload, the optimizer their recipe uses, as the closest gpuwise optimizer).
# Their recipes step a fused (apex multi-tensor) optimizer, except GNMT's: seq2seq/train/trainer.py
# builds ``torch.optim.__dict__[opt_name]``, plain torch.optim.Adam, one kernel per elementwise op.
_EAGER_OPTIMIZER = {"gnmt"}
_MODELS = {
    "resnet50v1.5": ("resnet50", "sgd-momentum"),  # SGD with momentum 0.875
    "efficientnet-b0": ("efficientnet_b0", "sgd-momentum"),  # RMSprop: one state tensor, like momentum
    "SSD300 (ResNet-50 backbone)": ("ssd300", "sgd-momentum"),
    "GNMT v2 (8-layer LSTM enc/dec)": ("gnmt", "adam"),
}
_PRECISIONS = {"FP32": "fp32", "TF32": "tf32", "AMP-FP16": "amp-fp16"}


@dataclass(frozen=True)
class PublishedRow:
    index: int  # line in the CSV, header = 1
    model: str
    task: str
    gpu: str
    num_gpus: int
    precision: str
    batch_per_gpu: int | None
    throughput: float
    unit: str
    source: str
    notes: str

    @property
    def suspect(self) -> bool:
        return "SUSPECT" in self.notes


@dataclass(frozen=True)
class MappedRow:
    row: PublishedRow
    workload: str
    precision: str  # gpuwise precision name
    optimizer: str
    batch_size: int
    seq_len: int | None
    counts_tokens: bool  # throughput in tokens/s (else samples/s)
    fused_optimizer: bool = True  # the recipe's optimizer step is one multi-tensor kernel


def load_published() -> list[PublishedRow]:
    text = resources.files("gpuwise.data").joinpath("published_training_throughput.csv").read_text()
    rows = []
    for i, r in enumerate(csv.DictReader(text.splitlines()), start=2):
        rows.append(
            PublishedRow(
                index=i, model=r["model"], task=r["task"], gpu=r["gpu"], num_gpus=int(r["num_gpus"]),
                precision=r["precision"], batch_per_gpu=int(r["batch_per_gpu"]) if r["batch_per_gpu"] else None,
                throughput=float(r["throughput"]), unit=r["unit"], source=r["source"], notes=r["notes"],
            )
        )
    return rows


def map_row(row: PublishedRow) -> MappedRow | str:
    """The zoo workload and settings of a published row, or why there is none."""
    if row.batch_per_gpu is None:
        return "the source gives no batch size"
    precision = _PRECISIONS.get(row.precision)
    if precision is None:
        return f"precision {row.precision} is not one gpuwise models"
    seq_len: int | None
    if row.model == "BERT-large":
        if "SQuAD" in row.task:
            workload, seq_len = "bert-large-squad", 384
        else:
            match = re.search(r"seq len (\d+)", row.notes)
            if not match:
                return "sequence length not stated"
            workload, seq_len = "bert-large", int(match.group(1))
        return MappedRow(row, workload, precision, "adamw", row.batch_per_gpu, seq_len, counts_tokens=False)
    if row.model not in _MODELS:
        return "no zoo workload with this model"
    workload, optimizer = _MODELS[row.model]
    tokens = row.unit == "tokens/s"
    seq_len = 50 if workload == "gnmt" else None  # NVIDIA's --train-max-length
    return MappedRow(
        row, workload, precision, optimizer, row.batch_per_gpu, seq_len, counts_tokens=tokens,
        fused_optimizer=workload not in _EAGER_OPTIMIZER,
    )
