"""Profile one training step without allocating anything real.

The model is built, and the step run, under ``FakeTensorMode``: every tensor
has a shape, dtype and storage size but no data, so a 70B-parameter model
profiles on a laptop. The step is the steady state of training: the optimizer
state exists already (as after the first step), gradients start at ``None``
(``zero_grad(set_to_none=True)``), then forward + loss, backward, optimizer step.
"""

from __future__ import annotations

import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import torch
from torch._subclasses.fake_tensor import FakeTensorMode

from gpuwise import recompute, transforms
from gpuwise.config import (
    ActivationCheckpointing,
    OptimizerName,
    Precision,
    StepConfig,
    check_batch_size,
    optimizer_for,
)
from gpuwise.errors import GpuwiseError
from gpuwise.fake import skip_weight_init
from gpuwise.profile import ops
from gpuwise.profile.attention import FusedAttention
from gpuwise.profile.kernels import RealKernelOutputs
from gpuwise.profile.result import KindSummary, LayerSummary, Memory, OpGroup, Profile, Recurrence, UncountedOp
from gpuwise.profile.tracer import (
    ACTIVATIONS,
    BACKWARD,
    FORWARD,
    INPUTS,
    OPTIMIZER,
    OPTIMIZER_STATE,
    WEIGHTS,
    ForwardModuleTracker,
    LiveMemory,
    OpEvent,
    StepTracer,
    tag_gradients,
    tag_saved_activations,
)
from gpuwise.workloads import Workload, get_workload
from gpuwise.workloads.registry import Batch

GRAD_SCALE = 65536.0  # GradScaler's initial scale; its value does not change the cost


def profile(
    workload: str | Workload,
    *,
    batch_size: int | None = None,
    precision: str | Precision = Precision.FP32,
    optimizer: str | OptimizerName | None = None,
    seq_len: int | None = None,
    image_size: int | None = None,
    gpu_kernels: bool = False,
    activation_checkpointing: str | ActivationCheckpointing = ActivationCheckpointing.NONE,
    low_precision_params: bool = False,
    attention_written_out: bool = False,
    fp8: bool = False,
) -> Profile:
    """FLOPs, bytes and memory of one training step of ``workload``; nothing real is allocated.

    ``optimizer`` None: the workload's own (a ``UserWorkload`` may name one), else AdamW.

    ``gpu_kernels`` profiles attention, dropout and GRUs as a GPU runs them (one fused kernel each,
    attention dropout included) instead of the CPU's unfused paths; see ``gpuwise.profile.attention``,
    ``gpuwise.profile.dropout`` and ``gpuwise.profile.rnn``; with ``attention_written_out``, attention as
    separate kernels that write out the (seq × seq) scores (``gpuwise.profile.attention._written_out``).
    ``fp8``: the blocks' linear layers as torchao's float8 training runs them (``gpuwise.float8``).
    """
    w = get_workload(workload)
    precision = Precision.parse(precision)
    if precision is Precision.AUTO:
        raise GpuwiseError("--precision auto chooses by device, and a profile has none: give fp32, tf32, amp-bf16 or "
                           "amp-fp16 (predict and plan choose per GPU)")
    config = StepConfig(
        workload=w.name,
        batch_size=check_batch_size(w.default_batch_size if batch_size is None else batch_size),
        precision=precision,
        optimizer=optimizer_for(optimizer, w.optimizer),
        seq_len=seq_len,
        image_size=image_size,
        activation_checkpointing=ActivationCheckpointing.parse(activation_checkpointing),
        low_precision_params=low_precision_params,
        fp8=fp8,
    )
    return profile_step(w, config, gpu_kernels=gpu_kernels, attention_written_out=attention_written_out)


def profile_step(
    w: Workload,
    config: StepConfig,
    *,
    fake: bool = True,
    around_step: Callable[[], AbstractContextManager[object]] = nullcontext,
    gpu_kernels: bool = False,
    attention_written_out: bool = False,
) -> Profile:
    """Trace one steady-state step. ``fake=False`` runs it for real on the CPU with the same
    tracker, which is how the memory benchmark checks the fake estimate; ``around_step`` wraps
    the step alone, once the model, optimizer state and batch exist (the benchmark reads the
    process's RSS there)."""
    shape = w.resolve_shape(config.seq_len, config.image_size)
    assert config.batch_size is not None
    fake_mode = FakeTensorMode() if fake else nullcontext()
    real_outputs = RealKernelOutputs() if fake else nullcontext()  # real kernels allocate their own
    # GPU profiles: attention, dropout and GRUs as the fused kernels a GPU runs (attention.py, dropout.py, rnn.py).
    if attention_written_out and not gpu_kernels:
        raise ValueError("attention_written_out profiles a GPU's kernels: pass gpu_kernels=True")
    fused = _gpu_kernels(attention_written_out) if gpu_kernels else nullcontext()
    with fake_mode, _data_dependent_shapes(fake and w.data_dependent) as substitutions, real_outputs, fused:
        with skip_weight_init() if fake else nullcontext():
            model = w.build_model(shape)
        model.train()
        param_dtype = config.precision.autocast_dtype if config.low_precision_params else None
        if config.low_precision_params and param_dtype is None:
            raise GpuwiseError("low-precision parameters need an AMP precision: use --precision amp-bf16")
        if param_dtype is not None:
            _cast_parameters(model, param_dtype)
        transforms.apply(model, workload=w.name, precision=config.precision, fp8=config.fp8,
                         activation_checkpointing=config.activation_checkpointing, mark_recompute=True)
        # The largest unit FSDP gathers whole while it runs (gpuwise.predict.memory).
        block_params = max((sum(p.numel() for p in b.parameters()) for b in recompute.blocks(model)), default=0)
        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            raise GpuwiseError(f"workload '{w.name}': the model has no trainable parameters; there is no step to train")
        opt = config.optimizer.build(params)
        _create_optimizer_state(params, opt)
        batch = w.make_batch(config.batch_size, shape)

        memory = track_resident(model, opt, batch)

        with (around_step(), ForwardModuleTracker() as modules, StepTracer(memory, modules) as tracer,
              warnings.catch_warnings()):
            # Selective checkpointing keeps its tensors outside saved-tensor hooks (torch's default, which
            # it warns will change); the profile counts them from live memory instead, either way.
            warnings.filterwarnings("ignore", "A saved_tensors_hooks context", FutureWarning)
            checkpointed = config.activation_checkpointing is not ActivationCheckpointing.NONE
            activations_bytes = _run_step(model, params, opt, batch, w, config.precision, tracer, memory,
                                          checkpointed=checkpointed, autocast=param_dtype is None)
        grads_bytes = sum(p.grad.numel() * p.grad.element_size() for p in params if p.grad is not None)

    num_total = sum(p.numel() for p in model.parameters())
    num_trainable = sum(p.numel() for p in params)
    notes = [
        "FLOPs count matrix products (matmul, convolution, attention, RNN gates); a multiply-add is 2 FLOPs.",
        "Causal attention counts half of the (seq × seq) products, as the flash kernels skip the masked half;"
        " other attention counts them all.",
    ]
    if config.fp8:
        notes.append("FP8 linear layers (torchao float8 training): their products run in FP8 (torch._scaled_mm), "
                     "with the casts and scales around them.")
    if attention_written_out:
        notes.append("Attention is written out (scores, softmax, dropout and products as separate kernels), as "
                     "programs that do not call a fused attention kernel run it.")
    if config.activation_checkpointing is not ActivationCheckpointing.NONE:
        notes.append(f"Activation checkpointing ({config.activation_checkpointing.value}): the forward ops run again "
                     "in backward are counted in backward (recompute FLOPs apart); training FLOPs exclude them.")
    if config.precision.autocast_dtype is not None:
        notes.append("Autocast op lists are CUDA's (softmax, layer_norm, pow, losses and reductions in float32)"
                     if gpu_kernels else "Autocast op lists are the CPU's; CUDA runs more ops in float32.")
    return _summarize(
        w,
        config,
        tracer.events,
        memory,
        num_total=num_total,
        num_trainable=num_trainable,
        activations_bytes=activations_bytes,
        gradients_bytes=grads_bytes,
        substitutions=tuple(sorted(substitutions.items())),
        notes=tuple(notes),
        recompute_flops=tracer.recompute_flops,
        block_params=block_params,
    )


@contextmanager
def _gpu_kernels(attention_written_out: bool = False) -> Iterator[None]:
    from gpuwise.profile.autocast import CudaAutocastLists
    from gpuwise.profile.dropout import FusedDropout
    from gpuwise.profile.float8 import fused_fp8_casts
    from gpuwise.profile.norm import FusedRMSNorm
    from gpuwise.profile.rnn import FusedGRU, OneDnnLSTM

    with (FusedAttention(attention_written_out), FusedDropout(), FusedGRU(), OneDnnLSTM(), FusedRMSNorm(),
          CudaAutocastLists(), fused_fp8_casts()):
        yield


def _cast_parameters(model: torch.nn.Module, dtype: torch.dtype) -> None:
    """Floating parameters and buffers to ``dtype``, as new tensors (``Module.to`` swaps tensors in
    place, which fake tensors do not allow)."""
    cast: dict[int, torch.nn.Parameter] = {}  # a parameter shared by two modules (tied embeddings) stays one
    for module in model.modules():
        for name, p in module._parameters.items():
            if p is not None and p.is_floating_point():
                if id(p) not in cast:
                    cast[id(p)] = torch.nn.Parameter(p.detach().to(dtype), requires_grad=p.requires_grad)
                module._parameters[name] = cast[id(p)]
        for name, b in module._buffers.items():
            if b is not None and b.is_floating_point():
                module._buffers[name] = b.to(dtype)


def has_gpu_kernels(p: Profile) -> bool:
    """Whether a profile made with ``gpu_kernels`` holds ops those modes put in (fused attention,
    recurrent layers, CUDA's dropout, CUDA's autocast lists under AMP): where it does not, the CPU's
    own profile is the same step."""
    from gpuwise.profile.dropout import FUSED_DROPOUT_OPS

    if p.precision.autocast_dtype is not None:
        return True
    return any(g.kind in (ops.ATTENTION, ops.RNN) or g.op in FUSED_DROPOUT_OPS for g in p.ops)


def track_resident(model: torch.nn.Module, opt: torch.optim.Optimizer, batch: Batch) -> LiveMemory:
    """A tracker that already counts what is resident before a step: weights, optimizer state, the batch."""
    memory = LiveMemory()
    for weight in [*model.parameters(), *model.buffers()]:
        memory.track(weight, WEIGHTS)
    for state in opt.state.values():
        for v in state.values():
            if isinstance(v, torch.Tensor):
                memory.track(v, OPTIMIZER_STATE)
    for t in _batch_tensors(batch):
        memory.track(t, INPUTS)
    memory.reset_peak()
    return memory


def _create_optimizer_state(params: list[torch.nn.Parameter], opt: torch.optim.Optimizer) -> None:
    """One step on zero gradients creates the optimizer state, as the first real step would."""
    for p in params:
        p.grad = torch.zeros_like(p)
    opt.step()
    opt.zero_grad(set_to_none=True)


def _run_step(
    model: torch.nn.Module,
    params: list[torch.nn.Parameter],
    opt: torch.optim.Optimizer,
    batch: Batch,
    w: Workload,
    precision: Precision,
    tracer: StepTracer,
    memory: LiveMemory,
    *,
    checkpointed: bool = False,
    autocast: bool = True,
) -> int:
    """Forward + loss, backward, optimizer step; returns the bytes saved for backward.

    Checkpointed blocks keep their inputs and selected outputs in checkpointing's own holders, not
    through autograd's saved-tensor hooks, so there the saved bytes are what forward left alive."""
    dtype = precision.autocast_dtype if autocast else None
    autocasting = torch.autocast("cpu", dtype=dtype) if dtype is not None else nullcontext()
    opt.zero_grad(set_to_none=True)
    tracer.phase = FORWARD
    before_bytes = memory.total_bytes
    with tag_saved_activations(memory), autocasting:
        loss = w.forward_loss(model, batch)
    if precision is Precision.AMP_FP16:
        loss = loss * GRAD_SCALE  # GradScaler.scale
    activations_bytes = memory.category_bytes(ACTIVATIONS)
    if checkpointed:
        activations_bytes = max(activations_bytes, memory.total_bytes - before_bytes)
    tracer.phase = BACKWARD
    with tag_gradients(memory, params):
        _backward(loss)
    del loss
    tracer.phase = OPTIMIZER
    if precision is Precision.AMP_FP16:
        # GradScaler.unscale_ and update; its .item() on found_inf is a host sync, not device work.
        found_inf = torch.zeros(1)
        inv_scale = torch.full((1,), 1.0 / GRAD_SCALE)
        grads = [p.grad for p in params if p.grad is not None]
        torch._amp_foreach_non_finite_check_and_unscale_(grads, found_inf, inv_scale)
    opt.step()
    return activations_bytes


def _backward(loss: torch.Tensor) -> None:
    """``loss.backward()`` with the profile's torch-function modes still active.

    ``Tensor.backward`` is itself dispatched through those modes, each of which steps aside while
    it runs: a checkpointed block's forward, run again inside backward, would then take the CPU's
    unfused attention and dropout instead of the kernels it ran in forward. The autograd engine's
    entry point, under ``Tensor.backward``, is called directly instead."""
    from torch.autograd.graph import _engine_run_backward

    _engine_run_backward((loss,), (torch.ones_like(loss),), False, False, (), allow_unreachable=True,
                         accumulate_grad=True)


def _batch_tensors(batch: Any) -> list[torch.Tensor]:
    from torch.utils._pytree import tree_leaves

    return [t for t in tree_leaves(batch) if isinstance(t, torch.Tensor)]


@contextmanager
def _data_dependent_shapes(fake: bool) -> Iterator[Counter[str]]:
    """Bounded synthetic sizes for data-dependent ops (detection models), counted for the audit."""
    if not fake:
        yield Counter()
        return
    try:
        from gpuwise.profile.datadep import DataDependentShapes
    except ImportError:  # pragma: no cover - until detection support lands
        yield Counter()
        return
    with DataDependentShapes() as mode:
        yield mode.substitutions


def _summarize(
    w: Workload,
    config: StepConfig,
    events: list[OpEvent],
    memory: LiveMemory,
    *,
    num_total: int,
    num_trainable: int,
    activations_bytes: int,
    gradients_bytes: int,
    substitutions: tuple[tuple[str, int], ...],
    notes: tuple[str, ...],
    recompute_flops: int = 0,
    block_params: int = 0,
) -> Profile:
    shape = w.resolve_shape(config.seq_len, config.image_size)
    groups: Counter[tuple[str, str, str, str, int, int, int, Recurrence | None]] = Counter(
        (e.op, e.kind, e.phase, e.dtype, e.flops, e.vector_flops, e.bytes, e.recurrence) for e in events
    )
    op_groups = tuple(
        OpGroup(
            op=k[0], kind=k[1], phase=k[2], dtype=k[3], count=n, flops=k[4], vector_flops=k[5], bytes=k[6],
            recurrence=k[7],
        )
        for k, n in sorted(groups.items(), key=lambda kv: -(kv[0][4] * kv[1]))
    )

    kind_acc: dict[str, list[int]] = defaultdict(lambda: [0] * 7)
    layer_acc: dict[str, list[int]] = defaultdict(lambda: [0] * 4)
    uncounted: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for e in events:
        k = kind_acc[e.kind]
        k[0] += 1
        k[1 + (FORWARD, BACKWARD, OPTIMIZER).index(e.phase)] += e.flops
        k[4] += e.flops
        k[5] += e.vector_flops
        k[6] += e.bytes
        layer = layer_acc[e.module or "(top level: loss)"]
        layer[0] += 1
        layer[1 if e.phase == FORWARD else 2] += e.flops if e.phase != OPTIMIZER else 0
        layer[3] += e.bytes
        if e.kind == ops.UNKNOWN:
            uncounted[e.op][0] += 1
            uncounted[e.op][1] += e.bytes

    kinds = tuple(
        KindSummary(name, v[0], v[1], v[2], v[3], v[4], v[5], v[6])
        for name, v in sorted(kind_acc.items(), key=lambda kv: (-kv[1][4], -kv[1][6]))
    )
    layers = tuple(
        LayerSummary(name, v[0], v[1], v[2], v[3])
        for name, v in sorted(layer_acc.items(), key=lambda kv: (-(kv[1][1] + kv[1][2]), -kv[1][3]))
    )
    at_peak = memory.peak_by_category
    mem = Memory(
        weights_bytes=_initial(memory, WEIGHTS, at_peak),
        gradients_bytes=gradients_bytes,
        optimizer_state_bytes=_initial(memory, OPTIMIZER_STATE, at_peak),
        inputs_bytes=_initial(memory, INPUTS, at_peak),
        activations_bytes=activations_bytes,
        peak_bytes=memory.peak_bytes,
        peak_phase=memory.peak_phase,
        at_peak_bytes=dict(at_peak),
        peak_activity_bytes=memory.peak_activity_bytes,
        peak_activity_no_copies_bytes=memory.peak_activity_no_copies_bytes,
        peak_optimizer_activity_bytes=memory.peak_optimizer_activity_bytes,
    )
    return Profile(
        workload=w.name,
        family=w.family,
        sample_unit=w.sample_unit,
        batch_size=int(config.batch_size or w.default_batch_size),
        seq_len=shape.seq_len,
        image_size=shape.image_size,
        precision=config.precision,
        optimizer=config.optimizer.value,
        params_total=num_total,
        params_trainable=num_trainable,
        forward_flops=sum(e.flops for e in events if e.phase == FORWARD),
        backward_flops=sum(e.flops for e in events if e.phase == BACKWARD),
        optimizer_vector_flops=sum(e.vector_flops for e in events if e.phase == OPTIMIZER),
        tokens_per_sample=w.tokens_per_sample(shape)
        if w.tokens_per_sample
        else None,
        kinds=kinds,
        layers=layers,
        ops=op_groups,
        uncounted=tuple(
            UncountedOp(op, n, b) for op, (n, b) in sorted(uncounted.items(), key=lambda kv: -kv[1][0])
        ),
        substitutions=substitutions,
        memory=mem,
        notes=notes,
        recompute_flops=recompute_flops,
        activation_checkpointing=config.activation_checkpointing.value,
        block_params=block_params,
        low_precision_params=config.low_precision_params,
        fp8=config.fp8,
    )


def _initial(memory: LiveMemory, category: str, at_peak: dict[str, int]) -> int:
    # Weights, optimizer state and inputs neither grow nor shrink during the step.
    return max(memory.category_bytes(category), at_peak.get(category, 0))
