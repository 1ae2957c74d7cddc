"""The training loop of ``gpuwise train``: one process's part of a run, top to bottom.

Every process (one, or each torchrun worker) runs ``train``: build the model from the seed, wrap
it for DDP/FSDP, restore a checkpoint if resuming, then for each epoch walk its shard of the data
(``DistributedSampler``, epoch set) in batches, running the same ``Step`` that ``gpuwise bench``
times. Exact resume rests on four things: the sampler's order depends only on (seed, epoch); a
checkpoint records how many batches of the epoch were consumed, and the resumed epoch starts at
the next one; the DataLoader draws its worker seeds from its own generator, never the global RNG;
and every RNG the step draws from is saved and restored per rank.

Step times follow the bench protocol (``gpuwise.bench.protocol``): the first ``warmup`` steps of
the process are not timed, the device is synchronised before each clock read, and the median and
spread are reported. A timed step is the batch's fetch, its copy to the device and the step —
what a user waits for — and never a checkpoint write.

Ctrl-C and SIGTERM only set a flag: the step in flight finishes, all ranks agree to stop at the
same step, a checkpoint is written and the run returns ``interrupted`` (the CLI exits 130/143).
"""

from __future__ import annotations

import os
import random
import resource
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import torch
from torch.utils._pytree import tree_map

from gpuwise.bench.protocol import cuda_sync, summarize
from gpuwise.bench.result import Timing
from gpuwise.bench.run import Step, precision_flags
from gpuwise.config import Strategy
from gpuwise.errors import GpuwiseError
from gpuwise.train import checkpoint
from gpuwise.train.config import Devices, TrainConfig
from gpuwise.train.data import TrainData, open_data
from gpuwise.train.distributed import (
    Ranks,
    any_rank,
    barrier,
    broadcast_object,
    full_state,
    gather_objects,
    load_full_state,
    parameter_digest,
    process_group,
    unwrap,
    wrap,
)
from gpuwise.workloads import Workload, get_workload
from gpuwise.workloads.registry import Shape

SIGNAL_NAMES = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM"}


@dataclass(frozen=True)
class Prepared:
    """What a run resolves to before any model is built: checked in the launching process too, so a
    bad flag or folder is one line there instead of a failure in every worker."""

    workload: Workload
    shape: Shape
    batch_size: int  # per device
    data: TrainData
    world_size: int
    settings: dict[str, Any]
    resume_from: checkpoint.Found | None
    position: dict[str, int]  # step, epoch, batch_in_epoch where the run starts
    steps_per_epoch: int
    total_steps: int


@dataclass(frozen=True)
class TrainResult:
    """What one run did. Throughput is the bench protocol's, over this process's timed steps."""

    workload: str
    device: str  # rank 0's: "cpu", "cuda:0"
    world_size: int
    strategy: str  # "single", "DDP", "FSDP"
    batch_size: int  # per device
    precision: str
    optimizer: str
    data: str  # the data's one-line description
    start_step: int  # > 0 when resumed
    end_step: int
    total_steps: int
    epoch: int  # the epoch the run stopped in (0-based)
    interrupted: str | None  # "SIGINT" / "SIGTERM" when stopped by a signal
    losses: tuple[float, ...]  # rank 0's loss at each step of this process
    timing: Timing | None  # None: no step after the warm-up
    samples_per_s: float | None  # all processes together: batch × world / median step
    checkpoint: Path | None  # the last one written
    resumed_from: Path | None
    skipped_checkpoints: tuple[str, ...]  # newer checkpoints passed over on resume, and why
    parameter_digests: tuple[str, ...]  # of the parameters (not buffers): per rank (DDP), or one (FSDP)
    # The shape of an average timed batch (variable-length data is padded per batch): what the
    # prediction and the FLOPs are computed for.
    seq_len: int | None = None
    image_size: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # filled in by compare_and_store

    @property
    def ranks_agree(self) -> bool:
        return len(set(self.parameter_digests)) <= 1


# ------------------------------------------------------------------ preparation


def prepare(config: TrainConfig, world_size: int) -> Prepared:
    """Resolve the workload, shape, batch and data, find the checkpoint to resume and check it fits."""
    w = get_workload(config.workload)
    shape = w.resolve_shape(config.seq_len, config.image_size)
    batch_size = config.batch_size or w.default_batch_size
    data = open_data(w, shape, config.data, synthetic_samples=config.synthetic_samples, seed=config.seed)
    settings = config.settings(shape={"seq_len": shape.seq_len, "image_size": shape.image_size},
                               batch_size=batch_size, world_size=world_size)
    per_rank = len(data.dataset) // world_size  # type: ignore[arg-type]  # map-style: has len
    steps_per_epoch = per_rank // batch_size
    if steps_per_epoch < 1:
        raise GpuwiseError(
            f"the data has {len(data.dataset):,} samples, fewer than one batch of {batch_size} on each of "  # type: ignore[arg-type]
            f"{world_size} process{'es' if world_size > 1 else ''}: use a smaller --batch-size"
        )
    total_steps = config.steps or (config.epochs or 1) * steps_per_epoch
    found = _find_resume(config.resume, settings) if config.resume is not None else None
    position = {"step": 0, "epoch": 0, "batch_in_epoch": 0}
    if found is not None:
        record = checkpoint.manifest(found.path)
        position = {k: int(record[k]) for k in position}
    return Prepared(w, shape, batch_size, data, world_size, settings, found, position, steps_per_epoch, total_steps)


def _find_resume(folder: Path, settings: dict[str, Any]) -> checkpoint.Found:
    if not folder.is_dir():
        raise GpuwiseError(f"--resume {folder}: no such folder; give the --checkpoint-dir of the run to continue")
    found = checkpoint.find(folder)
    if found is None:
        names = sorted(p.name for p in folder.iterdir())[:3]
        what = f"it holds {', '.join(names)}{' ...' if len(names) == 3 else ''}" if names else "it is empty"
        raise GpuwiseError(f"--resume {folder}: no good checkpoint there ({what}); start without --resume")
    theirs = checkpoint.manifest(found.path).get("settings", {})
    differ = [f"{k} {theirs.get(k)!r} (this run: {v!r})" for k, v in settings.items() if theirs.get(k) != v]
    if differ:
        raise GpuwiseError(
            f"--resume {folder}: its checkpoint is of another run: {'; '.join(differ)}; "
            "resume with the same settings (or no workload and flags: they are taken from the checkpoint)"
        )
    return found


def resumed_config(config: TrainConfig) -> TrainConfig:
    """``config`` with the run's settings taken from the newest checkpoint in ``config.resume``
    (``gpuwise train --resume DIR`` without a workload)."""
    from dataclasses import replace

    from gpuwise.config import OptimizerName, Precision

    assert config.resume is not None
    found = checkpoint.find(config.resume) if config.resume.is_dir() else None
    if found is None:
        raise GpuwiseError(f"--resume {config.resume}: no good checkpoint there; "
                           "give the --checkpoint-dir of the run to continue")
    s = checkpoint.manifest(found.path)["settings"]
    return replace(
        config, workload=s["workload"], data=s["data"], batch_size=s["batch_size"],
        precision=Precision(s["precision"]), optimizer=OptimizerName(s["optimizer"]), seed=s["seed"],
        seq_len=s["seq_len"], image_size=s["image_size"],
        synthetic_samples=s["synthetic_samples"] or config.synthetic_samples,
    )


# ------------------------------------------------------------------ the run


def device_for(devices: Devices, ranks: Ranks) -> str:
    if devices.kind == "cpu":
        return "cpu"
    return f"cuda:{devices.index if devices.index is not None else ranks.local_rank}"


def train(config: TrainConfig, devices: Devices, *,
          on_step: Callable[[int, int, float, float, int], None] | None = None) -> TrainResult:
    """Run this process's part of the run. ``on_step(step, total, loss, seconds, samples)`` is called on
    rank 0 after every step (the CLI's progress bar); ``samples`` counts all processes' samples of the step."""
    ranks = Ranks.from_env()
    device = device_for(devices, ranks)
    if device.startswith("cuda"):
        torch.cuda.set_device(device)
    with process_group(ranks, device), precision_flags(config.precision), _stop_on_signals() as received:
        return _run(config, ranks, device, received, on_step)


def _run(config: TrainConfig, ranks: Ranks, device: str, received: list[int],
         on_step: Callable[[int, int, float, float, int], None] | None) -> TrainResult:
    p = prepare(config, ranks.world_size)
    strategy = _strategy(config.strategy, ranks)
    estimate_bytes = _check_fits(p, config, device, strategy)
    _seed_everything(config.seed)
    with torch.device(device), _explain_out_of_memory(p, device, estimate_bytes):
        model = p.workload.build_model(p.shape).to(device).train()
    model = wrap(model, ranks, device, strategy)
    optimizer = config.optimizer.build([q for q in model.parameters() if q.requires_grad])
    step_fn = Step(p.workload, model, optimizer, config.precision, device)

    if p.resume_from is not None:
        state = checkpoint.load(p.resume_from.path)
        load_full_state(model, optimizer, state["model"], state["optimizer"], ranks, strategy)
        if step_fn.scaler is not None and state.get("scaler"):
            step_fn.scaler.load_state_dict(state["scaler"])
        checkpoint.set_rng_state(state["rng"][ranks.rank])
        del state

    from torch.utils.data import DataLoader, DistributedSampler

    sampler: DistributedSampler[Any] = DistributedSampler(
        p.data.dataset, num_replicas=ranks.world_size, rank=ranks.rank, shuffle=True, seed=config.seed, drop_last=True,
    )
    step, epoch, done_in_epoch = p.position["step"], p.position["epoch"], p.position["batch_in_epoch"]
    sync = cuda_sync(device)
    times: list[float] = []
    losses: list[float] = []
    saved: Path | None = None
    interrupted: int | None = None
    workers = config.num_workers
    if workers is None:
        workers = default_workers(config.data, processes_on_host())

    def save() -> Path | None:
        folder = config.output_dir
        if folder is None:
            return None
        position = {"step": step, "epoch": epoch, "batch_in_epoch": done_in_epoch}
        if done_in_epoch >= p.steps_per_epoch:
            position.update(epoch=epoch + 1, batch_in_epoch=0)
        return _save(folder, model, optimizer, step_fn, ranks, strategy, p, position, config.keep_checkpoints)

    while step < p.total_steps and interrupted is None:
        if done_in_epoch >= p.steps_per_epoch:
            epoch, done_in_epoch = epoch + 1, 0
        sampler.set_epoch(epoch)
        p.data.set_epoch(epoch)  # augmentations differ per epoch, and are the same again on resume
        order = list(sampler)
        batches = [order[i * p.batch_size:(i + 1) * p.batch_size] for i in range(p.steps_per_epoch)]
        generator = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
        loader = DataLoader(p.data.dataset, batch_sampler=batches[done_in_epoch:], collate_fn=p.data.collate,
                            num_workers=workers, generator=generator, pin_memory=device.startswith("cuda"))
        batch_iter = iter(loader)
        while step < p.total_steps and done_in_epoch < p.steps_per_epoch:
            sync()
            start = time.perf_counter()
            batch = tree_map(_mover(device), next(batch_iter))
            with _explain_out_of_memory(p, device, estimate_bytes):
                loss = step_fn(batch)
            sync()
            elapsed = time.perf_counter() - start
            step, done_in_epoch = step + 1, done_in_epoch + 1
            if len(losses) >= config.warmup:
                times.append(elapsed)
            losses.append(float(loss.item()))
            if on_step is not None and ranks.is_main:
                on_step(step, p.total_steps, losses[-1], elapsed, p.batch_size * ranks.world_size)
            if any_rank(bool(received), ranks, device):
                interrupted = received[0] if received else signal.SIGTERM
                break
            if config.checkpoint_every and step % config.checkpoint_every == 0 and step < p.total_steps:
                saved = save()
        del batch_iter, loader

    if config.output_dir is not None and (saved is None or saved != checkpoint.checkpoint_path(config.output_dir,
                                                                                                 step)):
        saved = save()
    model_state, _ = full_state(model, optimizer, ranks, strategy)
    names = {name for name, _ in unwrap(model).named_parameters()}
    if strategy is Strategy.FSDP:
        digests = tuple(broadcast_object([parameter_digest(model_state, names)] if ranks.is_main else None, ranks))
    else:
        digests = tuple(gather_objects(parameter_digest(model_state, names), ranks))
    timing = summarize(times, num_warmup=config.warmup) if times else None
    timed_shape = p.data.batch_shape(p.batch_size) if p.data.batch_shape else p.shape
    return TrainResult(
        workload=p.workload.name, device=device, world_size=ranks.world_size,
        seq_len=timed_shape.seq_len, image_size=timed_shape.image_size,
        strategy="single" if not ranks.distributed else strategy.value.upper(), batch_size=p.batch_size,
        precision=config.precision.value, optimizer=config.optimizer.value, data=p.data.description,
        start_step=p.position["step"], end_step=step, total_steps=p.total_steps, epoch=epoch,
        interrupted=SIGNAL_NAMES.get(signal.Signals(interrupted)) if interrupted is not None else None,
        losses=tuple(losses), timing=timing,
        samples_per_s=p.batch_size * ranks.world_size / timing.median_s if timing else None,
        checkpoint=saved, resumed_from=p.resume_from.path if p.resume_from else None,
        skipped_checkpoints=p.resume_from.skipped if p.resume_from else (), parameter_digests=digests,
        extra={"peak_rss_bytes": _peak_rss_bytes(),
               "peak_cuda_bytes": torch.cuda.max_memory_allocated(device) if device.startswith("cuda") else None},
    )


def _strategy(strategy: Strategy, ranks: Ranks) -> Strategy:
    if strategy is Strategy.AUTO:
        return Strategy.DDP
    return strategy


def _save(folder: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, step_fn: Step, ranks: Ranks,
          strategy: Strategy, p: Prepared, position: dict[str, int], keep: int) -> Path:
    """Every rank: its RNG states to rank 0 (and, under FSDP, its shards); rank 0 writes; all wait."""
    rngs = gather_objects(checkpoint.rng_state(), ranks)
    path = checkpoint.checkpoint_path(folder, position["step"])
    if ranks.is_main or strategy is Strategy.FSDP:
        model_state, optimizer_state = full_state(model, optimizer, ranks, strategy)
        if ranks.is_main:
            state = {
                "format": checkpoint.FORMAT, **position, "settings": p.settings, "model": model_state,
                "optimizer": optimizer_state, "scaler": step_fn.scaler.state_dict() if step_fn.scaler else None,
                "rng": rngs,
            }
            checkpoint.save(folder, position["step"], state, keep=keep, info={**position, "settings": p.settings})
    barrier(ranks)
    return path


def _mover(device: str) -> Callable[[Any], Any]:
    non_blocking = device.startswith("cuda")

    def move(x: Any) -> Any:
        return x.to(device, non_blocking=non_blocking) if isinstance(x, torch.Tensor) else x

    return move


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:  # pragma: no cover - numpy comes with torch's usual installs
        pass


def _peak_rss_bytes() -> int:
    """This process's peak resident memory (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


@contextmanager
def _stop_on_signals() -> Iterator[list[int]]:
    """Ctrl-C and SIGTERM set a flag (the loop stops after the step in flight); a second Ctrl-C stops at
    once. The previous handlers are restored."""
    received: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        if received and signum == signal.SIGINT:
            raise KeyboardInterrupt
        received.append(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


def processes_on_host() -> int:
    """Training processes on this host: torchrun's LOCAL_WORLD_SIZE, 1 without torchrun."""
    return int(os.environ.get("LOCAL_WORLD_SIZE", "1"))


def default_workers(data: str | Path, processes_on_host: int) -> int:
    """Loader processes per training process: none for synthetic batches; else up to 4, but no more
    than this host's cores leave each training process (more only oversubscribes them)."""
    if str(data) == "synthetic":
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(0, min(4, cores // max(1, processes_on_host)))


TRAIN_FIX = ("use a smaller --batch-size ('gpuwise bench --batch-size auto' finds the largest that fits), "
             "more devices with --strategy fsdp, or a bigger machine ('gpuwise plan')")


def _check_fits(p: Prepared, config: TrainConfig, device: str, strategy: Strategy) -> int:
    """The step's estimated peak memory per process (the profile, on fake tensors); on the CPU, one
    line instead of an out-of-memory kill when the processes on this host would not fit its free RAM.

    Profiled with attention and GRUs as fused kernels: seconds instead of half a minute for a
    recurrent model at its longest length, at the price of a lower bound on the CPU (its unfused
    attention saves more): a guard against steps that cannot fit, not a promise that one will."""
    from gpuwise.bench.run import check_cpu_fits
    from gpuwise.config import StepConfig
    from gpuwise.profile.run import profile_step

    estimate = profile_step(p.workload, StepConfig(
        workload=p.workload.name, batch_size=p.batch_size, precision=config.precision, optimizer=config.optimizer,
        seq_len=p.shape.seq_len, image_size=p.shape.image_size,
    ), gpu_kernels=True).memory.peak_bytes
    if device == "cpu" and strategy is not Strategy.FSDP:  # FSDP shards the state: the estimate is an upper bound
        check_cpu_fits(p.workload.name, p.batch_size, estimate * processes_on_host(), fix=TRAIN_FIX,
                       fix_at_batch_1="'gpuwise plan' says which GPUs it fits, and with what sharding")
    return estimate


@contextmanager
def _explain_out_of_memory(p: Prepared, device: str, estimate_bytes: int) -> Iterator[None]:
    """A device out of memory becomes one line with the batch and the estimate, not a traceback."""
    from gpuwise.bench import autobatch
    from gpuwise.bench.run import does_not_fit

    try:
        yield
    except Exception as e:
        if not autobatch.is_out_of_memory(e):
            raise
        autobatch.release_memory()
        raise does_not_fit(p.workload.name, p.batch_size, device, estimate_bytes, fix=TRAIN_FIX) from None
