"""Segmentation and detection workloads: fake-tensor training steps, parameter counts, stated sizes."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils.flop_counter import FlopCounterMode

from gpuwise.errors import GpuwiseError
from gpuwise.fake import skip_weight_init
from gpuwise.profile.datadep import DataDependentError, DataDependentShapes, Rule
from gpuwise.workloads import Workload, get_workload
from gpuwise.workloads.detection import SSD300, ssd_default_boxes, ssd_encode, synthetic_boxes

SEGMENTATION = ["fcn_resnet50", "deeplabv3_resnet50", "unet"]
DETECTION = ["fasterrcnn_resnet50_fpn", "retinanet_resnet50_fpn", "ssd300"]


def _fake_step(w: Workload, batch_size: int, image_size: int | None) -> tuple[torch.nn.Module, DataDependentShapes]:
    shape = w.resolve_shape(image_size=image_size) if image_size and w.options else w.resolve_shape()
    with FakeTensorMode(), DataDependentShapes() as datadep:
        with skip_weight_init():
            model = w.build_model(shape)
        loss = w.forward_loss(model, w.make_batch(batch_size, shape))
        assert loss.shape == ()
        loss.backward()
    return model, datadep


def _count(w: Workload) -> tuple[int, int]:
    with FakeTensorMode(), skip_weight_init():
        model = w.build_model(w.default_shape)
    return sum(p.numel() for p in model.parameters()), sum(p.numel() for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("name", SEGMENTATION + DETECTION)
def test_fake_training_step(name: str) -> None:
    w = get_workload(name)
    assert w.family == ("semantic segmentation" if name in SEGMENTATION else "object detection")
    assert w.sample_unit == "image"
    model, _ = _fake_step(w, 2, 256)
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_default_shapes() -> None:
    sizes = {name: get_workload(name).default_shape.image_size for name in SEGMENTATION + DETECTION}
    # torchvision's segmentation crop, U-Net on 512x512 tiles, torchvision's detection min_size; SSD300 is fixed
    assert sizes == {
        "fcn_resnet50": 480,
        "deeplabv3_resnet50": 480,
        "unet": 512,
        "fasterrcnn_resnet50_fpn": 800,
        "retinanet_resnet50_fpn": 800,
        "ssd300": None,
    }
    with pytest.raises(GpuwiseError, match="--image-size does not apply"):
        get_workload("ssd300").resolve_shape(image_size=512)


@pytest.mark.parametrize(
    ("name", "weights"),
    [
        ("fcn_resnet50", "FCN_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1"),
        ("deeplabv3_resnet50", "DeepLabV3_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1"),
        ("fasterrcnn_resnet50_fpn", "FasterRCNN_ResNet50_FPN_Weights.COCO_V1"),
        ("retinanet_resnet50_fpn", "RetinaNet_ResNet50_FPN_Weights.COCO_V1"),
    ],
)
def test_parameter_counts_match_torchvision(name: str, weights: str) -> None:
    # torchvision documents these in each weights' meta["num_params"] (and its model docs):
    # fcn 35,322,218; deeplabv3 42,004,074; faster r-cnn 41,755,286; retinanet 34,014,999.
    documented = {
        "fcn_resnet50": 35_322_218,
        "deeplabv3_resnet50": 42_004_074,
        "fasterrcnn_resnet50_fpn": 41_755_286,
        "retinanet_resnet50_fpn": 34_014_999,
    }[name]
    assert torchvision.models.get_weight(weights).meta["num_params"] == documented
    total, trainable = _count(get_workload(name))
    assert total == documented
    if name in SEGMENTATION:
        assert trainable == total
    else:
        # FrozenBatchNorm2d and trainable_backbone_layers=3: conv1 (9,408) and layer1 (212,992) frozen
        assert total - trainable == 9_408 + 212_992


def test_unet_parameters_by_hand() -> None:
    def double_conv(cin: int, cout: int) -> int:  # two bias-free 3x3 convs, each with BatchNorm (2 x cout)
        return 9 * cin * cout + 2 * cout + 9 * cout * cout + 2 * cout

    c = [64, 128, 256, 512, 1024]
    encoder = double_conv(3, 64) + sum(double_conv(c[i], c[i + 1]) for i in range(4))
    decoder = sum(4 * c[i + 1] * c[i] + c[i] + double_conv(2 * c[i], c[i]) for i in range(4))  # 2x2 up-conv + bias
    head = 64 * 2 + 2
    assert _count(get_workload("unet"))[0] == encoder + decoder + head == 31_037_698


def test_segmentation_outputs_keep_the_input_size() -> None:
    w = get_workload("fcn_resnet50")
    with FakeTensorMode(), skip_weight_init():
        out = w.build_model(w.resolve_shape(image_size=96))(torch.randn(2, 3, 96, 96))
        assert set(out) == {"out", "aux"}  # the auxiliary head is on, as torchvision trains it
        assert out["out"].shape == out["aux"].shape == (2, 21, 96, 96)
        unet = get_workload("unet").build_model(get_workload("unet").resolve_shape(image_size=100))
        assert unet(torch.randn(1, 3, 100, 100)).shape == (1, 2, 100, 100)  # padded convs; 100 is not /16


def test_detection_substitutions_are_stated_and_named() -> None:
    _, datadep = _fake_step(get_workload("fasterrcnn_resnet50_fpn"), 2, 320)
    made = dict(datadep.substitutions)
    assert made and all(r.by_rule for r in datadep.records), datadep.summary()
    # the sampled sizes torchvision's configuration fixes, per image and per batch of 2
    assert made["aten.nonzero in RoIHeads.subsample -> 512"] == 2
    assert made["aten.nonzero in RegionProposalNetwork.compute_loss -> 256"] == 2  # 128 positives + 128 negatives
    assert made["aten.nonzero in fastrcnn_loss -> 256"] == 1
    assert made["aten.nonzero in _multiscale_roi_align -> 256"] == 4  # 1024 proposals over 4 levels
    assert any(key.startswith("torchvision.nms in nms") for key in made)
    assert any(key.startswith(".item() in GeneralizedRCNNTransform.torch_choice") for key in made)
    assert all(line.count(" at torchvision.") == 1 for line in datadep.summary())

    _, datadep = _fake_step(get_workload("retinanet_resnet50_fpn"), 1, 800)
    made = dict(datadep.substitutions)
    assert all(r.by_rule for r in datadep.records), datadep.summary()
    assert made["aten.nonzero in RetinaNetRegressionHead.compute_loss -> 128"] == 1  # 32 anchors x 4 boxes
    assert made["aten.index (boolean mask) in RetinaNetClassificationHead.compute_loss -> 120087"] == 2  # all anchors

    _, datadep = _fake_step(get_workload("ssd300"), 2, None)
    assert not datadep.substitutions  # NVIDIA's loss has fixed shapes: nothing to state


def test_roi_heads_see_512_sampled_proposals_per_image() -> None:
    w = get_workload("fasterrcnn_resnet50_fpn")
    shape = w.resolve_shape(image_size=320)
    seen: list[tuple[int, ...]] = []
    with FakeTensorMode(), DataDependentShapes():
        with skip_weight_init():
            model = w.build_model(shape)
        box_head: torch.nn.Module = model.roi_heads.box_head  # type: ignore[union-attr,assignment]
        box_head.register_forward_hook(lambda m, args, out: seen.append(tuple(args[0].shape)))
        w.forward_loss(model, w.make_batch(3, shape))
    assert seen == [(3 * 512, 256, 7, 7)]


@pytest.mark.parametrize(
    ("name", "weights", "image_size", "inference_minus_training_gmacs"),
    [
        # torchvision documents "_ops" (forward GMACs) per weights, measured in eval mode: at 520x520 for
        # segmentation (auxiliary head included) and 800x800 for detection. Faster R-CNN's box head then runs on
        # 1000 proposals; training samples 512, 488 fewer, at 12544x1024 + 1024x1024 + 1024x(91+364) MACs each.
        ("fcn_resnet50", "FCN_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1", 520, 0.0),
        ("deeplabv3_resnet50", "DeepLabV3_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1", 520, 0.0),
        ("fasterrcnn_resnet50_fpn", "FasterRCNN_ResNet50_FPN_Weights.COCO_V1", 800, 488 * 14_359_552 / 1e9),
        ("retinanet_resnet50_fpn", "RetinaNet_ResNet50_FPN_Weights.COCO_V1", 800, 0.0),
    ],
)
def test_training_forward_macs_match_torchvision(
    name: str, weights: str, image_size: int, inference_minus_training_gmacs: float
) -> None:
    w = get_workload(name)
    shape = w.resolve_shape(image_size=image_size)
    with FakeTensorMode(), DataDependentShapes():
        with skip_weight_init():
            model = w.build_model(shape)
        with FlopCounterMode(display=False) as counter:
            w.forward_loss(model, w.make_batch(2, shape))
    documented = torchvision.models.get_weight(weights).meta["_ops"]
    per_image_gmacs = counter.get_total_flops() / 2 / 2 / 1e9
    assert per_image_gmacs == pytest.approx(documented - inference_minus_training_gmacs, rel=1e-4)


def test_detection_runs_for_real_without_the_mode() -> None:
    torch.manual_seed(0)
    w = get_workload("fasterrcnn_resnet50_fpn")
    shape = w.resolve_shape(image_size=64)
    model = w.build_model(shape)
    loss = w.forward_loss(model, w.make_batch(1, shape))
    loss.backward()
    assert math.isfinite(loss.item())
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_fake_detection_without_the_mode_says_what_to_do() -> None:
    w = get_workload("retinanet_resnet50_fpn")
    shape = w.resolve_shape(image_size=128)
    with FakeTensorMode(), skip_weight_init():
        model = w.build_model(shape)
        with pytest.raises(GpuwiseError, match="DataDependentShapes"):
            w.forward_loss(model, w.make_batch(1, shape))


def test_mode_is_transparent_for_real_tensors_and_bounds_unknown_sites() -> None:
    mask = torch.tensor([True, False, True])
    with DataDependentShapes() as datadep:
        assert torch.nonzero(mask).shape == (2, 1)
        assert bool(mask.any())
    assert not datadep.substitutions
    with FakeTensorMode(), DataDependentShapes() as datadep:
        fake = torch.zeros(5, 3) > 0
        assert torch.nonzero(fake).shape == (15, 2)  # no rule: every element true
        assert torch.randn(10)[torch.randn(10) > 0].shape == (10,)
        with pytest.raises(DataDependentError, match="item"):
            bool(fake.any())
    assert [r.by_rule for r in datadep.records] == [False, False]


def test_custom_rule() -> None:
    here = f"{__name__}:test_custom_rule"
    rule = Rule("nonzero", here, "torch.where", lambda mask, site: mask.numel() // 4, "a quarter, for the test")
    item = Rule("item", here, "if", lambda t, site: True, "taken, for the test")
    with FakeTensorMode(), DataDependentShapes(rules=[rule, item]) as datadep:
        x = torch.randn(8, 10)
        assert torch.where(x > 0)[0].shape == (20,)
        if (x > 0).any():
            pass
    nonzero, taken = datadep.records
    assert nonzero.describe().startswith(f"aten.nonzero at {here}:") and nonzero.by_rule
    assert taken.op == ".item()" and taken.results == [True] and taken.by_rule
    assert datadep.substitutions["aten.nonzero in test_custom_rule -> 20"] == 1


def test_ssd300_matches_nvidia_shapes() -> None:
    dboxes = ssd_default_boxes()
    assert dboxes.shape == (8732, 4) and bool(((dboxes >= 0) & (dboxes <= 1)).all())
    boxes = torch.stack([synthetic_boxes(4, 1.0) for _ in range(2)])
    labels = torch.tensor([[1, 2, 3, 4], [5, 6, 7, 8]])
    gloc, glabel = ssd_encode(boxes, labels, dboxes)
    assert gloc.shape == (2, 4, 8732) and glabel.shape == (2, 8732)
    for image in range(2):  # every box is the target of at least its best default box; the rest is background
        assert set(glabel[image].tolist()) == {0, *labels[image].tolist()}
    with FakeTensorMode(), skip_weight_init():
        model = SSD300()
        feature = model.feature_extractor(torch.randn(2, 3, 300, 300))
        assert feature.shape == (2, 1024, 38, 38)  # layer3 with stride 1
        ploc, plabel = model(torch.randn(2, 3, 300, 300))
        assert ploc.shape == (2, 4, 8732) and plabel.shape == (2, 81, 8732)


@pytest.mark.parametrize("name", ["ssd300", "deeplabv3_resnet50"])
def test_batchnorm_on_pooled_maps_needs_two_images(name: str) -> None:
    w = get_workload(name)
    with FakeTensorMode(), pytest.raises(GpuwiseError, match="at least 2"):
        w.make_batch(1, w.default_shape)
