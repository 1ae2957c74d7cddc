"""Record every aten op of a training step, and the memory live at each moment.

``StepTracer`` is a ``TorchDispatchMode``: it sees each op after autograd and
autocast have done their work, so it sees the backward and the dtype casts of
AMP as they really run. It works on fake tensors (nothing allocated) and on
real ones (the memory benchmark uses the same tracker on a real step).

Memory is counted per storage: a storage is live from the op that creates it
until Python frees it (a weak reference's callback). Each live storage has a
category, and the totals per category at the moment of the peak are the
breakdown of the peak.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode, is_traceable_wrapper_subclass
from torch.utils._pytree import tree_leaves
from torch.utils.module_tracker import ModuleTracker

from gpuwise import recompute
from gpuwise.profile import ops
from gpuwise.profile.result import Recurrence

WEIGHTS, INPUTS, ACTIVATIONS = "weights", "inputs", "activations"
GRADIENTS, OPTIMIZER_STATE, TEMPORARIES = "gradients", "optimizer_state", "temporaries"
# Autocast's bf16/fp16 copies of the weights, cached for the forward and saved for backward. FSDP's
# mixed-precision policy keeps no such copies: it gathers each block's parameters in the low dtype
# while the block runs, so a sharded prediction leaves them out.
WEIGHT_COPIES = "weight_copies"
CATEGORIES = (WEIGHTS, GRADIENTS, OPTIMIZER_STATE, INPUTS, ACTIVATIONS, WEIGHT_COPIES, TEMPORARIES)
STATE = (WEIGHTS, GRADIENTS, OPTIMIZER_STATE)

FORWARD, BACKWARD, OPTIMIZER = "forward", "backward", "optimizer"


@dataclass(frozen=True)
class OpEvent:
    op: str  # e.g. "aten.mm.default"
    kind: str
    phase: str
    module: str
    dtype: str
    flops: int  # matrix-product FLOPs (0 for memory-bound ops)
    vector_flops: int  # approximate FLOPs of memory-bound ops
    bytes: int  # bytes read + written, each tensor once
    recurrence: Recurrence | None = None  # recurrent-layer ops: their time-step loop


class LiveMemory:
    """Bytes of live storages by category, and the breakdown at the peak."""

    def __init__(self) -> None:
        self._live: dict[int, tuple[int, str]] = {}
        self._refs: dict[int, weakref.ref[Any]] = {}
        self.by_category = dict.fromkeys(CATEGORIES, 0)
        self.total_bytes = 0
        self.peak_bytes = 0
        self.peak_by_category = dict(self.by_category)
        self.peak_phase = ""
        # The largest the step's own tensors (all but weights, gradients and optimizer state) ever are,
        # with and without autocast's weight copies: what FSDP adds to each rank's shard of the state.
        self.peak_activity_bytes = 0
        self.peak_activity_no_copies_bytes = 0
        self.peak_optimizer_activity_bytes = 0

    def track(self, t: torch.Tensor, category: str, phase: str = "") -> None:
        """Start counting the storage behind ``t`` (once; a view adds nothing)."""
        storage = t.untyped_storage()
        key = id(storage)
        if key in self._live:
            return
        nbytes = int(storage.nbytes())
        self._live[key] = (nbytes, category)
        self._refs[key] = weakref.ref(storage, self._on_free(key))
        self.by_category[category] += nbytes
        self.total_bytes += nbytes
        if category not in STATE:
            activity = self._activity_bytes()
            if phase == OPTIMIZER:
                # The optimizer's temporaries are as large as the parameters it steps: a rank holding
                # 1/n of them (FSDP) makes 1/n of these, so they are kept apart.
                self.peak_optimizer_activity_bytes = max(self.peak_optimizer_activity_bytes, activity)
            else:
                self.peak_activity_bytes = max(self.peak_activity_bytes, activity)
                self.peak_activity_no_copies_bytes = max(self.peak_activity_no_copies_bytes,
                                                         activity - self.by_category[WEIGHT_COPIES])
        if self.total_bytes > self.peak_bytes:
            self.peak_bytes = self.total_bytes
            self.peak_by_category = dict(self.by_category)
            self.peak_phase = phase

    def retag(self, t: torch.Tensor, category: str, only_from: Iterable[str] = (TEMPORARIES,)) -> None:
        """Move a live storage to another category (e.g. a temporary saved for backward is an activation)."""
        key = id(t.untyped_storage())
        entry = self._live.get(key)
        if entry is None:
            self.track(t, category)
            return
        nbytes, old = entry
        if old == category or old not in only_from:
            return
        self._live[key] = (nbytes, category)
        self.by_category[old] -= nbytes
        self.by_category[category] += nbytes

    def _activity_bytes(self) -> int:
        """Live bytes of the step's own tensors: all but weights, gradients and optimizer state."""
        return self.total_bytes - sum(self.by_category[c] for c in STATE)

    def category_of(self, t: Any) -> str | None:
        """The category of a live tensor's storage, None if it is not tracked (or not a tensor)."""
        if not isinstance(t, torch.Tensor):
            return None
        entry = self._live.get(id(t.untyped_storage()))
        return entry[1] if entry is not None else None

    def category_bytes(self, category: str) -> int:
        return self.by_category[category]

    def _on_free(self, key: int) -> Any:
        return lambda _ref: self._free(key)

    def _free(self, key: int) -> None:
        entry = self._live.pop(key, None)
        self._refs.pop(key, None)
        if entry is not None:
            nbytes, category = entry
            self.by_category[category] -= nbytes
            self.total_bytes -= nbytes

    def reset_peak(self) -> None:
        self.peak_bytes = self.total_bytes
        self.peak_by_category = dict(self.by_category)
        activity = self._activity_bytes()
        self.peak_activity_bytes = activity
        self.peak_activity_no_copies_bytes = activity - self.by_category[WEIGHT_COPIES]
        self.peak_optimizer_activity_bytes = 0


def _tensors(tree: Any) -> Iterator[torch.Tensor]:
    for leaf in tree_leaves(tree):
        if isinstance(leaf, torch.Tensor):
            yield leaf


def _innermost(parents: set[str]) -> str:
    names = [p for p in parents if p != "Global"]
    if not names:
        return ""
    name = max(names, key=lambda n: (n.count("."), len(n)))
    _, _, path = name.partition(".")  # drop the root module's class name
    return path or name


class ForwardModuleTracker(ModuleTracker):
    """torch's ``ModuleTracker``, silent while activation checkpointing reruns a block's forward inside
    backward. For every module it runs, the tracker hooks the autograd graph of the module's outputs;
    a recomputed forward's graph is never run backward, so those hooks would keep every recomputed
    tensor alive to the end of the step (and the profile would count them). The op attribution of a
    recompute comes from the node being run, as for the rest of backward (``StepTracer._module``)."""

    def _fw_pre_hook(self, mod: Any, input: Any) -> None:
        if torch._C._current_graph_task_id() == -1:  # not inside a backward pass
            super()._fw_pre_hook(mod, input)

    def _fw_post_hook(self, mod: Any, input: Any, output: Any) -> None:
        if torch._C._current_graph_task_id() == -1:
            super()._fw_post_hook(mod, input, output)


class StepTracer(TorchDispatchMode):
    """Records an ``OpEvent`` per aten op and tracks the memory its outputs take."""

    def __init__(self, memory: LiveMemory, modules: ModuleTracker) -> None:
        super().__init__()
        self.memory = memory
        self.modules = modules
        self.phase = FORWARD
        self.events: list[OpEvent] = []
        self.recompute_flops = 0  # of checkpointed blocks' forward ops run again in backward
        # Autograd node (by sequence number) -> the module whose forward created it. The module
        # tracker's view of backward is unreliable; the node being run is not.
        self._node_module: dict[int, str] = {}

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if any(is_traceable_wrapper_subclass(t) for t in _tensors((args, kwargs))):
            return NotImplemented
        out = func(*args, **kwargs)
        if func.namespace == "prim":  # prim.device and friends: metadata queries, called very often
            return out
        kind = ops.refine_kind(func, ops.classify(func), args)
        if self.phase == FORWARD:
            # The autograd kernel creates the op's node (taking a sequence number) before dispatching here.
            self._node_module.setdefault(torch._C._autograd._get_sequence_nr() - 1, _innermost(self.modules.parents))
        if kind != ops.VIEW:
            self._record(func, kind, args, kwargs, out)
        category = TEMPORARIES
        if func is torch.ops.aten._to_copy.default and self.memory.category_of(args[0]) == WEIGHTS:
            category = WEIGHT_COPIES
        for t in _tensors(out):
            self.memory.track(t, category, self.phase)
        return out

    def _record(self, func: Any, kind: str, args: Any, kwargs: Any, out: Any) -> None:
        inputs = {id(t): t for t in _tensors((args, kwargs))}
        outputs = {id(t): t for t in _tensors(out)}
        nbytes = sum(ops.tensor_bytes(t) for t in inputs.values()) + sum(
            ops.tensor_bytes(t) for t in outputs.values()
        )
        dtype = next((t.dtype for t in inputs.values() if t.is_floating_point()), None)
        if dtype is None:
            dtype = next((t.dtype for t in outputs.values()), torch.float32)
        out_numel = sum(t.numel() for t in outputs.values())
        flops = ops.tensor_flops(func, args, out) if kind in ops.TENSOR_KINDS else 0
        if self.phase == BACKWARD and (torch.is_grad_enabled() or recompute.recomputing()):
            # Backward runs with grad mode off; checkpointing's recompute turns it on for the forward it reruns
            # (but inside an autograd Function's forward, as torchao's FP8 products run: recomputing() says).
            self.recompute_flops += flops
        self.events.append(
            OpEvent(
                op=str(func),
                kind=kind,
                phase=self.phase,
                module=self._module(),
                dtype=str(dtype).removeprefix("torch."),
                flops=flops,
                vector_flops=0 if kind in ops.TENSOR_KINDS else ops.vector_flops(func, out_numel),
                bytes=nbytes,
                recurrence=ops.recurrence(func, args) if kind == ops.RNN else None,
            )
        )


    def _module(self) -> str:
        if self.phase == FORWARD:
            return _innermost(self.modules.parents)
        if self.phase == BACKWARD:
            node = torch._C._current_autograd_node()
            return self._node_module.get(node._sequence_nr(), "") if node is not None else ""
        return self.phase


@contextmanager
def tag_saved_activations(memory: LiveMemory) -> Iterator[None]:
    """Tensors that autograd saves for backward are activations (weights and inputs stay what they are)."""

    def pack(t: torch.Tensor) -> torch.Tensor:
        memory.retag(t, ACTIVATIONS)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        yield


@contextmanager
def tag_gradients(memory: LiveMemory, params: list[torch.nn.Parameter]) -> Iterator[None]:
    """A parameter's ``.grad`` storage is a gradient from the moment it is accumulated."""

    def hook(p: torch.Tensor) -> None:
        if p.grad is not None:
            memory.retag(p.grad, GRADIENTS)

    handles = [p.register_post_accumulate_grad_hook(hook) for p in params if p.requires_grad]
    try:
        yield
    finally:
        for h in handles:
            h.remove()
