"""Semantic segmentation: ``DIR/images/<stem>.(jpg|png)`` and ``DIR/masks/<stem>.png``.

A mask pixel is the class index; 255 is ignored, as in Pascal VOC's SegmentationClass (which marks
object edges 255) and as the zoo's ``segmentation_loss`` treats it (``ignore_index=255``). Training
transforms as torchvision's reference recipe (``references/segmentation/presets.py``,
``SegmentationPresetTrain``): random resize of the shorter side to 0.5-2x the base size (base =
image size x 520/480, the recipe's 520 for 480 crops), random horizontal flip, random crop to the
image size padded with 255 in the mask, ImageNet normalisation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from gpuwise.errors import GpuwiseError
from gpuwise.train.data import EpochSeeded, TrainData, item_seed, layout_error
from gpuwise.train.layouts.images import IMAGENET_MEAN, IMAGENET_STD
from gpuwise.workloads.registry import Shape, Workload

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
IGNORE = 255
MASK_MODES = ("P", "L", "I", "I;16")  # single channel: palette indices (VOC) or grey values


def model_classes(workload: Workload) -> int:
    from gpuwise.workloads.segmentation import UNET_CLASSES, VOC_CLASSES

    return UNET_CLASSES if workload.name == "unet" else VOC_CLASSES


def read_mask(path: Path, num_classes: int) -> np.ndarray[Any, Any]:
    """A mask's class indices, refused when a pixel is neither a class of the model nor 255."""
    from PIL import Image

    with Image.open(path) as image:
        if image.mode not in MASK_MODES:
            raise GpuwiseError(
                f"--data: mask {path} is {image.mode}, not one channel; save masks as PNGs whose pixel "
                "is the class index (mode P or L)"
            )
        mask = np.array(image)
    bad = (mask >= num_classes) & (mask != IGNORE)
    if bad.any():
        raise GpuwiseError(
            f"--data: mask {path} has class {int(mask[bad].max())}, but the model predicts {num_classes} "
            f"classes (0-{num_classes - 1}); relabel it, or mark pixels to skip with 255"
        )
    return mask.astype(np.uint8)


class SegmentationData(EpochSeeded, Dataset[tuple[torch.Tensor, torch.Tensor]]):
    def __init__(self, pairs: list[tuple[Path, Path]], num_classes: int, transform: Any, seed: int) -> None:
        self.pairs = pairs
        self.num_classes = num_classes
        self.transform = transform
        self.seed = seed

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        from PIL import Image
        from torchvision import tv_tensors
        from torchvision.transforms.v2.functional import pil_to_tensor

        image_path, mask_path = self.pairs[index]
        with Image.open(image_path) as opened:
            image = tv_tensors.Image(pil_to_tensor(opened.convert("RGB")))
        mask = tv_tensors.Mask(torch.from_numpy(read_mask(mask_path, self.num_classes)))
        if image.shape[-2:] != mask.shape[-2:]:
            raise GpuwiseError(
                f"--data: image {image_path} is {tuple(image.shape[-2:])} but its mask is "
                f"{tuple(mask.shape[-2:])} (height, width); a mask must match its image"
            )
        with torch.random.fork_rng(devices=[]):  # v2 transforms draw from the global RNG
            torch.manual_seed(item_seed(self.seed, self.epoch, index))
            image, mask = self.transform(image, mask)
        return image.as_subclass(torch.Tensor), mask.as_subclass(torch.Tensor).long()


def collate_segmentation(items: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.stack([image for image, _ in items]), torch.stack([mask for _, mask in items])


def _pairs(workload: Workload, root: Path) -> list[tuple[Path, Path]]:
    images_dir, masks_dir = root / "images", root / "masks"
    if not images_dir.is_dir() or not masks_dir.is_dir():
        missing = " and ".join(str(d.name) + "/" for d in (images_dir, masks_dir) if not d.is_dir())
        raise layout_error(workload, root, f"no {missing} folder")
    masks = {p.stem: p for p in masks_dir.iterdir() if p.suffix.lower() == ".png"}
    images = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise layout_error(workload, root, "no .jpg or .png in images/")
    unmasked = [p.name for p in images if p.stem not in masks]
    if unmasked:
        raise layout_error(
            workload, root, f"{len(unmasked)} of {len(images)} images have no masks/<stem>.png (first: {unmasked[0]})"
        )
    return [(p, masks[p.stem]) for p in images]


def open_segmentation(workload: Workload, shape: Shape, root: Path, seed: int) -> TrainData:
    import torchvision.transforms.v2 as T
    from torchvision import tv_tensors

    if not root.is_dir():
        raise layout_error(workload, root, "is a file, not a folder")
    pairs = _pairs(workload, root)
    assert shape.image_size is not None
    size = shape.image_size
    base = round(size * 520 / 480)
    transform = T.Compose([
        T.RandomResize(base // 2, 2 * base),
        T.RandomHorizontalFlip(),
        T.RandomCrop(size, pad_if_needed=True, fill={tv_tensors.Mask: IGNORE, "others": 0}),
        T.ToDtype({tv_tensors.Image: torch.float32, "others": None}, scale=True),
        T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])
    classes = model_classes(workload)
    return TrainData(
        dataset=SegmentationData(pairs, classes, transform, seed),
        collate=collate_segmentation,
        layout="images+masks",
        description=f"segmentation {root}: {len(pairs):,} images with masks, {classes} classes "
        f"(255 ignored), crops {size}x{size}",
    )
