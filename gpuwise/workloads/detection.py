"""Object detection: torchvision Faster R-CNN and RetinaNet, and NVIDIA's SSD300 (ResNet-50).

Faster R-CNN and RetinaNet are torchvision's models, built as torchvision's
builders build them for training from an ImageNet backbone (its reference
recipe passes ``--weights-backbone``): ``FrozenBatchNorm2d`` in the ResNet-50
and ``trainable_backbone_layers=3`` (conv1 and layer1 frozen), but with random
weights, so nothing is downloaded. This is also the configuration whose
parameter counts torchvision documents. (Its builders called with
``weights_backbone=None`` would instead train every layer with plain
``BatchNorm2d``, a from-scratch setup nobody benchmarks.)

``image_size`` is the side of the synthetic square images and also the
transform's ``min_size`` (with ``max_size = max(1333, image_size)``), so
``GeneralizedRCNNTransform`` keeps the size it is given rather than rescaling
every input to 800: the option changes the work. The default, 800, is the
size torchvision trains at (shorter side 800); a typical 4:3 COCO image
becomes 800x1066 (padded to 800x1088), so 800x800 is about three quarters of
that area.

Training these two is data dependent (anchor matching, NMS, box sampling);
under fake tensors run them inside ``gpuwise.profile.datadep.DataDependentShapes``,
which states those sizes and records them. With real tensors they need nothing.

``ssd300`` is written here after NVIDIA's DeepLearningExamples
(PyTorch/Detection/SSD, ``ssd/model.py``): ResNet-50 up to layer3 with
layer3's stride set to 1 (38x38x1024 features), five extra feature blocks,
4/6/6/6/4/4 default boxes per location (8732), 81 classes, and NVIDIA's loss
(smooth L1 on positives, cross entropy with 3:1 hard negative mining by
sorting). As in NVIDIA's training, the targets come already encoded per
default box (their DALI pipeline encodes on the CPU), so the training step has
no data-dependent op. Its default boxes fix the input at 300x300, so it takes
no ``image_size``.
"""

from __future__ import annotations

import math
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn
from torch._subclasses.fake_tensor import DataDependentOutputException, DynamicOutputShapeException

from gpuwise.errors import GpuwiseError
from gpuwise.workloads.registry import Shape, Workload, register

NUM_CLASSES = 91  # COCO category ids 1-90 plus background, as torchvision numbers them
BOXES_PER_IMAGE = 4  # ground-truth boxes per synthetic image (COCO averages ~7)
TRAINABLE_BACKBONE_LAYERS = 3  # torchvision's default when the backbone is pretrained
MAX_SIZE = 1333  # GeneralizedRCNNTransform's default max_size


def synthetic_boxes(count: int, scale: float) -> torch.Tensor:
    """``count`` valid (x1, y1, x2, y2) boxes with sides 10-40% of ``scale``, inside [0, scale]."""
    corner = torch.rand(count, 2) * (0.6 * scale)
    side = (0.1 + 0.3 * torch.rand(count, 2)) * scale
    return torch.cat([corner, corner + side], dim=1)


def detection_batch(batch_size: int, shape: Shape) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    """Images in [0, 1] (the transform normalises them) and per-image targets, as torchvision takes them."""
    assert shape.image_size is not None
    size = shape.image_size
    images = [torch.rand(3, size, size) for _ in range(batch_size)]
    targets = [
        {
            "boxes": synthetic_boxes(BOXES_PER_IMAGE, float(size)),
            "labels": torch.randint(1, NUM_CLASSES, (BOXES_PER_IMAGE,)),
        }
        for _ in range(batch_size)
    ]
    return images, targets


def detection_loss(model: nn.Module, batch: Any) -> torch.Tensor:
    """The sum of the model's losses, as torchvision's reference training sums them."""
    images, targets = batch
    try:
        losses = model(list(images), list(targets))
    except (DynamicOutputShapeException, DataDependentOutputException) as exc:
        raise GpuwiseError(
            f"{type(model).__name__} training has data-dependent shapes: under FakeTensorMode run it inside "
            "gpuwise.profile.datadep.DataDependentShapes (entered after the fake mode)"
        ) from exc
    return cast(torch.Tensor, sum(losses.values()))


def _transform_sizes(shape: Shape) -> dict[str, int]:
    assert shape.image_size is not None
    return {"min_size": shape.image_size, "max_size": max(MAX_SIZE, shape.image_size)}


def _resnet50_fpn(**fpn: Any) -> nn.Module:
    """ResNet-50-FPN as torchvision's detection builders make it for a pretrained backbone, unweighted."""
    from torchvision.models import resnet50
    from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
    from torchvision.ops.misc import FrozenBatchNorm2d

    return _resnet_fpn_extractor(resnet50(weights=None, norm_layer=FrozenBatchNorm2d), TRAINABLE_BACKBONE_LAYERS, **fpn)


def build_fasterrcnn(shape: Shape) -> nn.Module:
    """torchvision's ``fasterrcnn_resnet50_fpn`` (v1) with its default RPN/ROI settings.

    Training: the RPN keeps the 2000 best proposals per feature level before NMS and
    2000 per image after it, and samples 256 anchors per image for its loss (half
    positive at most); the ROI heads sample 512 proposals per image (a quarter
    positive at most).
    """
    from torchvision.models.detection import FasterRCNN

    return FasterRCNN(_resnet50_fpn(), num_classes=NUM_CLASSES, **_transform_sizes(shape)).train()


def build_retinanet(shape: Shape) -> nn.Module:
    """torchvision's ``retinanet_resnet50_fpn`` (v1): P3-P7, 9 anchors per location, focal loss."""
    from torchvision.models.detection import RetinaNet
    from torchvision.ops.feature_pyramid_network import LastLevelP6P7

    backbone = _resnet50_fpn(returned_layers=[2, 3, 4], extra_blocks=LastLevelP6P7(256, 256))
    return RetinaNet(backbone, NUM_CLASSES, **_transform_sizes(shape)).train()


# -- SSD300, after NVIDIA DeepLearningExamples PyTorch/Detection/SSD ---------------------

SSD_SIZE = 300
SSD_CLASSES = 81  # COCO's 80 plus background, as NVIDIA's SSD300
SSD_FEATURE_SIZES = (38, 19, 10, 5, 3, 1)
SSD_STEPS = (8, 16, 32, 64, 100, 300)
SSD_SCALES = (21, 45, 99, 153, 207, 261, 315)
SSD_ASPECT_RATIOS = ((2,), (2, 3), (2, 3), (2, 3), (2,), (2,))
SSD_BOXES_PER_LOCATION = (4, 6, 6, 6, 4, 4)
SSD_SCALE_XY, SSD_SCALE_WH = 0.1, 0.2
SSD_IOU_CRITERIA = 0.5
SSD_NEG_TO_POS = 3


def ssd_default_boxes() -> torch.Tensor:
    """NVIDIA's ``dboxes300_coco()`` as (cx, cy, w, h) in [0, 1]: (8732, 4), built with torch ops."""
    boxes = []
    for idx, cells in enumerate(SSD_FEATURE_SIZES):
        fk = SSD_SIZE / SSD_STEPS[idx]
        sk1, sk2 = SSD_SCALES[idx] / SSD_SIZE, SSD_SCALES[idx + 1] / SSD_SIZE
        sizes = [(sk1, sk1), (math.sqrt(sk1 * sk2), math.sqrt(sk1 * sk2))]
        for alpha in SSD_ASPECT_RATIOS[idx]:
            w, h = sk1 * math.sqrt(alpha), sk1 / math.sqrt(alpha)
            sizes += [(w, h), (h, w)]
        centers = (torch.arange(cells, dtype=torch.float64) + 0.5) / fk
        cy, cx = torch.meshgrid(centers, centers, indexing="ij")  # row-major over (i, j), as NVIDIA's loop
        for w, h in sizes:
            boxes.append(torch.stack([cx.flatten(), cy.flatten(), torch.full_like(cx, w).flatten(),
                                      torch.full_like(cx, h).flatten()], dim=1))
    return torch.cat(boxes).clamp_(min=0, max=1).float()


def _xywh_to_ltrb(boxes: torch.Tensor) -> torch.Tensor:
    center, size = boxes[..., :2], boxes[..., 2:]
    return torch.cat([center - 0.5 * size, center + 0.5 * size], dim=-1)


def _ltrb_to_xywh(boxes: torch.Tensor) -> torch.Tensor:
    return torch.cat([0.5 * (boxes[..., :2] + boxes[..., 2:]), boxes[..., 2:] - boxes[..., :2]], dim=-1)


def ssd_encode(boxes: torch.Tensor, labels: torch.Tensor, dboxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """NVIDIA's ``Encoder.encode`` for a batch, with fixed shapes (``torch.where`` for its mask indexing).

    ``boxes`` (B, G, 4) ltrb in [0, 1], ``labels`` (B, G), ``dboxes`` (D, 4) xywh.
    Returns the per-default-box targets: locations (B, 4, D) xywh and labels (B, D), 0 = background.
    """
    batch, count = labels.shape
    anchors = _xywh_to_ltrb(dboxes)
    lt = torch.max(boxes[:, :, None, :2], anchors[None, None, :, :2])
    rb = torch.min(boxes[:, :, None, 2:], anchors[None, None, :, 2:])
    overlap = (rb - lt).clamp(min=0).prod(dim=-1)
    area_boxes = (boxes[..., 2:] - boxes[..., :2]).prod(dim=-1)
    area_anchors = (anchors[:, 2:] - anchors[:, :2]).prod(dim=-1)
    ious = overlap / (area_boxes[:, :, None] + area_anchors[None, None, :] - overlap)  # (B, G, D)
    best_dbox_ious, best_dbox_idx = ious.max(dim=1)  # best box for each default box
    _, best_bbox_idx = ious.max(dim=2)  # best default box for each box: always matched
    best_dbox_ious.scatter_(1, best_bbox_idx, 2.0)
    best_dbox_idx.scatter_(1, best_bbox_idx, torch.arange(count).expand(batch, count))
    matched = best_dbox_ious > SSD_IOU_CRITERIA
    glabel = torch.where(matched, labels.gather(1, best_dbox_idx), 0)
    gbox = boxes.gather(1, best_dbox_idx[..., None].expand(-1, -1, 4))
    gbox = torch.where(matched[..., None], gbox, anchors)
    return _ltrb_to_xywh(gbox).transpose(1, 2).contiguous(), glabel


class SSD300(nn.Module):
    """NVIDIA's SSD300 with a ResNet-50 backbone (``ssd/model.py``), randomly initialised."""

    def __init__(self, num_classes: int = SSD_CLASSES) -> None:
        from torchvision.models import resnet50

        super().__init__()
        self.label_num = num_classes
        backbone = resnet50(weights=None)
        self.feature_extractor = nn.Sequential(*list(backbone.children())[:7])  # conv1 .. layer3
        conv4_block1: Any = backbone.layer3[0]
        conv4_block1.conv1.stride = (1, 1)
        conv4_block1.conv2.stride = (1, 1)
        conv4_block1.downsample[0].stride = (1, 1)
        out_channels = [1024, 512, 512, 256, 256, 256]
        mid_channels = [256, 256, 128, 128, 128]
        blocks = []
        for i, (cin, cout, mid) in enumerate(zip(out_channels[:-1], out_channels[1:], mid_channels, strict=True)):
            last = (
                nn.Conv2d(mid, cout, kernel_size=3, padding=1, stride=2, bias=False)
                if i < 3
                else nn.Conv2d(mid, cout, kernel_size=3, bias=False)
            )
            blocks.append(
                nn.Sequential(
                    nn.Conv2d(cin, mid, kernel_size=1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
                    last, nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                )
            )
        self.additional_blocks = nn.ModuleList(blocks)
        self.loc = nn.ModuleList(
            nn.Conv2d(oc, nd * 4, kernel_size=3, padding=1)
            for nd, oc in zip(SSD_BOXES_PER_LOCATION, out_channels, strict=True)
        )
        self.conf = nn.ModuleList(
            nn.Conv2d(oc, nd * num_classes, kernel_size=3, padding=1)
            for nd, oc in zip(SSD_BOXES_PER_LOCATION, out_channels, strict=True)
        )
        for layer in [*self.additional_blocks, *self.loc, *self.conf]:
            for param in layer.parameters():
                if param.dim() > 1:
                    nn.init.xavier_uniform_(param)
        # The loss's default boxes (NVIDIA keeps them in its Loss module); not a parameter.
        self.register_buffer("dboxes", ssd_default_boxes().t().unsqueeze(0), persistent=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.feature_extractor(x)
        feeds = [x]
        for block in self.additional_blocks:
            x = block(x)
            feeds.append(x)
        locs = [loc(s).reshape(s.size(0), 4, -1) for s, loc in zip(feeds, self.loc, strict=True)]
        confs = [conf(s).reshape(s.size(0), self.label_num, -1) for s, conf in zip(feeds, self.conf, strict=True)]
        return torch.cat(locs, 2).contiguous(), torch.cat(confs, 2).contiguous()


def ssd_batch(batch_size: int, shape: Shape) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Normalised 300x300 images and their encoded targets (B, 4, 8732) and (B, 8732)."""
    if batch_size < 2:
        raise GpuwiseError(
            "ssd300 needs a batch size of at least 2: BatchNorm in training normalises its 1x1 last feature map "
            "over the batch"
        )
    images = torch.randn(batch_size, 3, SSD_SIZE, SSD_SIZE)
    boxes = torch.stack([synthetic_boxes(BOXES_PER_IMAGE, 1.0) for _ in range(batch_size)])
    labels = torch.randint(1, SSD_CLASSES, (batch_size, BOXES_PER_IMAGE))
    gloc, glabel = ssd_encode(boxes, labels, ssd_default_boxes())
    return images, gloc, glabel


def ssd_loss(model: nn.Module, batch: Any) -> torch.Tensor:
    """NVIDIA's ``Loss.forward`` (``ssd/model.py``) on the model's outputs, in fp32 as NVIDIA's loop casts them."""
    images, gloc, glabel = batch
    ploc, plabel = model(images)
    ploc, plabel = ploc.float(), plabel.float()
    dboxes = cast(torch.Tensor, model.dboxes)
    mask = glabel > 0
    pos_num = mask.sum(dim=1)
    gxy = (gloc[:, :2, :] - dboxes[:, :2, :]) / dboxes[:, 2:, :] / SSD_SCALE_XY
    gwh = (gloc[:, 2:, :] / dboxes[:, 2:, :]).log() / SSD_SCALE_WH
    vec_gd = torch.cat((gxy, gwh), dim=1).contiguous()
    sl1 = F.smooth_l1_loss(ploc, vec_gd, reduction="none").sum(dim=1)
    sl1 = (mask.float() * sl1).sum(dim=1)
    # hard negative mining: the 3 x positives highest-loss negatives
    con = F.cross_entropy(plabel, glabel, reduction="none")
    con_neg = con.clone()
    con_neg[mask] = 0
    _, con_idx = con_neg.sort(dim=1, descending=True)
    _, con_rank = con_idx.sort(dim=1)
    neg_num = torch.clamp(SSD_NEG_TO_POS * pos_num, max=mask.size(1)).unsqueeze(-1)
    neg_mask = con_rank < neg_num
    closs = (con * (mask | neg_mask).float()).sum(dim=1)
    total = sl1 + closs
    num_mask = (pos_num > 0).float()
    return (total * num_mask / pos_num.float().clamp(min=1e-6)).mean(dim=0)


register(
    Workload(
        name="fasterrcnn_resnet50_fpn",
        family="object detection",
        data_layout="detection",
        sample_unit="image",
        default_batch_size=2,
        summary="Faster R-CNN, ResNet-50-FPN, 800x800, 91 classes",
        build_model=build_fasterrcnn,
        make_batch=detection_batch,
        forward_loss=detection_loss,
        default_shape=Shape(image_size=800),
        reference="Ren et al. 2015, arXiv:1506.01497; Lin et al. 2017, arXiv:1612.03144; torchvision",
        data_dependent=True,
    )
)
register(
    Workload(
        name="retinanet_resnet50_fpn",
        family="object detection",
        data_layout="detection",
        sample_unit="image",
        default_batch_size=2,
        summary="RetinaNet, ResNet-50-FPN, focal loss, 800x800, 91 classes",
        build_model=build_retinanet,
        make_batch=detection_batch,
        forward_loss=detection_loss,
        default_shape=Shape(image_size=800),
        reference="Lin et al. 2017, arXiv:1708.02002; torchvision",
        data_dependent=True,
    )
)
register(
    Workload(
        name="ssd300",
        family="object detection",
        data_layout="detection",
        sample_unit="image",
        default_batch_size=64,
        summary="SSD300, ResNet-50 backbone, 300x300, 8732 default boxes, 81 classes",
        build_model=lambda shape: SSD300().train(),
        make_batch=ssd_batch,
        forward_loss=ssd_loss,
        reference="Liu et al. 2016, arXiv:1512.02325; NVIDIA DeepLearningExamples PyTorch/Detection/SSD",
    )
)
