"""Training data for a workload: a real data set from a folder or file, or synthetic batches.

The contract the training loop relies on (``gpuwise.train.loop``):

- ``open_data(workload, shape, source)`` returns a ``TrainData``; ``source`` is ``"synthetic"`` or a
  path. A path that is missing or laid out wrong for the workload raises ``GpuwiseError`` naming the
  layout the workload expects.
- ``TrainData.dataset`` is a map-style ``torch.utils.data.Dataset`` (``len`` = samples), so the loop can
  wrap it in a ``DistributedSampler`` and remember its position by sample index.
- ``TrainData.collate(items)`` turns a list of dataset items into exactly the batch structure that
  ``workload.forward_loss`` takes (the same structure ``workload.make_batch`` builds), on the CPU; the
  loop moves it to the device.
- Synthetic data is deterministic: the same indices give the same batch, in any process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from gpuwise.errors import GpuwiseError
from gpuwise.workloads.registry import Batch, Shape, Workload


@dataclass(frozen=True)
class TrainData:
    dataset: Dataset[Any]
    collate: Callable[[list[Any]], Batch]
    layout: str  # "synthetic", "ImageFolder", ... as the user would name it
    description: str  # one line for the run's header: what was found where


class SyntheticDataset(Dataset[int]):
    """Sample indices; ``synthetic_collate`` makes the batch from them."""

    def __init__(self, samples: int) -> None:
        self.samples = samples

    def __len__(self) -> int:
        return self.samples

    def __getitem__(self, index: int) -> int:
        return index


def synthetic_collate(workload: Workload, shape: Shape) -> Callable[[list[Any]], Batch]:
    """The workload's synthetic batch, seeded by its first sample index: the same batch in any process."""

    def collate(indices: list[Any]) -> Batch:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(indices[0]))
            return workload.make_batch(len(indices), shape)

    return collate


def open_data(workload: Workload, shape: Shape, source: str | Path, *, synthetic_samples: int = 10_000) -> TrainData:
    if str(source) == "synthetic":
        return TrainData(
            dataset=SyntheticDataset(synthetic_samples), collate=synthetic_collate(workload, shape),
            layout="synthetic", description=f"synthetic {workload.sample_unit}s ({synthetic_samples:,} per epoch)",
        )
    raise GpuwiseError(f"--data {source}: real data sets are not supported yet; use --data synthetic")
