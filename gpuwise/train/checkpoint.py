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

Under FSDP a checkpoint is sharded instead (``save_sharded``): a folder ``step-000000120.dcp``
written by ``torch.distributed.checkpoint`` (DCP), each rank its own shards of the model and the
optimizer (nothing is gathered on rank 0, which could not hold a 70B model's state), plus each
rank's ``rank-00003.pt`` (its RNG states, its grad scaler). The ranks write into a hidden
temporary folder; once all have finished, each hashes its own files, rank 0 renames the folder
into place and writes the manifest, which now lists every file with its size and sha256. A
folder without a manifest, or with a file that does not match it, is passed over like a torn
``.pt``. DCP reshards on load, so a sharded checkpoint resumes on another number of processes.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import random
import re
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import torch
from torch.distributed.checkpoint.api import CheckpointException

from gpuwise.errors import GpuwiseError

FORMAT = 1  # one file, written by rank 0
SHARDED_FORMAT = 2  # a DCP folder, written by every rank
_NAME = re.compile(r"step-(\d{9})\.(pt|dcp)")
_TEMP_SHARDED = re.compile(r"\.step-(\d{9})\.dcp\.tmp")
NO_MANIFEST = "no manifest (the write was cut short)"


@dataclass(frozen=True)
class Found:
    """The newest good checkpoint in a folder, and the newer ones passed over (and why)."""

    path: Path
    step: int
    skipped: tuple[str, ...]  # "step-000000012.pt: sha256 does not match its manifest", ...


def checkpoint_path(folder: Path, step: int, *, sharded: bool = False) -> Path:
    return folder / f"step-{step:09d}.{'dcp' if sharded else 'pt'}"


def is_sharded(path: Path) -> bool:
    return path.suffix == ".dcp"


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

    try:
        _atomic_write(path, write)
        record = {"format": FORMAT, "file": path.name, "sha256": digest.hexdigest(), "bytes": size, "step": step,
                  **(info or {})}
        _atomic_write(path.with_suffix(".json"), lambda out: out.write(json.dumps(record, indent=1).encode()))
    except (OSError, RuntimeError) as e:  # torch reports a short write as RuntimeError("... unexpected pos")
        if not _disk_full(e):
            raise
        _remove(path.with_suffix(".json"))  # a checkpoint without its manifest is never trusted anyway
        _remove(path)
        raise _no_space(folder, step) from None
    _prune(folder, keep)
    return path


# torch's zip writer reports a short write as RuntimeError("[enforce fail at inline_container.cc:...] . unexpected
# pos 704 vs 598"), the OSError it came from as its context; DCP pickles each rank's error to gather them, which
# drops that context, so the message alone is what is left of a full disk on a rank whose zip write failed.
_SHORT_WRITE = "unexpected pos"


def _disk_full(e: BaseException | None) -> bool:
    """Whether ``e``, or an error it was raised in (torch wraps the OSError of a short write; DCP gathers
    each rank's error into a CheckpointException), is a full disk."""
    while e is not None:
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if isinstance(e, RuntimeError) and _SHORT_WRITE in str(e):
            return True
        if isinstance(e, CheckpointException):
            return any(_disk_full(failure[0]) for failure in e.failures.values())
        e = e.__cause__ or e.__context__
    return False


def _any_rank(flag: bool) -> bool:
    """Whether ``flag`` is true on any rank of the default process group (a collective)."""
    import torch.distributed as dist

    flags: list[bool] = [False] * dist.get_world_size()
    dist.all_gather_object(flags, flag)  # objects, not a CPU tensor: works on NCCL's GPU-only groups too
    return any(flags)


def _no_space(folder: Path, step: int) -> GpuwiseError:
    previous = find(folder)
    kept = (f"the previous checkpoint {previous.path.name} is intact; free some space and continue with "
            f"'gpuwise train --resume {folder}'") if previous else "no earlier checkpoint there"
    return GpuwiseError(f"no space left on device: writing the checkpoint of step {step} in {folder} "
                        f"({shutil.disk_usage(folder).free:,} bytes free) failed and was removed; {kept}")


def find(folder: Path) -> Found | None:
    """The newest checkpoint in ``folder`` whose manifest vouches for its bytes; None if there is none."""
    skipped: list[str] = []
    for step, path in sorted(_candidates(folder), reverse=True):
        problem = _check(path)
        if problem is None:
            return Found(path=path, step=step, skipped=tuple(skipped))
        skipped.append(f"{path.name}: {problem}")
    return None


LOCK_NAME = ".gpuwise-run.lock"


@contextlib.contextmanager
def claim(folder: Path) -> Iterator[None]:
    """Hold ``folder`` for one run while it trains: a second run into it at the same time is refused instead of
    overwriting the first one's checkpoints (an advisory ``flock``, released when the process ends, however it
    ends). Leaves nothing behind: the lock file, and the folder if this run made it and wrote nothing."""
    import fcntl

    made = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise GpuwiseError(f"--checkpoint-dir {folder} is being written by another run now: wait for it, or "
                           "choose another --checkpoint-dir") from None
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
        os.close(fd)
        if made:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if empty


def problems(folder: Path) -> list[tuple[str, str]]:
    """Every checkpoint in ``folder`` that cannot be trusted, newest first, and why."""
    found = ((path, _check(path)) for _, path in sorted(_candidates(folder), reverse=True))
    return [(path.name, problem) for path, problem in found if problem is not None]


def steps_in(folder: Path) -> list[int]:
    """The steps of the checkpoints in ``folder``, good or not, and of manifests left without one."""
    manifests = (int(p.name[5:14]) for p in folder.glob("step-*.json") if _NAME.fullmatch(p.name[:14] + ".pt"))
    return sorted({step for step, _ in _candidates(folder)} | set(manifests))


def describe_run(folder: Path) -> str:
    """Whose checkpoints ``folder`` holds, from the newest manifest: 'workload resnet18, seed 0'."""
    for path in sorted(folder.glob("step-*.json"), reverse=True):
        try:
            settings = json.loads(path.read_text()).get("settings", {})
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(settings, dict) and settings.get("workload"):
            return f"workload {settings['workload']}, seed {settings.get('seed')}"
    return "no readable manifest"


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


def save_sharded(folder: Path, step: int, state: dict[str, Any], rank_state: dict[str, Any], *, keep: int,
                 info: dict[str, Any] | None = None) -> Path:
    """Every rank: write its shards of ``state`` (DCP) and its ``rank_state`` as the checkpoint of ``step``
    (see the module docstring); a collective, so every rank must call it. Rank 0 prunes to ``keep``."""
    import torch.distributed as dist
    from torch.distributed.checkpoint.state_dict_saver import save as dcp_save

    rank = dist.get_rank()
    path = checkpoint_path(folder, step, sharded=True)
    temp = folder / f".{path.name}.tmp"
    if rank == 0:
        folder.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(temp, ignore_errors=True)  # left by a run killed while writing this step
        temp.mkdir()
    dist.barrier()
    own = temp / f"rank-{rank:05d}.pt"
    try:
        dcp_save(state, checkpoint_id=temp)  # each rank its shards (__<rank>_<n>.distcp), rank 0 the .metadata
        _atomic_write(own, lambda out: torch.save(rank_state, out))
        full = False
    except (OSError, RuntimeError, CheckpointException) as e:  # DCP gathers every rank's failure into one
        if not _disk_full(e):
            raise
        full = True
    if _any_rank(full):  # every rank learns it, so none waits at a barrier the others never reach
        if rank == 0:
            shutil.rmtree(temp, ignore_errors=True)
        dist.barrier()
        raise _no_space(folder, step)
    dist.barrier()  # every rank's files are complete: now each hashes its own, in parallel
    mine = [p for p in temp.iterdir() if p.name == own.name or p.name.startswith(f"__{rank}_")]
    if rank == 0:
        mine.append(temp / ".metadata")
    hashed: list[dict[str, Any]] = [{}] * dist.get_world_size()
    dist.all_gather_object(hashed, {p.name: _file_digest(p) for p in mine})
    if rank == 0:
        files = {name: entry for part in hashed for name, entry in part.items()}
        for extra in sorted(p for p in temp.iterdir() if p.name not in files):  # named otherwise by DCP
            files[extra.name] = _file_digest(extra)
        for p in temp.iterdir():
            _fsync(p)
        if path.exists():  # the same step written again (a resumed run that trained nothing)
            shutil.rmtree(path)
        _fsync(temp)
        os.replace(temp, path)
        _fsync(folder)
        record = {"format": SHARDED_FORMAT, "file": path.name, "files": dict(sorted(files.items())), "step": step,
                  **(info or {})}
        _atomic_write(path.with_suffix(".json"), lambda out: out.write(json.dumps(record, indent=1).encode()))
        _prune(folder, keep)
    dist.barrier()
    return path


def load_sharded(path: Path, state: dict[str, Any]) -> None:
    """Fill ``state`` (this rank's state dicts, as ``save_sharded`` got them) in place from a sharded
    checkpoint, resharded to this run's processes; a collective where there are several."""
    from torch.distributed.checkpoint.state_dict_loader import load as dcp_load

    dcp_load(state, checkpoint_id=path)


def load_rank_state(path: Path, rank: int) -> dict[str, Any] | None:
    """What rank ``rank`` wrote beside its shards (RNG states, scaler); None if that rank did not exist."""
    own = path / f"rank-{rank:05d}.pt"
    if not own.exists():
        return None
    state = torch.load(own, map_location="cpu", weights_only=True)
    assert isinstance(state, dict)
    return state


def read_model(path: Path) -> dict[str, Any]:
    """The model's parameters and buffers, whole, from either format (for tools and tests: in one process)."""
    if not is_sharded(path):
        model: dict[str, Any] = load(path)["model"]
        return model
    from torch.distributed.checkpoint.state_dict_loader import _load_state_dict_from_keys

    # A private helper, but the one DCP offers to read a checkpoint without a model to load into; it warns
    # that it loads in one process, which is what is meant here.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is unavailable or uninitialized")
        state = _load_state_dict_from_keys({"model"}, checkpoint_id=path)
    model = state["model"]
    return model


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
    _fsync(path.parent)


def _file_digest(path: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return {"bytes": size, "sha256": digest.hexdigest()}


def _fsync(path: Path) -> None:
    """Flush a file's, or a folder's entries', writes to the disk."""
    fd = os.open(path, os.O_RDONLY)
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
        return NO_MANIFEST
    except (OSError, ValueError):
        return "its manifest is unreadable"
    if is_sharded(path):
        files = vouched.get("files")
        if not isinstance(files, dict) or not path.is_dir():
            return "its manifest lists no files"
        for name, entry in files.items():
            problem = _check_file(path / name, entry, full=full)
            if problem:
                return f"{name}: {problem}"
        return None
    return _check_file(path, vouched, full=full) or (_check_loads(path) if full else None)


def _check_loads(path: Path) -> str | None:
    """Why torch refuses to load a checkpoint whose bytes match its manifest (a crafted or foreign pickle: the
    manifest proves the bytes whole, not harmless), or None. Memory-mapped: no tensor data is read."""
    try:
        torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:  # UnpicklingError, or RuntimeError for a file that is no torch archive
        first = str(e).strip().splitlines()[0][:120] if str(e).strip() else type(e).__name__
        return f"torch will not load it safely ({type(e).__name__}: {first})"
    return None


def _check_file(path: Path, vouched: dict[str, Any], *, full: bool) -> str | None:
    if not path.is_file():
        return "missing"
    if not full:
        return None if path.stat().st_size == vouched.get("bytes") else "size does not match its manifest"
    found = _file_digest(path)
    if found["bytes"] != vouched.get("bytes") or found["sha256"] != vouched.get("sha256"):
        return f"torn or corrupt ({found['bytes']:,} bytes, sha256 does not match its manifest)"
    return None


def _prune(folder: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` good checkpoints (and anything older than the oldest kept), and
    sharded writes that a kill cut short (no run is writing them: this one has just finished its own)."""
    newest_first = sorted(_candidates(folder), reverse=True)
    for temp in folder.iterdir():
        match = _TEMP_SHARDED.fullmatch(temp.name)
        if match and newest_first and int(match[1]) < newest_first[0][0]:
            shutil.rmtree(temp, ignore_errors=True)
    good = [(step, path) for step, path in newest_first if _check(path, full=False) is None]
    if len(good) <= keep:
        return
    oldest_kept = good[keep - 1][0]
    for step, path in _candidates(folder):
        if step < oldest_kept:
            _remove(path.with_suffix(".json"))  # the manifest first: a half-deleted folder is then never trusted
            _remove(path)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
