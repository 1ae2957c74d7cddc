"""The processes of one run: who am I, the process group, and a model shared by DDP or FSDP.

``Ranks.from_env`` reads what torchrun sets (RANK, LOCAL_RANK, WORLD_SIZE); without torchrun
the run is one process and nothing here touches torch.distributed. ``process_group`` initialises
the group (NCCL on GPUs, gloo on CPUs) and always destroys it. Single-file checkpoints take and
load state dicts whole ("full"), the same for one process, DDP and FSDP; FSDP's own checkpoints
take each rank's shards (``sharded_state``) for ``torch.distributed.checkpoint``, which can load
them into any of the three, so a checkpoint written under one strategy resumes under another.
"""

from __future__ import annotations

import gc
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from gpuwise.config import Strategy
from gpuwise.recompute import blocks


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> Ranks:
        env = os.environ
        return cls(rank=int(env.get("RANK", 0)), local_rank=int(env.get("LOCAL_RANK", 0)),
                   world_size=int(env.get("WORLD_SIZE", 1)))


@contextmanager
def process_group(ranks: Ranks, device: str) -> Iterator[None]:
    """The default process group for a multi-process run (nothing for one process), destroyed after."""
    if not ranks.distributed:
        yield
        return
    import torch.distributed as dist

    backend = "nccl" if device.startswith("cuda") else "gloo"
    device_id = torch.device(device) if backend == "nccl" else None
    restart = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))
    if restart:
        # Workers torchrun restarted (--max-restarts) meet in the agent's store again, which still holds the
        # addresses the dead workers published: gloo would connect to those ("Connection refused"). Each
        # attempt gets keys of its own.
        from torch.distributed import PrefixStore  # type: ignore[attr-defined]  # exported at runtime
        from torch.distributed.rendezvous import rendezvous

        store, rank, world_size = next(rendezvous("env://"))
        dist.init_process_group(backend, store=PrefixStore(f"gpuwise/restart-{restart}", store), rank=rank,
                                world_size=world_size, device_id=device_id)
    else:
        dist.init_process_group(backend, device_id=device_id)
    try:
        yield
        # FSDP's modules sit in reference cycles: collect them, and let every rank finish its
        # collectives, while the group still lives. Tearing gloo down under them aborts a rank
        # ("terminate called without an active exception"), about one run in four with FSDP.
        gc.collect()
        dist.barrier()
    finally:
        dist.destroy_process_group()


def wrap(model: nn.Module, ranks: Ranks, device: str, strategy: Strategy,
         param_dtype: torch.dtype | None = None) -> nn.Module:
    """The model as the strategy runs it: itself on one process, DDP, or sharded by FSDP2 (``fully_shard``).

    ``param_dtype`` (FSDP only): run forward and backward on parameters gathered in this dtype, and
    reduce gradients in fp32 (``MixedPrecisionPolicy(param_dtype, reduce_dtype=float32)``, as torchtitan
    runs bf16); the sharded fp32 parameters stay the optimizer's master copy."""
    if not ranks.distributed:
        return model
    if strategy is Strategy.FSDP:
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        mesh = init_device_mesh(device.split(":")[0], (ranks.world_size,))
        policy = MixedPrecisionPolicy(param_dtype=param_dtype, reduce_dtype=torch.float32) \
            if param_dtype is not None else MixedPrecisionPolicy()
        for unit in blocks(model):  # each gathered only while it runs
            fully_shard(unit, mesh=mesh, mp_policy=policy)
        fully_shard(model, mesh=mesh, mp_policy=policy)
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [torch.device(device).index] if device.startswith("cuda") else None
    return DistributedDataParallel(model, device_ids=ids)


def unwrap(model: nn.Module) -> nn.Module:
    from torch.nn.parallel import DistributedDataParallel

    return model.module if isinstance(model, DistributedDataParallel) else model


def full_state(model: nn.Module, optimizer: torch.optim.Optimizer, ranks: Ranks,
               strategy: Strategy) -> tuple[dict[str, Any], dict[str, Any]]:
    """Model and optimizer state dicts, whole and on the CPU (under FSDP: gathered, on rank 0 only —
    every rank must call this, as it is a collective there)."""
    if ranks.distributed and strategy is Strategy.FSDP:
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            get_model_state_dict,
            get_optimizer_state_dict,
        )

        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        return (get_model_state_dict(model, options=options),
                get_optimizer_state_dict(model, optimizer, options=options))
    return _to_cpu(unwrap(model).state_dict()), _to_cpu(optimizer.state_dict())


def sharded_state(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """This rank's model and optimizer state, as ``torch.distributed.checkpoint`` saves and loads it: the
    local shards under FSDP (nothing gathered), whole tensors otherwise."""
    from torch.distributed.checkpoint.state_dict import get_state_dict

    model_state, optimizer_state = get_state_dict(model, optimizer)
    return {"model": model_state, "optimizer": optimizer_state}


def load_sharded_state(model: nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    from torch.distributed.checkpoint.state_dict import set_state_dict

    set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optimizer"])


def load_full_state(model: nn.Module, optimizer: torch.optim.Optimizer, model_state: dict[str, Any],
                    optimizer_state: dict[str, Any], ranks: Ranks, strategy: Strategy) -> None:
    if ranks.distributed and strategy is Strategy.FSDP:
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            set_model_state_dict,
            set_optimizer_state_dict,
        )

        options = StateDictOptions(full_state_dict=True)
        set_model_state_dict(model, model_state, options=options)
        set_optimizer_state_dict(model, optimizer, optimizer_state, options=options)
        return
    unwrap(model).load_state_dict(model_state)
    optimizer.load_state_dict(optimizer_state)


def parameter_digest(model_state: dict[str, Any], names: set[str] | None = None) -> str:
    """sha256 of the tensors' bytes in name order (only ``names`` if given): equal digests mean identical
    tensors. Pass the parameter names to leave buffers out: DDP leaves each rank the BatchNorm statistics
    of its own last batch."""
    digest = hashlib.sha256()
    for name in sorted(n for n in model_state if names is None or n in names):
        tensor = model_state[name]
        if isinstance(tensor, torch.Tensor):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def barrier(ranks: Ranks) -> None:
    if ranks.distributed:
        import torch.distributed as dist

        dist.barrier()


def any_rank(flag: bool, ranks: Ranks, device: str) -> bool:
    """True on every rank if ``flag`` is True on any (all stop together, at the same step)."""
    if not ranks.distributed:
        return flag
    import torch.distributed as dist

    value = torch.tensor([1 if flag else 0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def gather_objects(obj: Any, ranks: Ranks) -> list[Any]:
    """Every rank's ``obj``, in rank order (on every rank)."""
    if not ranks.distributed:
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * ranks.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, ranks: Ranks) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not ranks.distributed:
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _to_cpu(state: Any) -> Any:
    if isinstance(state, torch.Tensor):
        return state.detach().cpu()
    if isinstance(state, dict):
        return {k: _to_cpu(v) for k, v in state.items()}
    if isinstance(state, list):
        return [_to_cpu(v) for v in state]
    if isinstance(state, tuple):
        return tuple(_to_cpu(v) for v in state)
    return state
