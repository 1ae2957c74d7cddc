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
- ``TrainData.set_epoch(epoch)``, called before each epoch's iterator is made (as
  ``DistributedSampler.set_epoch``), reseeds the random augmentations (crops, flips, BERT's masking):
  each item's randomness comes from (seed, epoch, index) alone, not from the process's RNG or the
  DataLoader's workers, so a resumed run sees the same items as an uninterrupted one.

Each layout lives in ``gpuwise.train.layouts`` (one module per family); they are imported when
used, so opening synthetic data imports neither PIL nor soundfile.
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
    # The shape of an average batch of n when lengths vary (speech: padded to each batch's longest
    # utterance); predictions and FLOPs use it. None: every batch has the workload's shape.
    batch_shape: Callable[[int], Shape] | None = None

    def set_epoch(self, epoch: int) -> None:
        """Reseed the random augmentations for ``epoch`` (a no-op for data without any)."""
        if isinstance(self.dataset, EpochSeeded):
            self.dataset.set_epoch(epoch)


class EpochSeeded:
    """A data set whose per-item randomness is a function of (seed, epoch, index) only.

    Worker processes get a copy of the data set when an epoch's iterator is made, so
    ``set_epoch`` before that reaches them.
    """

    seed: int = 0
    epoch: int = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def item_generator(self, index: int) -> torch.Generator:
        """A generator for item ``index`` this epoch: the same numbers in any process, any order."""
        return torch.Generator().manual_seed(item_seed(self.seed, self.epoch, index))


def item_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed mixing the three (SplitMix64's constants), so neighbouring indices differ everywhere."""
    mask = (1 << 64) - 1
    z = (seed * 0x9E3779B97F4A7C15 + epoch * 0xBF58476D1CE4E5B9 + index * 0x94D049BB133111EB + 1) & mask
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    return (z ^ (z >> 31)) >> 1


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


def open_data(
    workload: Workload, shape: Shape, source: str | Path, *, synthetic_samples: int = 10_000, seed: int = 0
) -> TrainData:
    if str(source) == "synthetic":
        return TrainData(
            dataset=SyntheticDataset(synthetic_samples), collate=synthetic_collate(workload, shape),
            layout="synthetic", description=f"synthetic {workload.sample_unit}s ({synthetic_samples:,} per epoch)",
        )
    path = Path(source)
    opener = _opener(workload)  # before looking at the path: a synthetic-only workload says so first
    if not path.exists():
        raise GpuwiseError(f"--data {source}: no such file or folder; {expected_layout(workload)}")
    return opener(workload, shape, path, seed)


Opener = Callable[[Workload, Shape, Path, int], TrainData]


def _opener(workload: Workload) -> Opener:
    """The layout module that reads real data for this workload's family."""
    if workload.family == "user":
        raise GpuwiseError(
            f"--data: workload '{workload.name}' is your own, so gpuwise cannot read a data set for it; "
            "use --data synthetic (your make_batch)"
        )
    layout = workload.data_layout
    if layout is None:
        raise GpuwiseError(f"--data: workload '{workload.name}' trains on synthetic data only; use --data synthetic")
    if layout == "images":
        from gpuwise.train.layouts.images import open_image_folder

        return open_image_folder
    if layout == "segmentation":
        from gpuwise.train.layouts.segmentation import open_segmentation

        return open_segmentation
    if layout == "detection":
        from gpuwise.train.layouts.detection import open_coco

        return open_coco
    if layout == "speech":
        from gpuwise.train.layouts.speech import open_speech

        return open_speech
    if layout == "tokens":
        from gpuwise.train.layouts.tokens import open_tokens

        return open_tokens
    raise AssertionError(f"workload '{workload.name}' names data_layout '{layout}', not one of {', '.join(LAYOUTS)}")


# One line per layout (a registry entry's ``data_layout``): what --data must look like. Every wrong-layout error
# ends with it.
LAYOUTS = {
    "images": "expected an ImageFolder: DIR/<class>/<image>.(jpg|png|...), one subfolder per class",
    "segmentation": "expected DIR/images/<stem>.(jpg|png) and DIR/masks/<stem>.png "
    "(pixel = class index, 255 = ignore), as Pascal VOC's SegmentationClass",
    "detection": "expected COCO style: DIR/annotations.json (images, annotations with bbox [x,y,w,h] and "
    "category_id, categories) and the images under DIR/images/ or at their file_name relative to DIR",
    "speech": "expected DIR/<stem>.(wav|flac) at 16 kHz, each with DIR/<stem>.txt holding its transcript "
    "(or LibriSpeech's <speaker>-<chapter>.trans.txt beside them)",
    "tokens": "expected a token file: FILE.npy (1-D integer array), FILE.bin or FILE.u16.bin (uint16, "
    "nanoGPT's format) or FILE.u32.bin (uint32)",
}


def expected_layout(workload: Workload) -> str:
    return LAYOUTS.get(workload.data_layout or "", "use --data synthetic")


def layout_error(workload: Workload, source: Path, problem: str) -> GpuwiseError:
    """The one-line error for data laid out wrong: what is wrong, then the layout expected."""
    return GpuwiseError(f"--data {source}: {problem}; {expected_layout(workload)}")
