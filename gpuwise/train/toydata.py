"""Small real data sets in each layout ``gpuwise train --data`` reads, made on the spot.

They are for the tests and the README's examples: nothing is downloaded, each is a few hundred
kilobytes, and each has structure a model can learn in a few dozen steps, so "the loss goes down"
can be checked on real files read through the real loaders.

    python -m gpuwise.train.toydata images DIR          # ImageFolder: circle/square/triangle
    python -m gpuwise.train.toydata segmentation DIR    # images/ + masks/ (0 background, 1 shape, 255 edge)
    python -m gpuwise.train.toydata detection DIR       # images/ + annotations.json (COCO)
    python -m gpuwise.train.toydata speech DIR          # 16 kHz WAV + transcripts: one tone pair per character
    python -m gpuwise.train.toydata tokens FILE.npy     # arithmetic runs of token ids (.npy/.bin/.u16.bin/.u32.bin)
"""

from __future__ import annotations

import argparse
import json
import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

SHAPES = ("circle", "square", "triangle")
COCO_CATEGORY_IDS = (1, 3, 5)  # non-contiguous, as COCO's are: the loader must map them to 1..K
SAMPLE_RATE = 16_000
SPEECH_WORDS = ("CAT", "DOG", "SUN", "RED", "BIG", "HAT", "ICE", "TOP", "OWL", "FUN")
# Token ids in [1000, 2000): above BERT's special tokens (0-103), below every model's vocabulary.
TOKEN_BASE, TOKEN_SPAN, TOKEN_RUN = 1000, 1000, 16


def _colour(rng: random.Random, dark: bool) -> tuple[int, int, int]:
    low, high = (0, 110) if dark else (140, 255)
    return (rng.randint(low, high), rng.randint(low, high), rng.randint(low, high))


def _shape_box(rng: random.Random, size: int) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of a shape 30-60% of the image wide, anywhere inside it."""
    side = rng.randint(int(0.3 * size), int(0.6 * size))
    x0, y0 = rng.randint(0, size - side - 1), rng.randint(0, size - side - 1)
    return x0, y0, x0 + side, y0 + side


def _draw(draw: Any, kind: str, box: tuple[int, int, int, int], fill: Any, outline: Any = None) -> None:
    x0, y0, x1, y1 = box
    if kind == "circle":
        draw.ellipse(box, fill=fill, outline=outline)
    elif kind == "square":
        draw.rectangle(box, fill=fill, outline=outline)
    else:
        draw.polygon([((x0 + x1) / 2, y0), (x1, y1), (x0, y1)], fill=fill, outline=outline)


def _canvas(rng: random.Random, size: int) -> tuple[Any, Any]:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (size, size), _colour(rng, dark=True))
    return image, ImageDraw.Draw(image)


def make_images(root: Path, n: int = 96, size: int = 64, seed: int = 0) -> Path:
    """ImageFolder: ``root/<shape>/<i>.png``, one bright shape on a dark background; n images in all."""
    rng = random.Random(seed)
    for i in range(n):
        kind = SHAPES[i % len(SHAPES)]
        image, draw = _canvas(rng, size)
        _draw(draw, kind, _shape_box(rng, size), _colour(rng, dark=False))
        (root / kind).mkdir(parents=True, exist_ok=True)
        image.save(root / kind / f"{i:05d}.png")
    return root


def make_segmentation(root: Path, n: int = 32, size: int = 64, seed: int = 0) -> Path:
    """``root/images/<i>.png`` and ``root/masks/<i>.png``: 0 background, 1 shape, 255 on its edge (ignored)."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        image, draw = _canvas(rng, size)
        mask = Image.new("L", (size, size), 0)
        kind, box = rng.choice(SHAPES), _shape_box(rng, size)
        _draw(draw, kind, box, _colour(rng, dark=False))
        _draw(ImageDraw.Draw(mask), kind, box, fill=1, outline=255)  # VOC marks object edges 255 too
        image.save(root / "images" / f"{i:05d}.png")
        mask.save(root / "masks" / f"{i:05d}.png")
    return root


def make_detection(root: Path, n: int = 16, size: int = 96, seed: int = 0) -> Path:
    """``root/images/<i>.png`` with 1-3 shapes each, and ``root/annotations.json`` in COCO's format."""
    rng = random.Random(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for i in range(n):
        image, draw = _canvas(rng, size)
        for _ in range(rng.randint(1, 3)):
            k = rng.randrange(len(SHAPES))
            x0, y0, x1, y1 = _shape_box(rng, size)
            _draw(draw, SHAPES[k], (x0, y0, x1, y1), _colour(rng, dark=False))
            annotations.append({
                "id": len(annotations) + 1, "image_id": i + 1, "category_id": COCO_CATEGORY_IDS[k],
                "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0), "iscrowd": 0,
            })
        name = f"{i:05d}.png"
        image.save(root / "images" / name)
        images.append({"id": i + 1, "file_name": name, "width": size, "height": size})
    categories = [{"id": c, "name": s} for c, s in zip(COCO_CATEGORY_IDS, SHAPES, strict=True)]
    coco = {"images": images, "annotations": annotations, "categories": categories}
    (root / "annotations.json").write_text(json.dumps(coco))
    return root


def _tone_pair(char: str) -> tuple[float, float]:
    """Two frequencies per character (a DTMF-like code): 7 low x 4 high = 28 characters."""
    k = " 'ABCDEFGHIJKLMNOPQRSTUVWXYZ".index(char)
    return 300.0 + 90.0 * (k % 7), 1300.0 + 600.0 * (k // 7)


def make_speech(root: Path, n: int = 24, seed: int = 0, char_s: float = 0.08) -> Path:
    """``root/<i>.wav`` (16 kHz mono) and ``root/<i>.txt``: one or two words, each character a tone pair."""
    import soundfile

    rng = random.Random(seed)
    noise = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(char_s * SAMPLE_RATE)) / SAMPLE_RATE
    envelope = np.sin(np.pi * t / char_s) ** 2  # fades in and out: characters stay apart
    for i in range(n):
        text = " ".join(rng.choice(SPEECH_WORDS) for _ in range(rng.randint(1, 2)))
        pieces = [np.zeros(int(0.05 * SAMPLE_RATE))]
        for char in text:
            low, high = _tone_pair(char)
            pieces.append(0.3 * envelope * (np.sin(2 * math.pi * low * t) + np.sin(2 * math.pi * high * t)))
        pieces.append(np.zeros(int(0.05 * SAMPLE_RATE)))
        audio = np.concatenate(pieces)
        audio = audio + 0.01 * noise.standard_normal(audio.shape)
        soundfile.write(root / f"{i:05d}.wav", audio.astype(np.float32), SAMPLE_RATE, subtype="PCM_16")
        (root / f"{i:05d}.txt").write_text(text.lower() + "\n")  # lower case: the loader upper-cases
    return root


def make_tokens(path: Path, n: int = 65_536, seed: int = 0) -> Path:
    """Runs of ``TOKEN_RUN`` tokens, each an arithmetic sequence (random start and step 1-4) wrapped into
    [1000, 2000): after two tokens of a run the rest is predictable. The suffix picks the format."""
    rng = np.random.default_rng(seed)
    runs = -(-n // TOKEN_RUN)
    start = rng.integers(0, TOKEN_SPAN, size=(runs, 1))
    step = rng.integers(1, 5, size=(runs, 1))
    tokens = (TOKEN_BASE + (start + step * np.arange(TOKEN_RUN)) % TOKEN_SPAN).reshape(-1)[:n]
    path.parent.mkdir(parents=True, exist_ok=True)
    name = path.name
    if name.endswith(".npy"):
        np.save(path, tokens.astype(np.uint16))
    elif name.endswith(".u32.bin"):
        tokens.astype(np.uint32).tofile(path)
    elif name.endswith(".bin"):
        tokens.astype(np.uint16).tofile(path)
    else:
        raise SystemExit(f"{path}: name the token file .npy, .bin, .u16.bin or .u32.bin")
    return path


MAKERS: dict[str, Callable[..., Path]] = {
    "images": make_images,
    "segmentation": make_segmentation,
    "detection": make_detection,
    "speech": make_speech,
    "tokens": make_tokens,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gpuwise.train.toydata", description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=sorted(MAKERS))
    parser.add_argument("path", type=Path, help="the folder to fill (a file for tokens)")
    parser.add_argument("--n", type=int, default=None, help="how many images, utterances or tokens")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    kwargs: dict[str, Any] = {"seed": args.seed}
    if args.n is not None:
        if args.n < 1:
            parser.error("--n must be a positive integer")
        kwargs["n"] = args.n
    made = MAKERS[args.kind](args.path, **kwargs)
    print(f"wrote {args.kind} to {made}")


if __name__ == "__main__":
    main()
