"""Image classification: an ImageFolder (``DIR/<class>/<image>``), read by torchvision.

Training transforms as torchvision's reference recipe (``references/classification/presets.py``,
``ClassificationPresetTrain``): a random resized crop to the workload's image size, a random
horizontal flip, then ImageNet's mean and standard deviation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from gpuwise.errors import GpuwiseError
from gpuwise.train.data import EpochSeeded, TrainData, item_seed, layout_error
from gpuwise.workloads.registry import Shape, Workload

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def model_classes(workload: Workload) -> int:
    from gpuwise.workloads.vision import NUM_CLASSES

    return NUM_CLASSES


class ImageFolderData(EpochSeeded, Dataset[tuple[torch.Tensor, int]]):
    """(image, label) pairs, augmented with (seed, epoch, index) as the only source of randomness."""

    def __init__(self, folder: Any, seed: int) -> None:
        self.folder = folder
        self.seed = seed

    def __len__(self) -> int:
        return len(self.folder)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        # torchvision's transforms draw from the global RNG: seed it for this item, and put it back.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(item_seed(self.seed, self.epoch, index))
            try:
                image, label = self.folder[index]
            except OSError as e:  # PIL: truncated or not an image after all
                path = self.folder.samples[index][0]
                raise GpuwiseError(f"--data: cannot read image {path} ({e}); remove or replace it") from e
        return image, label


def collate_images(items: list[tuple[torch.Tensor, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.stack([image for image, _ in items])
    labels = torch.tensor([label for _, label in items], dtype=torch.int64)
    return images, labels


def open_image_folder(workload: Workload, shape: Shape, root: Path, seed: int) -> TrainData:
    from torchvision import datasets, transforms

    if not root.is_dir():
        raise layout_error(workload, root, "is a file, not a folder")
    assert shape.image_size is not None
    transform = transforms.Compose([
        transforms.RandomResizedCrop(shape.image_size),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])
    try:
        folder = datasets.ImageFolder(str(root), transform=transform)
    except FileNotFoundError as e:  # no class subfolders, or no image in any of them
        raise layout_error(workload, root, f"no images in class subfolders ({str(e).rstrip('.')})") from e
    outputs = model_classes(workload)
    if len(folder.classes) > outputs:
        raise GpuwiseError(
            f"--data {root}: {len(folder.classes)} classes but {workload.name} has {outputs} outputs; "
            f"merge classes or keep at most {outputs} subfolders"
        )
    return TrainData(
        dataset=ImageFolderData(folder, seed),
        collate=collate_images,
        layout="ImageFolder",
        description=f"ImageFolder {root}: {len(folder):,} images in {len(folder.classes)} classes "
        f"(of {outputs} outputs), crops {shape.image_size}x{shape.image_size}",
    )
