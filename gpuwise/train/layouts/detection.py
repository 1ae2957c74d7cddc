"""Object detection: COCO-style ``DIR/annotations.json`` with the images under ``DIR/images/``
(or at their ``file_name`` relative to ``DIR``), parsed with ``json`` (no pycocotools).

As torchvision's reference recipe (``references/detection/coco_utils.py``): crowd annotations are
left out, boxes ``[x, y, w, h]`` become ``(x1, y1, x2, y2)``, empty boxes are dropped, and images
with no box left are not trained on. Category ids (COCO's run 1-90 with gaps) are mapped, in
increasing order, to the contiguous labels 1..K; 0 is the background.

Each image is resized to the workload's square size (aspect ratio not kept, so every batch is the
shape that was profiled) and flipped at random. Faster R-CNN and RetinaNet get images in [0, 1]
and per-image targets, as ``detection_batch``; SSD300 gets 300x300 normalised images and targets
encoded per default box on the CPU, as ``ssd_batch`` (and NVIDIA's DALI pipeline).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from gpuwise.errors import GpuwiseError
from gpuwise.train.data import EpochSeeded, TrainData, item_seed, layout_error
from gpuwise.train.layouts.images import IMAGENET_MEAN, IMAGENET_STD
from gpuwise.workloads.registry import Shape, Workload

Target = dict[str, torch.Tensor]


def model_classes(workload: Workload) -> int:
    """Outputs of the model's classifier, background included."""
    from gpuwise.workloads.detection import NUM_CLASSES, SSD_CLASSES

    return SSD_CLASSES if workload.name == "ssd300" else NUM_CLASSES


def _load_json(workload: Workload, root: Path) -> dict[str, Any]:
    path = root / "annotations.json"
    if not path.is_file():
        raise layout_error(workload, root, "no annotations.json")
    try:
        coco = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise GpuwiseError(f"--data: {path} is not valid JSON ({e}); fix or regenerate the file") from e
    if not isinstance(coco, dict):
        raise layout_error(workload, root, "annotations.json is not a JSON object")
    for key in ("images", "annotations", "categories"):
        if not isinstance(coco.get(key), list):
            raise layout_error(workload, root, f"annotations.json has no list '{key}'")
    return coco


def _field(path: Path, kind: str, entry: Any, key: str) -> Any:
    if not isinstance(entry, dict) or key not in entry:
        raise GpuwiseError(f"--data: {path}: an entry of '{kind}' has no '{key}'; COCO's format needs it")
    return entry[key]


def parse_coco(
    workload: Workload, root: Path
) -> tuple[list[tuple[Path, torch.Tensor, torch.Tensor]], dict[int, int]]:
    """(image path, boxes xyxy (G, 4), labels 1..K (G,)) for every image with a box, and the id -> label map."""
    coco = _load_json(workload, root)
    path = root / "annotations.json"
    category_ids = sorted({int(_field(path, "categories", c, "id")) for c in coco["categories"]})
    label_of = {cid: label for label, cid in enumerate(category_ids, start=1)}
    boxes: dict[int, list[list[float]]] = defaultdict(list)
    labels: dict[int, list[int]] = defaultdict(list)
    for ann in coco["annotations"]:
        if ann.get("iscrowd", 0) if isinstance(ann, dict) else 0:
            continue
        x, y, w, h = (float(v) for v in _field(path, "annotations", ann, "bbox"))
        category = int(_field(path, "annotations", ann, "category_id"))
        if category not in label_of:
            raise GpuwiseError(f"--data: {path}: an annotation has category_id {category}, not in 'categories'; "
                               "add the category or drop the annotation")
        if w > 0 and h > 0:
            image_id = int(_field(path, "annotations", ann, "image_id"))
            boxes[image_id].append([x, y, x + w, y + h])
            labels[image_id].append(label_of[category])
    samples = []
    for image in coco["images"]:
        image_id = int(_field(path, "images", image, "id"))
        if image_id not in boxes:
            continue  # as the reference recipe: images without annotations are not trained on
        name = str(_field(path, "images", image, "file_name"))
        file = next((p for p in (root / "images" / name, root / name) if p.is_file()), None)
        if file is None:
            raise layout_error(workload, root, f"image '{name}' is in neither images/ nor {root}")
        samples.append((file, torch.tensor(boxes[image_id]), torch.tensor(labels[image_id], dtype=torch.int64)))
    if not samples:
        raise layout_error(workload, root, "annotations.json has no image with a box")
    return samples, label_of


class CocoData(EpochSeeded, Dataset[tuple[torch.Tensor, Target]]):
    """(image, {"boxes": xyxy in pixels of the resized image, "labels"}) pairs, resized and flipped."""

    def __init__(self, samples: list[tuple[Path, torch.Tensor, torch.Tensor]], transform: Any, seed: int) -> None:
        self.samples = samples
        self.transform = transform
        self.seed = seed

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Target]:
        from PIL import Image
        from torchvision import tv_tensors
        from torchvision.transforms.v2.functional import pil_to_tensor

        path, boxes, labels = self.samples[index]
        with Image.open(path) as opened:
            image = tv_tensors.Image(pil_to_tensor(opened.convert("RGB")))
        target = {
            "boxes": tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=tuple(image.shape[-2:])),
            "labels": labels,
        }
        with torch.random.fork_rng(devices=[]):  # v2 transforms draw from the global RNG
            torch.manual_seed(item_seed(self.seed, self.epoch, index))
            image, target = self.transform(image, target)
        plain = {"boxes": target["boxes"].as_subclass(torch.Tensor), "labels": target["labels"]}
        return image.as_subclass(torch.Tensor), plain


def collate_detection(items: list[tuple[torch.Tensor, Target]]) -> tuple[list[torch.Tensor], list[Target]]:
    return [image for image, _ in items], [target for _, target in items]


def ssd_collate(dboxes: torch.Tensor, size: int) -> Any:
    """Stack 300x300 images and encode each image's boxes per default box, as ``ssd_batch`` does."""
    from gpuwise.workloads.detection import ssd_encode

    def collate(items: list[tuple[torch.Tensor, Target]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if len(items) < 2:
            raise GpuwiseError(
                "ssd300 needs a batch size of at least 2: BatchNorm in training normalises its 1x1 last feature "
                "map over the batch"
            )
        glocs, glabels = [], []
        for _, target in items:
            boxes = target["boxes"] / size  # ltrb in [0, 1]
            if len(boxes) == 0:  # every default box is background; its location target is itself
                glocs.append(dboxes.t().unsqueeze(0))
                glabels.append(torch.zeros(1, dboxes.size(0), dtype=torch.int64))
                continue
            gloc, glabel = ssd_encode(boxes.unsqueeze(0), target["labels"].unsqueeze(0), dboxes)
            glocs.append(gloc)
            glabels.append(glabel)
        return torch.stack([image for image, _ in items]), torch.cat(glocs), torch.cat(glabels)

    return collate


def open_coco(workload: Workload, shape: Shape, root: Path, seed: int) -> TrainData:
    import torchvision.transforms.v2 as T

    from gpuwise.workloads.detection import SSD_SIZE, ssd_default_boxes

    if not root.is_dir():
        raise layout_error(workload, root, "is a file, not a folder")
    samples, label_of = parse_coco(workload, root)
    outputs = model_classes(workload)
    if len(label_of) > outputs - 1:
        raise GpuwiseError(
            f"--data {root}: {len(label_of)} categories but {workload.name} tells apart {outputs - 1} "
            f"(plus background); merge categories or keep at most {outputs - 1}"
        )
    ssd = workload.name == "ssd300"
    size = SSD_SIZE if ssd else shape.image_size
    assert size is not None
    steps: list[Any] = [T.Resize((size, size)), T.RandomHorizontalFlip(), T.ToDtype(torch.float32, scale=True)]
    if ssd:
        steps.append(T.Normalize(IMAGENET_MEAN, IMAGENET_STD))
    steps.append(T.SanitizeBoundingBoxes(min_size=1))  # boxes squeezed below a pixel by the resize
    collate = ssd_collate(ssd_default_boxes(), size) if ssd else collate_detection
    return TrainData(
        dataset=CocoData(samples, T.Compose(steps), seed),
        collate=collate,
        layout="COCO",
        description=f"COCO {root}: {len(samples):,} images with boxes, {len(label_of)} categories "
        f"(labels 1-{len(label_of)} of {outputs - 1}), resized to {size}x{size}",
    )
