"""How many training images one CPU thread decodes and augments per second: the input-pipeline ceiling.

``gpuwise train --data DIR`` reads an ImageFolder with torchvision's reference training transforms
(``gpuwise/train/layouts/images.py``: JPEG decode by PIL, RandomResizedCrop to 224, flip, to tensor,
normalize), one DataLoader worker process per CPU thread. This times exactly that dataset's
``__getitem__`` in one process with one torch thread, on JPEGs made here at 500 × 375 (the most common
ImageNet photo size; quality 90, smooth colour fields plus grain: about 73 kB a file, ImageNet's average is larger),
and writes the median rate to ``gpuwise/predict/input_pipeline.json``, which ``gpuwise predict`` and
``plan`` multiply by the CPU threads per GPU (``--cpu-cores-per-gpu``) for the images/s a GPU can be
fed. The rate is this machine's CPU; another CPU differs (say so, or re-run this there).

    python benchmarks/input_pipeline.py [--images 96] [--passes 5]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gpuwise.hardware.local import cpu_model
from gpuwise.train.layouts.images import open_image_folder
from gpuwise.workloads import get_workload


def make_jpegs(root: Path, count: int, rng: np.random.Generator) -> float:
    """``count`` photo-like JPEGs in two class folders; returns their mean size in bytes."""
    sizes = []
    for i in range(count):
        folder = root / f"class{i % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        coarse = rng.uniform(0, 255, (6, 8, 3)).astype(np.uint8)
        smooth = np.asarray(Image.fromarray(coarse).resize((500, 375), Image.BICUBIC), dtype=np.float32)
        grain = rng.normal(0, 12, smooth.shape)
        pixels = np.clip(smooth + grain, 0, 255).astype(np.uint8)
        path = folder / f"{i:04d}.jpg"
        Image.fromarray(pixels).save(path, quality=90)
        sizes.append(path.stat().st_size)
    return float(np.mean(sizes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--write", action=argparse.BooleanOptionalAction, default=True,
                        help="write gpuwise/predict/input_pipeline.json (default: yes)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # a DataLoader worker is one process, one thread
    w = get_workload("resnet50")
    with tempfile.TemporaryDirectory() as tmp:
        mean_bytes = make_jpegs(Path(tmp), args.images, np.random.default_rng(0))
        data = open_image_folder(w, w.resolve_shape(None, None), Path(tmp), seed=0)
        dataset = data.dataset
        dataset[0]  # warm-up: imports, first decode
        rates = []
        for epoch in range(args.passes):
            data.set_epoch(epoch)
            start = time.perf_counter()
            for i in range(len(dataset)):  # type: ignore[arg-type]
                dataset[i]
            rates.append(len(dataset) / (time.perf_counter() - start))  # type: ignore[arg-type]
    rate = statistics.median(rates)
    result = {
        "images_per_s_per_thread": round(rate, 1),
        "spread": [round(min(rates), 1), round(max(rates), 1)],
        "image_size": 224,
        "jpeg": f"500x375, quality 90, mean {mean_bytes / 1e3:.0f} kB",
        "cpu": cpu_model(),
        "source": f"benchmarks/input_pipeline.py, {datetime.now(UTC).date()}, on {cpu_model()} "
                  f"({platform.machine()}), median of {args.passes} passes over {args.images} images",
    }
    print(json.dumps(result, indent=2))
    if args.write:
        out = Path(str(resources.files("gpuwise.predict").joinpath("input_pipeline.json")))
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
