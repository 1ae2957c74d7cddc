"""Resuming a run: which checkpoint, where in the data it continues, and the state it restores.

A checkpoint's manifest (``step-N.json``) records the step, the epoch and how many micro batches of it
each process had consumed, the run's settings and its number of processes. A resume takes the newest
good checkpoint of the folder, checks that it is of the same run (or takes the run's settings from it),
continues the data where it stopped (on another number of processes too, ``position_on``) and restores
the model, the optimizer, the gradient scaler and each rank's RNG streams.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import torch

from gpuwise.config import Strategy
from gpuwise.errors import GpuwiseError
from gpuwise.train import checkpoint
from gpuwise.train.config import TrainConfig
from gpuwise.train.distributed import Ranks, load_full_state, load_sharded_state, sharded_state
from gpuwise.train.step import AccumulatingStep


def next_epoch(epoch: int, done_in_epoch: int, micro_per_epoch: int, grad_accum: int) -> tuple[int, int]:
    """Where training continues: the next epoch's start once fewer micro batches are left in this one than an
    optimizer step takes (the sampler drops them), else here."""
    if micro_per_epoch - done_in_epoch < grad_accum:
        return epoch + 1, 0
    return epoch, done_in_epoch


def resume_position(record: dict[str, Any], world_size: int, batch_size: int, micro_per_epoch: int,
                    grad_accum: int) -> tuple[dict[str, int], str, int]:
    """Where a run resumed from a checkpoint's manifest ``record`` starts (step, epoch, micro batch in the
    epoch), how it continues the data on another number of processes ('' on the same), and the checkpoint's
    number of processes."""
    position = {k: int(record[k]) for k in ("step", "epoch", "batch_in_epoch")}
    theirs_world = int(record.get("world_size", record["settings"].get("world_size", world_size)))
    note = ""
    if theirs_world != world_size:
        position["batch_in_epoch"], note = position_on(world_size, batch_size, theirs_world, position)
    position["epoch"], position["batch_in_epoch"] = next_epoch(position["epoch"], position["batch_in_epoch"],
                                                                micro_per_epoch, grad_accum)
    return position, note, theirs_world


def position_on(world_size: int, batch_size: int, theirs: int, position: dict[str, int]) -> tuple[int, str]:
    """Where a run on ``world_size`` processes continues an epoch that ``theirs`` processes had begun.

    The processes of an epoch together consume a prefix of its permutation (``DistributedSampler``
    deals sample ``j`` to rank ``j mod world``, and every rank's batches advance in step), so the
    checkpoint's position is ``batch_in_epoch × batch × theirs`` samples into it, whatever the number
    of processes: the new ones continue from there when that is a whole number of their batches."""
    done = position["batch_in_epoch"] * batch_size * theirs
    per_batch = batch_size * world_size
    start = done // per_batch
    what = f"the checkpoint's {theirs} process{'es' if theirs > 1 else ''} → {world_size} now"
    if done % per_batch == 0:
        return start, (f"data: {what}; epoch {position['epoch'] + 1} continues at sample {done:,} of its order, "
                       "exactly where it stopped")
    return start, (f"data: {what}; {done:,} samples of epoch {position['epoch'] + 1} were trained, not a whole "
                   f"number of batches of {batch_size} × {world_size}: it continues with the new world size's "
                   f"order from sample {start * per_batch:,} ({done - start * per_batch} samples seen again)")


def find_resume(folder: Path, settings: dict[str, Any]) -> checkpoint.Found:
    found = newest_good(folder)
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
    from gpuwise.config import OptimizerName, Precision

    assert config.resume is not None
    record = checkpoint.manifest(newest_good(config.resume).path)
    s, o = record["settings"], record.get("options", {})
    # How long the run is and how it checkpoints shape it too (not its result: free to change on resume).
    length = {key: o[key] for key in ("steps", "epochs", "checkpoint_every", "keep_checkpoints", "warmup")
              if o.get(key) is not None}
    return config.with_(
        workload=s["workload"], data=s["data"], batch_size=s["batch_size"],
        precision=Precision(s["precision"]), optimizer=OptimizerName(s["optimizer"]), seed=s["seed"],
        seq_len=s["seq_len"], image_size=s["image_size"],
        synthetic_samples=s["synthetic_samples"] or config.synthetic_samples, grad_accum=o.get("grad_accum", 1),
        activation_checkpointing=o.get("activation_checkpointing", config.activation_checkpointing.value),
        compile=o.get("compile", config.compile), fp8=o.get("fp8", config.fp8),
        strategy=o.get("strategy", config.strategy.value), **length,
        **{k: record.get("learning_rate", {}).get(k, v) for k, v in config.learning_rate().items()},
    )


def newest_good(folder: Path) -> checkpoint.Found:
    """The checkpoint a resume starts from, or one line saying why there is none."""
    if not folder.is_dir():
        what = "it is a file, not a folder" if folder.exists() else "no such folder"
        raise GpuwiseError(f"--resume {folder}: {what}; give the --checkpoint-dir of the run to continue")
    found = checkpoint.find(folder)
    if found is not None:
        return found
    problems = checkpoint.problems(folder)
    if problems and all(problem == checkpoint.NO_MANIFEST for _, problem in problems):
        names = ", ".join(name for name, _ in problems[:3]) + (" ..." if len(problems) > 3 else "")
        raise GpuwiseError(
            f"--resume {folder}: its checkpoints ({names}) have no manifests (step-N.json, written after each "
            "checkpoint with its size and sha256, to tell a whole checkpoint from one a crash cut short): copy "
            "the .json files along with the checkpoints, or start without --resume"
        )
    if problems:
        why = "; ".join(f"{name}: {problem}" for name, problem in problems[:3])
        raise GpuwiseError(f"--resume {folder}: no good checkpoint there ({why}); start without --resume")
    held = sorted(p.name for p in folder.iterdir())[:3]
    what = f"it holds {', '.join(held)}{' ...' if len(held) == 3 else ''}" if held else "it is empty"
    raise GpuwiseError(f"--resume {folder}: no good checkpoint there ({what}); start without --resume")


def restore(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, step_fn: AccumulatingStep,
            ranks: Ranks, strategy: Strategy, *, seed: int, step: int, their_world_size: int | None) -> None:
    """Model, optimizer, scaler and this rank's RNG states from the checkpoint at ``path`` (of ``step``, written
    by ``their_world_size`` processes), in either format. On another number of processes than the checkpoint's,
    no rank's RNG stream continues: each seeds its RNGs anew from (seed, step, rank)."""
    if checkpoint.is_sharded(path):
        state = sharded_state(model, optimizer)
        checkpoint.load_sharded(path, state)
        load_sharded_state(model, optimizer, state)
        own = checkpoint.load_rank_state(path, ranks.rank)
        rng, scaler = (own["rng"], own.get("scaler")) if own is not None else (None, None)
    else:
        state = checkpoint.load(path)
        load_full_state(model, optimizer, state["model"], state["optimizer"], ranks, strategy)
        rngs = state["rng"]
        rng, scaler = (rngs[ranks.rank] if ranks.rank < len(rngs) else None), state.get("scaler")
    if step_fn.scaler is not None and scaler:
        step_fn.scaler.load_state_dict(scaler)
    if rng is not None and their_world_size == ranks.world_size:
        checkpoint.set_rng_state(rng)
    else:  # other processes than the checkpoint's: no rank's stream continues, each starts anew
        seed_everything((seed * 1_000_003 + step * 1_009 + ranks.rank) % 2**63)
    del state


def seed_everything(seed: int) -> None:
    """Seed every RNG a step may draw from (torch, Python, NumPy): a run starts from its seed."""
    torch.manual_seed(seed)
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:  # pragma: no cover - numpy comes with torch's usual installs
        pass
