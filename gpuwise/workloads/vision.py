"""Image classification: torchvision CNNs and ViT, built without weights."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gpuwise.workloads.registry import Shape, Workload, register

NUM_CLASSES = 1000  # ImageNet-1k, the setting every published number uses


def image_batch(batch_size: int, shape: Shape, num_classes: int = NUM_CLASSES) -> tuple[torch.Tensor, torch.Tensor]:
    """Synthetic ImageNet-like images (N, 3, H, W) and integer labels."""
    assert shape.image_size is not None
    images = torch.randn(batch_size, 3, shape.image_size, shape.image_size)
    labels = torch.randint(0, num_classes, (batch_size,))
    return images, labels


def classification_loss(model: nn.Module, batch: Any) -> torch.Tensor:
    images, labels = batch
    return F.cross_entropy(model(images), labels)


def _torchvision(name: str) -> Callable[[Shape], nn.Module]:
    def build(shape: Shape) -> nn.Module:
        import torchvision

        kwargs: dict[str, Any] = {"weights": None, "num_classes": NUM_CLASSES}
        if name.startswith("vit"):
            kwargs["image_size"] = shape.image_size  # ViT's position embeddings fix the size
        return torchvision.models.get_model(name, **kwargs).train()

    return build


def _register(name: str, batch: int, summary: str, reference: str) -> None:
    register(
        Workload(
            name=name,
            family="image classification",
            sample_unit="image",
            default_batch_size=batch,
            summary=summary,
            build_model=_torchvision(name),
            make_batch=image_batch,
            forward_loss=classification_loss,
            default_shape=Shape(image_size=224),
            reference=reference,
            data_layout="images",
        )
    )


_register("resnet18", 256, "ResNet-18 CNN, 224x224", "He et al. 2015, arXiv:1512.03385; torchvision")
_register("resnet50", 256, "ResNet-50 v1.5 CNN, 224x224", "He et al. 2015, arXiv:1512.03385; torchvision")
_register(
    "mobilenet_v3_large", 256, "MobileNetV3-Large, depthwise convs", "Howard et al. 2019, arXiv:1905.02244; torchvision"
)
_register("efficientnet_b0", 256, "EfficientNet-B0, depthwise convs", "Tan & Le 2019, arXiv:1905.11946; torchvision")
_register("vit_b_16", 128, "Vision Transformer B/16", "Dosovitskiy et al. 2020, arXiv:2010.11929; torchvision")
