"""Semantic segmentation: torchvision FCN and DeepLabV3 (ResNet-50), and U-Net.

FCN and DeepLabV3 are built as torchvision's reference recipe trains them
(``references/segmentation``: ``--aux-loss``, 480x480 crops, 21 VOC classes,
loss = cross entropy on ``out`` + 0.5 x cross entropy on ``aux``, ignore index
255), with random weights. Their parameter counts are torchvision's documented
ones (which include the auxiliary head).

``unet`` is the U-Net of Ronneberger et al. 2015 (arXiv:1505.04597), written
here: four 2x2 max-pool downsamplings and four 2x2 up-convolutions that halve
the channels, two 3x3 convolutions per level with 64-128-256-512-1024
channels, skip connections by concatenation and a 1x1 output convolution (23
convolutions). Two deviations, both what most modern implementations do:
the 3x3 convolutions are padded (padding=1) so the output has the input's
size rather than the paper's 572 -> 388 valid-convolution shrinkage, and each
is followed by BatchNorm (so it has no bias). It takes RGB input and predicts
2 classes (the paper's foreground/background, with a per-pixel softmax and
cross entropy), at 512x512 (the ISBI 2012 EM images the paper trains on are
512x512).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gpuwise.errors import GpuwiseError
from gpuwise.workloads.registry import Shape, Workload, register

VOC_CLASSES = 21  # Pascal VOC's 20 classes plus background, torchvision's segmentation weights
IGNORE_INDEX = 255  # torchvision's reference criterion ignores this label
AUX_WEIGHT = 0.5  # torchvision's reference criterion: out + 0.5 * aux
UNET_CLASSES = 2
UNET_IN_CHANNELS = 3
UNET_WIDTH = 64  # channels at the first level; doubled at each of the 4 levels below


def segmentation_batch(
    num_classes: int, pooled_batchnorm: str = ""
) -> Callable[[int, Shape], tuple[torch.Tensor, torch.Tensor]]:
    """Synthetic normalised images (N, 3, H, W) and per-pixel labels (N, H, W) in [0, num_classes).

    ``pooled_batchnorm`` names a model whose BatchNorm sees a globally pooled (1x1) map, which
    training cannot normalise over a batch of one.
    """

    def make(batch_size: int, shape: Shape) -> tuple[torch.Tensor, torch.Tensor]:
        assert shape.image_size is not None
        if pooled_batchnorm and batch_size < 2:
            raise GpuwiseError(
                f"{pooled_batchnorm} needs a batch size of at least 2: BatchNorm in training normalises its "
                "globally pooled (1x1) features over the batch"
            )
        size = shape.image_size
        images = torch.randn(batch_size, 3, size, size)
        masks = torch.randint(0, num_classes, (batch_size, size, size))
        return images, masks

    return make


def segmentation_loss(model: nn.Module, batch: Any) -> torch.Tensor:
    """Pixel cross entropy on ``out``, plus 0.5 x that of ``aux`` when the model has the auxiliary head."""
    images, masks = batch
    out = model(images)
    if not isinstance(out, dict):
        return F.cross_entropy(out, masks, ignore_index=IGNORE_INDEX)
    loss = F.cross_entropy(out["out"], masks, ignore_index=IGNORE_INDEX)
    if "aux" in out:
        loss = loss + AUX_WEIGHT * F.cross_entropy(out["aux"], masks, ignore_index=IGNORE_INDEX)
    return loss


def _torchvision(name: str) -> Callable[[Shape], nn.Module]:
    def build(shape: Shape) -> nn.Module:
        import torchvision

        return torchvision.models.get_model(
            name, weights=None, weights_backbone=None, num_classes=VOC_CLASSES, aux_loss=True
        ).train()

    return build


class DoubleConv(nn.Sequential):
    """(3x3 conv, padding 1 -> BatchNorm -> ReLU) twice."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class UNet(nn.Module):
    """U-Net (Ronneberger et al. 2015) with padded convolutions and BatchNorm."""

    def __init__(
        self,
        in_channels: int = UNET_IN_CHANNELS,
        num_classes: int = UNET_CLASSES,
        width: int = UNET_WIDTH,
        depth: int = 4,
    ) -> None:
        super().__init__()
        channels = [width * 2**i for i in range(depth + 1)]  # 64, 128, 256, 512, 1024
        self.inc = DoubleConv(in_channels, channels[0])
        self.down = nn.ModuleList(DoubleConv(channels[i], channels[i + 1]) for i in range(depth))
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(channels[i + 1], channels[i], kernel_size=2, stride=2) for i in reversed(range(depth))
        )
        self.up_conv = nn.ModuleList(DoubleConv(2 * channels[i], channels[i]) for i in reversed(range(depth)))
        self.head = nn.Conv2d(channels[0], num_classes, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.inc(x)
        skips = []
        for down in self.down:
            skips.append(x)
            x = down(F.max_pool2d(x, 2))
        for up, conv in zip(self.up, self.up_conv, strict=True):
            skip = skips.pop()
            x = up(x)
            # Sides not divisible by 16 lose a row/column to pooling: pad back to the skip's size.
            dh, dw = skip.shape[-2] - x.shape[-2], skip.shape[-1] - x.shape[-1]
            if dh or dw:
                x = F.pad(x, [dw // 2, dw - dw // 2, dh // 2, dh - dh // 2])
            x = conv(torch.cat([skip, x], dim=1))
        return self.head(x)


def _register(
    name: str,
    batch: int,
    summary: str,
    reference: str,
    build: Callable[[Shape], nn.Module],
    make_batch: Callable[[int, Shape], tuple[torch.Tensor, torch.Tensor]],
    image_size: int,
) -> None:
    register(
        Workload(
            name=name,
            family="semantic segmentation",
            data_layout="segmentation",
            sample_unit="image",
            default_batch_size=batch,
            summary=summary,
            build_model=build,
            make_batch=make_batch,
            forward_loss=segmentation_loss,
            default_shape=Shape(image_size=image_size),
            reference=reference,
        )
    )


# Default batch sizes: torchvision's recipe trains FCN/DeepLabV3 with 4 images per GPU.
_register(
    "fcn_resnet50",
    4,
    "FCN, dilated ResNet-50, aux head, 480x480, 21 classes",
    "Long et al. 2015, arXiv:1411.4038; torchvision",
    _torchvision("fcn_resnet50"),
    segmentation_batch(VOC_CLASSES),
    480,
)
_register(
    "deeplabv3_resnet50",
    4,
    "DeepLabV3, dilated ResNet-50, ASPP, aux head, 480x480, 21 classes",
    "Chen et al. 2017, arXiv:1706.05587; torchvision",
    _torchvision("deeplabv3_resnet50"),
    segmentation_batch(VOC_CLASSES, pooled_batchnorm="deeplabv3_resnet50 (ASPP image pooling)"),
    480,
)
_register(
    "unet",
    8,
    "U-Net, 64-1024 channels, BatchNorm, 512x512, 2 classes",
    "Ronneberger et al. 2015, arXiv:1505.04597",
    lambda shape: UNet().train(),
    segmentation_batch(UNET_CLASSES),
    512,
)
