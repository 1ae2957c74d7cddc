"""Checkpoints that survive a crash at any instant, and are found again.

A checkpoint is two files in the run's folder: ``step-000000120.pt`` (``torch.save`` of plain
types and tensors: model, optimizer, scaler, where the run was, RNG states, the run's settings)
and, written after it, ``step-000000120.json``, its manifest: the sha256 and size of the ``.pt``.
Each is written to a temporary file in the same folder, flushed and fsync'ed, renamed over its
name (``os.replace`` is atomic on POSIX) and the folder fsync'ed, so after a crash a name holds
either nothing or the whole file. A ``.pt`` without a manifest was cut short; one whose bytes do
not hash to the manifest's was torn or damaged afterwards: both are passed over, with a note,
for the newest good one. The newest ``keep`` good checkpoints are kept.

Loading uses ``torch.load(weights_only=True)``: nothing in a checkpoint is unpickled as code, which
is why RNG states are stored as tensors and lists.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import torch

from gpuwise.errors import GpuwiseError

FORMAT = 1
_NAME = re.compile(r"step-(\d{9})\.pt")


@dataclass(frozen=True)
class Found:
    """The newest good checkpoint in a folder, and the newer ones passed over (and why)."""

    path: Path
    step: int
    skipped: tuple[str, ...]  # "step-000000012.pt: sha256 does not match its manifest", ...


def checkpoint_path(folder: Path, step: int) -> Path:
    return folder / f"step-{step:09d}.pt"


def save(folder: Path, step: int, state: dict[str, Any], *, keep: int, info: dict[str, Any] | None = None) -> Path:
    """Write ``state`` as the checkpoint of ``step`` (see the module docstring), then prune to ``keep``.

    ``info`` (plain JSON: the run's settings, its epoch) goes into the manifest too, so a resume can
    check a checkpoint against the run's settings without loading it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = checkpoint_path(folder, step)
    digest = hashlib.sha256()
    size = 0

    def write(out: IO[bytes]) -> None:
        nonlocal size
        hashing = _HashingWriter(out, digest)
        torch.save(state, hashing)  # type: ignore[arg-type]  # torch.save needs only write() and flush()
        size = hashing.size

    _atomic_write(path, write)
    record = {"format": FORMAT, "file": path.name, "sha256": digest.hexdigest(), "bytes": size, "step": step,
                **(info or {})}
    _atomic_write(path.with_suffix(".json"), lambda out: out.write(json.dumps(record, indent=1).encode()))
    _prune(folder, keep)
    return path


def find(folder: Path) -> Found | None:
    """The newest checkpoint in ``folder`` whose manifest vouches for its bytes; None if there is none."""
    skipped: list[str] = []
    for step, path in sorted(_candidates(folder), reverse=True):
        problem = _check(path)
        if problem is None:
            return Found(path=path, step=step, skipped=tuple(skipped))
        skipped.append(f"{path.name}: {problem}")
    return None


def manifest(path: Path) -> dict[str, Any]:
    """The manifest of a checkpoint ``find`` returned."""
    data = json.loads(path.with_suffix(".json").read_text())
    assert isinstance(data, dict)
    return data


def load(path: Path) -> dict[str, Any]:
    """A checkpoint's state, on the CPU, unpickling only tensors and plain types."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise GpuwiseError(f"{path} is not a gpuwise checkpoint of format {FORMAT}: resume from another folder")
    return state


def rng_state() -> dict[str, Any]:
    """Every random number generator the step may draw from, as tensors and plain types."""
    version, internal, gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": [version, list(internal), gauss],
        "cuda": torch.cuda.get_rng_state() if torch.cuda.is_available() and torch.cuda.is_initialized() else None,
    }
    with contextlib.suppress(ImportError):
        import numpy as np

        legacy: Any = np.random.get_state(legacy=True)  # ("MT19937", keys, pos, has_gauss, cached)
        kind, keys, pos, has_gauss, cached = legacy
        state["numpy"] = [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)]
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])
    if state.get("numpy") is not None:
        import numpy as np

        kind, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))


# ------------------------------------------------------------------ internals


class _HashingWriter:
    """A write-only file object that hashes what passes through it (no second read of the file)."""

    def __init__(self, out: IO[bytes], digest: Any) -> None:
        self.out, self.digest, self.size = out, digest, 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self.out.write(data)

    def flush(self) -> None:
        self.out.flush()


def _atomic_write(path: Path, write: Any) -> None:
    """Temporary file in the same folder, fsync, rename over ``path``, fsync the folder."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _candidates(folder: Path) -> Iterator[tuple[int, Path]]:
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        match = _NAME.fullmatch(path.name)
        if match:
            yield int(match[1]), path


def _check(path: Path, *, full: bool = True) -> str | None:
    """Why ``path`` cannot be trusted, or None; ``full`` False checks the size only (pruning reads no data)."""
    manifest_path = path.with_suffix(".json")
    try:
        vouched = json.loads(manifest_path.read_text())
    except FileNotFoundError:
        return "no manifest (the write was cut short)"
    except (OSError, ValueError):
        return "its manifest is unreadable"
    if not full:
        return None if path.stat().st_size == vouched.get("bytes") else "size does not match its manifest"
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    if size != vouched.get("bytes") or digest.hexdigest() != vouched.get("sha256"):
        return f"torn or corrupt ({size:,} bytes, sha256 does not match its manifest)"
    return None


def _prune(folder: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` good checkpoints (and anything older than the oldest kept)."""
    newest_first = sorted(_candidates(folder), reverse=True)
    good = [(step, path) for step, path in newest_first if _check(path, full=False) is None]
    if len(good) <= keep:
        return
    oldest_kept = good[keep - 1][0]
    for step, path in _candidates(folder):
        if step < oldest_kept:
            for stale in (path, path.with_suffix(".json")):
                with contextlib.suppress(FileNotFoundError):
                    stale.unlink()
