"""An example of your own workload for gpuwise.

    gpuwise profile examples/my_model.py:build --batch-size 32

The factory takes no arguments and returns ``gpuwise.UserWorkload``: the model,
a function that makes a synthetic batch of N samples with torch factory
functions (gpuwise calls it on fake tensors, so no data is read), and the loss
of a batch, forward pass included.
"""

import torch
import torch.nn.functional as F
from torch import nn

import gpuwise


class SmallConvNet(nn.Module):
    """A CIFAR-sized CNN: three conv blocks and a linear classifier."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for width in (64, 128, 256):
            layers += [nn.Conv2d(channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2)]
            channels = width
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(256 * 4 * 4, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


def make_batch(batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(batch_size, 3, 32, 32), torch.randint(0, 10, (batch_size,))


def loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    images, labels = batch
    return F.cross_entropy(model(images), labels)


def build() -> gpuwise.UserWorkload:
    return gpuwise.UserWorkload(
        model=SmallConvNet(), make_batch=make_batch, loss=loss, sample_unit="image", default_batch_size=128
    )
