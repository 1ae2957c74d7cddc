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
import resource
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import Any

import torch
from torch.utils._pytree import tree_map

from gpuwise.bench.protocol import cuda_sync, summarize
from gpuwise.bench.run import precision_flags
from gpuwise.compiling import cannot_compile, explain_compile_failure
from gpuwise.config import ActivationCheckpointing, Precision, Strategy
from gpuwise.errors import GpuwiseError
from gpuwise.records import Timing
from gpuwise.train import checkpoint, schedule
from gpuwise.train.config import Devices, TrainConfig, with_local_precision
from gpuwise.train.data import TrainData, open_data
from gpuwise.train.distributed import (
    Ranks,
    any_rank,
    barrier,
    broadcast_object,
    full_state,
    gather_objects,
    parameter_digest,
    process_group,
    sharded_state,
    unwrap,
    wrap,
)
from gpuwise.train.launch import WORKER_ENV
from gpuwise.train.metrics import MetricsLog, StepMetrics
from gpuwise.train.metrics import now as metrics_now
from gpuwise.train.resume import find_resume, next_epoch, restore, resume_position, seed_everything
from gpuwise.train.resume import resumed_config as resumed_config  # importable from here, where it was first
from gpuwise.train.step import AccumulatingStep, no_sync_for
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
    position: dict[str, int]  # step, epoch, batch_in_epoch (micro batches per process) where the run starts
    steps_per_epoch: int  # optimizer steps
    total_steps: int
    micro_per_epoch: int = 1  # micro batches of batch_size per process and epoch
    resume_note: str = ""  # how a resume on another number of processes continues the data
    resumed_world_size: int | None = None  # the checkpoint's number of processes


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
    samples_per_s: float | None  # all processes together: batch × grad_accum × world / median step
    checkpoint: Path | None  # the last one written
    resumed_from: Path | None
    skipped_checkpoints: tuple[str, ...]  # newer checkpoints passed over on resume, and why
    parameter_digests: tuple[str, ...]  # of the parameters (not buffers): per rank (DDP), or one (FSDP)
    grad_accum: int = 1  # micro batches of batch_size per optimizer step
    activation_checkpointing: str = "none"
    compiled: bool = False
    fp8: bool = False  # the blocks' linear layers in FP8 (--fp8)
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
                               batch_size=batch_size)
    samples = len(data.dataset)  # type: ignore[arg-type]  # map-style: has len
    micro_per_epoch = samples // world_size // batch_size
    steps_per_epoch = micro_per_epoch // config.grad_accum
    if steps_per_epoch < 1:
        accum = f" × --grad-accum {config.grad_accum}" if config.grad_accum > 1 else ""
        raise GpuwiseError(
            f"the data has {samples:,} samples, fewer than one step of batch {batch_size}{accum} on each of "
            f"{world_size} process{'es' if world_size > 1 else ''}: use a smaller --batch-size"
            + (" or --grad-accum" if accum else "")
        )
    check_output_dir(config)
    found = find_resume(config.resume, settings) if config.resume is not None else None
    position = {"step": 0, "epoch": 0, "batch_in_epoch": 0}
    note, theirs_world = "", None
    if found is not None:
        position, note, theirs_world = resume_position(checkpoint.manifest(found.path), world_size, batch_size,
                                                       micro_per_epoch, config.grad_accum)
    if config.steps:
        total_steps = config.steps
    else:  # to the end of epoch E, however many steps the epochs before took
        left_in_epoch = (micro_per_epoch - position["batch_in_epoch"]) // config.grad_accum
        later_epochs = (config.epochs or 1) - position["epoch"] - 1
        total_steps = max(position["step"], position["step"] + left_in_epoch + later_epochs * steps_per_epoch)
    if found is not None and position["step"] >= total_steps:
        target = f"--steps {config.steps}" if config.steps else f"{config.epochs or 1} epoch(s), {total_steps} steps"
        raise GpuwiseError(
            f"--resume {config.resume}: its checkpoint is at step {position['step']}, already at or past the "
            f"target ({target}): nothing to train; give a larger --steps or --epochs to continue it"
        )
    return Prepared(w, shape, batch_size, data, world_size, settings, found, position, steps_per_epoch, total_steps,
                    micro_per_epoch, note, theirs_world)


MIN_FREE_BYTES = 1 << 20  # a folder with less cannot hold even a small model's checkpoint


def check_output_dir(config: TrainConfig) -> None:
    """The checkpoint folder, checked before any model is built: a folder (or one that can be made), writable,
    with some free space, and not holding another run's checkpoints (unless this run resumes them)."""
    import shutil
    import tempfile

    folder = config.output_dir
    if folder is None:
        return
    fix = "choose another --checkpoint-dir"
    if folder.exists() and not folder.is_dir():
        raise GpuwiseError(f"--checkpoint-dir {folder} is a file, not a folder: {fix}")
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        raise GpuwiseError(f"--checkpoint-dir {folder}: {existing} is a file, not a folder: {fix}")
    try:
        with tempfile.TemporaryFile(dir=existing):  # unnamed: leaves nothing behind
            pass
    except OSError as e:
        raise GpuwiseError(f"--checkpoint-dir {folder}: cannot write in {existing} ({e.strerror}): {fix}") from None
    free = shutil.disk_usage(existing).free
    if free < MIN_FREE_BYTES:
        raise GpuwiseError(f"--checkpoint-dir {folder}: no space left on device ({free:,} bytes free in "
                           f"{existing}): free some space or {fix}")
    resuming_here = config.resume is not None and config.resume.resolve() == folder.resolve()
    # A torchrun worker (restarted too) runs under its launcher's check and claim (checkpoint.claim).
    launched = os.environ.get(WORKER_ENV) == "1"
    if folder.is_dir() and not resuming_here and not launched:
        steps = checkpoint.steps_in(folder)
        if steps:
            whose = checkpoint.describe_run(folder)
            raise GpuwiseError(
                f"--checkpoint-dir {folder} holds the checkpoints of another run ({whose}, up to step "
                f"{max(steps)}): continue it with 'gpuwise train --resume {folder}', or {fix}"
            )


# ------------------------------------------------------------------ the run


def device_for(devices: Devices, ranks: Ranks) -> str:
    if devices.kind == "cpu":
        return "cpu"
    return f"cuda:{devices.index if devices.index is not None else ranks.local_rank}"


def train(config: TrainConfig, devices: Devices, *,
          on_step: Callable[[int, int, float, float, int], None] | None = None) -> TrainResult:
    """Run this process's part of the run. ``on_step(step, total, loss, seconds, samples)`` is called on
    rank 0 after every optimizer step (the CLI's progress bar); ``samples`` counts all processes' samples
    of the step."""
    ranks = Ranks.from_env()
    check_strategy(config.strategy, devices.kind, ranks.world_size)
    device = device_for(devices, ranks)
    config, _ = with_local_precision(config, device)  # a worker of a dry run's command, or the Python API
    if device.startswith("cuda"):
        torch.cuda.set_device(device)
    with process_group(ranks, device), precision_flags(config.precision), _stop_on_signals() as received:
        return _run(config, ranks, device, received, on_step)


def check_strategy(strategy: Strategy, kind: str, world_size: int) -> None:
    """FSDP needs processes to shard over; one line instead of an unsharded run that claims to be FSDP."""
    if strategy is Strategy.FSDP and world_size < 2:
        several = "--devices cpu:N" if kind == "cpu" else "--devices N (GPUs)"
        raise GpuwiseError(f"--strategy fsdp: FSDP shards over several processes: use {several} with N >= 2, "
                           "or --strategy ddp")


def check_options(config: TrainConfig, p: Prepared, device_kind: str) -> None:
    """--activation-checkpointing and --compile checked in the launching process, so that a model they
    cannot apply to is one line there instead of a traceback from every worker."""
    if config.compile:
        why = cannot_compile(device_kind)
        if why:
            raise GpuwiseError(f"--compile: {why}; run without --compile")
    from gpuwise import float8, recompute

    if config.fp8:
        why = float8.cannot_run_fp8(device_kind)
        if why:
            raise GpuwiseError(f"--fp8: {why}; run without --fp8")
    checkpointing = config.activation_checkpointing is not ActivationCheckpointing.NONE
    if not (checkpointing or config.fp8):
        return
    try:
        with torch.device("meta"):
            model = p.workload.build_model(p.shape)
    except Exception:  # a factory that cannot build on meta: the workers check it for real
        return
    if config.fp8:
        float8.convert(model, config.precision, what=f"workload '{p.workload.name}'")
    if checkpointing and len(recompute.blocks(model)) < 2:
        recompute.apply(model, config.activation_checkpointing, workload=f"workload '{p.workload.name}'")


def build(config: TrainConfig, p: Prepared, ranks: Ranks, device: str, strategy: Strategy) -> torch.nn.Module:
    """The model from the seed, with FP8 layers, activation checkpointing and compilation applied per block,
    then wrapped: torchtitan's order (float8, AC, compile, FSDP), each composing with the next."""
    from gpuwise import transforms

    model = p.workload.build_model(p.shape).to(device).train()
    transforms.apply(model, workload=p.workload.name, precision=config.precision, fp8=config.fp8,
                     activation_checkpointing=config.activation_checkpointing,
                     compile_on=device if config.compile else None)
    return wrap(model, ranks, device, strategy, param_dtype=fsdp_param_dtype(config, ranks, strategy, model))


def fsdp_param_dtype(config: TrainConfig, ranks: Ranks, strategy: Strategy,
                     model: torch.nn.Module | None = None) -> torch.dtype | None:
    """bf16 through FSDP2's mixed-precision policy (instead of autocast) with amp-bf16 under FSDP; autocast
    where ``model`` has batch norms: their running statistics are fp32 buffers the policy does not cast, and a
    bf16 batch norm refuses them ("expected scalar type BFloat16 but found Float"), where autocast runs batch
    norm in fp32."""
    if ranks.distributed and strategy is Strategy.FSDP and config.precision is Precision.AMP_BF16:
        if model is not None and any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules()):
            return None
        return torch.bfloat16
    return None


@dataclass
class _Session:
    """What this process trains with, built once: the model (wrapped), its optimizer and step, and how it is shared."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    step_fn: AccumulatingStep
    strategy: Strategy
    sharded: bool  # FSDP over several processes: checkpoints in shards
    estimate_bytes: int  # the step's estimated peak memory per process (for out-of-memory messages)


@dataclass
class _Progress:
    """Where the loop is and what it measured; ``done_in_epoch`` counts micro batches (per process)."""

    step: int
    epoch: int
    done_in_epoch: int
    times: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    saved: Path | None = None  # the last checkpoint written
    interrupted: int | None = None  # the signal that stopped the run
    metrics_path: Path | None = None  # rank 0's per-step log

    def position(self) -> dict[str, int]:
        return {"step": self.step, "epoch": self.epoch, "batch_in_epoch": self.done_in_epoch}


def _run(config: TrainConfig, ranks: Ranks, device: str, received: list[int],
         on_step: Callable[[int, int, float, float, int], None] | None) -> TrainResult:
    p = prepare(config, ranks.world_size)
    s = _setup(config, p, ranks, device)
    if p.resume_from is not None:
        restore(p.resume_from.path, s.model, s.optimizer, s.step_fn, ranks, s.strategy, seed=config.seed,
                step=p.position["step"], their_world_size=p.resumed_world_size)
    progress = _loop(config, p, s, ranks, device, received, on_step)
    if config.output_dir is not None and progress.saved != checkpoint.checkpoint_path(
            config.output_dir, progress.step, sharded=s.sharded):
        progress.saved = _save_at(config, p, s, ranks, progress)
    digests = parameter_digests(s.model, s.optimizer, ranks, s.strategy)
    return _result(config, p, s, ranks, device, progress, digests)


def _setup(config: TrainConfig, p: Prepared, ranks: Ranks, device: str) -> _Session:
    """The model from the seed (checked to fit first), wrapped for the strategy, its optimizer and step."""
    strategy = _strategy(config.strategy, ranks)
    estimate_bytes = _check_fits(p, config, device, strategy)
    seed_everything(config.seed)
    with torch.device(device), _explain_out_of_memory(p, device, estimate_bytes):
        model = build(config, p, ranks, device, strategy)
    optimizer = config.optimizer.build([q for q in model.parameters() if q.requires_grad])
    step_fn = AccumulatingStep(p.workload, model, optimizer, config.precision, device, grad_accum=config.grad_accum,
                               autocast=fsdp_param_dtype(config, ranks, strategy, model) is None,
                               no_sync=no_sync_for(model))
    return _Session(model, optimizer, step_fn, strategy, ranks.distributed and strategy is Strategy.FSDP,
                    estimate_bytes)


def _loop(config: TrainConfig, p: Prepared, s: _Session, ranks: Ranks, device: str, received: list[int],
          on_step: Callable[[int, int, float, float, int], None] | None) -> _Progress:
    """Epoch by epoch from the prepared position to the last step, or to a signal: the timed steps, the
    metrics log, the progress callback and the periodic checkpoints."""
    from torch.utils.data import DistributedSampler

    lr_schedule = schedule.configure(s.optimizer, lr=config.lr, weight_decay=config.weight_decay,
                                     warmup_steps=config.warmup_steps, kind=config.lr_schedule,
                                     total_steps=p.total_steps)
    log = _metrics_log(config, ranks)
    sampler: DistributedSampler[Any] = DistributedSampler(
        p.data.dataset, num_replicas=ranks.world_size, rank=ranks.rank, shuffle=True, seed=config.seed, drop_last=True,
    )
    progress = _Progress(p.position["step"], p.position["epoch"], p.position["batch_in_epoch"],
                         metrics_path=log.path if log is not None else None)
    accum, sync = config.grad_accum, cuda_sync(device)
    samples_per_step = p.batch_size * accum * ranks.world_size
    while progress.step < p.total_steps and progress.interrupted is None:
        progress.epoch, progress.done_in_epoch = next_epoch(
            progress.epoch, progress.done_in_epoch, p.micro_per_epoch, accum)
        loader = epoch_loader(config, p, sampler, progress.epoch, progress.done_in_epoch, device)
        batch_iter = iter(loader)
        micro_batches = (tree_map(_mover(device), b) for b in batch_iter)  # fetched as the step asks
        while progress.step < p.total_steps and p.micro_per_epoch - progress.done_in_epoch >= accum:
            sync()
            schedule.set_lr(s.optimizer, lr_schedule.lr(progress.step))
            start = time.perf_counter()
            with _explain_out_of_memory(p, device, s.estimate_bytes), \
                    explain_compile_failure(config.compile and not progress.losses, p.workload.name):
                loss = s.step_fn(micro_batches)
            sync()
            elapsed = time.perf_counter() - start
            progress.step, progress.done_in_epoch = progress.step + 1, progress.done_in_epoch + accum
            if len(progress.losses) >= config.warmup:
                progress.times.append(elapsed)
            progress.losses.append(float(loss.item()))
            if log is not None:
                log.write(_step_metrics(progress.step, progress.epoch, progress.losses[-1],
                                        lr_schedule.lr(progress.step - 1), elapsed, samples_per_step, device))
            if on_step is not None and ranks.is_main:
                on_step(progress.step, p.total_steps, progress.losses[-1], elapsed, samples_per_step)
            if any_rank(bool(received), ranks, device):
                progress.interrupted = received[0] if received else signal.SIGTERM
                break
            if config.checkpoint_every and progress.step % config.checkpoint_every == 0 \
                    and progress.step < p.total_steps:
                progress.saved = _save_at(config, p, s, ranks, progress)
        del micro_batches, batch_iter, loader
    if log is not None:
        log.close()
    return progress


def epoch_batches(order: list[int], batch_size: int, micro_per_epoch: int, done_in_epoch: int) -> list[list[int]]:
    """This process's batches (sample indices) of an epoch from its sampler ``order``, the ``done_in_epoch``
    already trained left out: a resumed epoch continues with the batch after the checkpoint's."""
    batches = [order[i * batch_size:(i + 1) * batch_size] for i in range(micro_per_epoch)]
    return batches[done_in_epoch:]


def epoch_loader(config: TrainConfig, p: Prepared, sampler: Any, epoch: int, done_in_epoch: int,
                 device: str) -> Any:
    """The DataLoader of the rest of an epoch. The order depends only on (seed, epoch) and the worker seeds
    on the loader's own generator, so a resumed run sees the batches an uninterrupted one would have."""
    from torch.utils.data import DataLoader

    sampler.set_epoch(epoch)
    p.data.set_epoch(epoch)  # augmentations differ per epoch, and are the same again on resume
    batches = epoch_batches(list(sampler), p.batch_size, p.micro_per_epoch, done_in_epoch)
    generator = torch.Generator().manual_seed((config.seed * 100_003 + epoch) % 2**64)  # any seed < 2**63
    workers = config.num_workers
    if workers is None:
        workers = default_workers(config.data, processes_on_host())
    return DataLoader(p.data.dataset, batch_sampler=batches, collate_fn=p.data.collate,
                      num_workers=workers, generator=generator, pin_memory=device.startswith("cuda"))


def _save_at(config: TrainConfig, p: Prepared, s: _Session, ranks: Ranks, progress: _Progress) -> Path | None:
    """A checkpoint of where the loop is (none without --checkpoint-dir). One taken at the end of an epoch
    records the next epoch's start, so that a resume does not walk an epoch with nothing left in it."""
    folder = config.output_dir
    if folder is None:
        return None
    epoch, done = next_epoch(progress.epoch, progress.done_in_epoch, p.micro_per_epoch, config.grad_accum)
    position = {"step": progress.step, "epoch": epoch, "batch_in_epoch": done}
    return _save(folder, s.model, s.optimizer, s.step_fn, ranks, s.sharded, p, config, position)


def parameter_digests(model: torch.nn.Module, optimizer: torch.optim.Optimizer, ranks: Ranks,
                      strategy: Strategy) -> tuple[str, ...]:
    """A digest of the trained parameters (not buffers) per rank under DDP, where every rank holds them all and
    they must agree; one under FSDP, where rank 0 gathers the shards. Every rank must call it (a collective)."""
    model_state, _ = full_state(model, optimizer, ranks, strategy)
    names = {name for name, _ in unwrap(model).named_parameters()}
    if strategy is Strategy.FSDP:
        return tuple(broadcast_object([parameter_digest(model_state, names)] if ranks.is_main else None, ranks))
    return tuple(gather_objects(parameter_digest(model_state, names), ranks))


def _result(config: TrainConfig, p: Prepared, s: _Session, ranks: Ranks, device: str, progress: _Progress,
            digests: tuple[str, ...]) -> TrainResult:
    times, accum = progress.times, config.grad_accum
    timing = summarize(times, num_warmup=config.warmup) if times else None
    timed_shape = p.data.batch_shape(p.batch_size) if p.data.batch_shape else p.shape
    return TrainResult(
        workload=p.workload.name, device=device, world_size=ranks.world_size,
        seq_len=timed_shape.seq_len, image_size=timed_shape.image_size,
        strategy="single" if not ranks.distributed else s.strategy.value.upper(), batch_size=p.batch_size,
        precision=config.precision.value, optimizer=config.optimizer.value, data=p.data.description,
        start_step=p.position["step"], end_step=progress.step, total_steps=p.total_steps, epoch=progress.epoch,
        interrupted=SIGNAL_NAMES.get(signal.Signals(progress.interrupted)) if progress.interrupted is not None
        else None,
        losses=tuple(progress.losses), timing=timing,
        samples_per_s=p.batch_size * accum * ranks.world_size / timing.median_s if timing else None,
        checkpoint=progress.saved, resumed_from=p.resume_from.path if p.resume_from else None,
        skipped_checkpoints=p.resume_from.skipped if p.resume_from else (), parameter_digests=digests,
        grad_accum=accum, activation_checkpointing=config.activation_checkpointing.value, compiled=config.compile,
        fp8=config.fp8, extra={"peak_rss_bytes": _peak_rss_bytes(),
               "metrics_path": str(progress.metrics_path) if progress.metrics_path else None,
               "peak_cuda_bytes": torch.cuda.max_memory_allocated(device) if device.startswith("cuda") else None},
    )


def _metrics_log(config: TrainConfig, ranks: Ranks) -> MetricsLog | None:
    """Rank 0's per-step log in --log-dir, else the checkpoint folder; None without either (or on other ranks)."""
    folder = config.log_dir if config.log_dir is not None else config.output_dir
    return MetricsLog(folder) if folder is not None and ranks.is_main else None


def _step_metrics(step: int, epoch: int, loss: float, lr: float, elapsed: float, samples: int,
                  device: str) -> StepMetrics:
    cuda = device.startswith("cuda")
    return StepMetrics(step=step, epoch=epoch, loss=loss, lr=lr, step_s=elapsed, samples_per_s=samples / elapsed,
                       memory_bytes=torch.cuda.max_memory_allocated(device) if cuda else _peak_rss_bytes(),
                       memory_kind="cuda peak allocated" if cuda else "peak resident set", time=metrics_now())


def _strategy(strategy: Strategy, ranks: Ranks) -> Strategy:
    if strategy is Strategy.AUTO:
        return Strategy.DDP
    return strategy


def _save(folder: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, step_fn: AccumulatingStep,
          ranks: Ranks, sharded: bool, p: Prepared, config: TrainConfig, position: dict[str, int]) -> Path:
    """Under FSDP every rank writes its shards (``checkpoint.save_sharded``); otherwise every rank sends its
    RNG states to rank 0, which writes one file. All wait for the write."""
    info = {**position, "samples_in_epoch": position["batch_in_epoch"] * p.batch_size * ranks.world_size,
            "world_size": ranks.world_size, "settings": p.settings, "options": config.options(),
            "learning_rate": config.learning_rate()}
    scaler = step_fn.scaler.state_dict() if step_fn.scaler else None
    if sharded:
        return checkpoint.save_sharded(folder, position["step"], sharded_state(model, optimizer),
                                       {"rng": checkpoint.rng_state(), "scaler": scaler},
                                       keep=config.keep_checkpoints, info=info)
    rngs = gather_objects(checkpoint.rng_state(), ranks)
    path = checkpoint.checkpoint_path(folder, position["step"])
    if ranks.is_main:
        model_state, optimizer_state = full_state(model, optimizer, ranks, Strategy.DDP)
        state = {"format": checkpoint.FORMAT, **position, "settings": p.settings, "model": model_state,
                 "optimizer": optimizer_state, "scaler": scaler, "rng": rngs}
        checkpoint.save(folder, position["step"], state, keep=config.keep_checkpoints, info=info)
    barrier(ranks)
    return path


def _mover(device: str) -> Callable[[Any], Any]:
    non_blocking = device.startswith("cuda")

    def move(x: Any) -> Any:
        return x.to(device, non_blocking=non_blocking) if isinstance(x, torch.Tensor) else x

    return move


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
    from gpuwise.profile.run import profile_step

    step = replace(config.step, workload=p.workload.name, batch_size=p.batch_size, seq_len=p.shape.seq_len,
                   image_size=p.shape.image_size)
    estimate = profile_step(p.workload, step, gpu_kernels=True).memory.peak_bytes
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
