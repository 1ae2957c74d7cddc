"""Typed settings shared by every command: precision, optimizer, the step to run.

Each default is defined here once; the CLI maps its flags onto these.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, fields, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Self

from gpuwise.errors import GpuwiseError

if TYPE_CHECKING:  # torch is imported where a step is built, not here: the CLI's help starts without it
    import torch

    from gpuwise.workloads import Workload


def _nearest(value: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(value, choices, n=1, cutoff=0.4)
    return f" (did you mean {close[0]}?)" if close else ""


class Choice(StrEnum):
    """A flag's fixed set of values: ``parse`` accepts a member or its text, else one line with the choices."""

    @classmethod
    def flag(cls) -> str:
        return "--" + cls.__name__.lower().removesuffix("name")

    @classmethod
    def parse(cls, value: str | Self) -> Self:
        if isinstance(value, cls):
            return value
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            names = [c.value for c in cls]
            raise GpuwiseError(
                f"unknown {cls.flag()[2:]} '{value}'{_nearest(str(value), names)}: use {cls.flag()} {' | '.join(names)}"
            ) from None


class Precision(Choice):
    """How PyTorch runs the step's math. AMP keeps fp32 master weights. ``auto``: by the device
    (``gpuwise.predict.precision``), resolved before anything runs or is priced."""

    AUTO = "auto"
    FP32 = "fp32"
    TF32 = "tf32"  # fp32 storage, matmuls/convolutions on TF32 tensor cores
    AMP_BF16 = "amp-bf16"
    AMP_FP16 = "amp-fp16"  # with a gradient scaler

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        import torch

        assert self is not Precision.AUTO, "auto is resolved by the device before a step is traced or run"
        return {Precision.AMP_BF16: torch.bfloat16, Precision.AMP_FP16: torch.float16}.get(self)


class Strategy(Choice):
    """How several GPUs (or processes) share the model: each holds all of it (DDP) or a shard (FSDP).

    With AMP-BF16, FSDP is FSDP2 ``fully_shard`` with ``MixedPrecisionPolicy(param_dtype=bfloat16,
    reduce_dtype=float32)``, as torchtitan runs it.
    """

    AUTO = "auto"  # predict/plan: DDP where the step fits one GPU, else FSDP; train: DDP unless --plan says FSDP
    DDP = "ddp"
    FSDP = "fsdp"


class ActivationCheckpointing(Choice):
    """Which activations a block keeps for backward (``gpuwise.recompute``)."""

    NONE = "none"
    SELECTIVE = "selective"  # torchtitan's op-level policy: keep matrix products' outputs, recompute the rest
    FULL = "full"  # keep each block's input; run its forward again in backward

    @classmethod
    def flag(cls) -> str:
        return "--activation-checkpointing"


class OptimizerName(Choice):
    SGD = "sgd"
    SGD_MOMENTUM = "sgd-momentum"
    ADAM = "adam"
    ADAMW = "adamw"

    def build(self, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
        """The optimizer as a training script would make it (the learning rates do not change the cost)."""
        import torch

        if self is OptimizerName.SGD:
            return torch.optim.SGD(params, lr=0.01)
        if self is OptimizerName.SGD_MOMENTUM:
            return torch.optim.SGD(params, lr=0.01, momentum=0.9)
        if self is OptimizerName.ADAM:
            return torch.optim.Adam(params, lr=1e-3)
        return torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01)


def optimizer_for(value: str | OptimizerName | None, workload_optimizer: str | None) -> OptimizerName:
    """The optimizer of a step: the one asked for, else the one the workload names (a user's
    ``UserWorkload(optimizer=...)``), else AdamW."""
    if value is not None:
        return OptimizerName.parse(value)
    return OptimizerName.parse(workload_optimizer) if workload_optimizer else OptimizerName.ADAMW


def check_count(value: object, flag: str) -> int:
    """A count a flag sets (micro batches, CPU threads): a positive integer, else one line naming the flag."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise GpuwiseError(f"{flag} must be a positive integer, got {value!r}: use {flag} N with N >= 1")
    return value


def check_grad_accum(value: object) -> int:
    """Micro-batches per optimizer step: a positive integer."""
    return check_count(value, "--grad-accum")


def check_batch_size(value: object) -> int:
    """A batch size is a positive integer; anything else names the fix."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise GpuwiseError(f"batch size must be a positive integer, got {value!r}: use --batch-size N with N >= 1")
    return value


@dataclass(frozen=True)
class StepConfig:
    """One training step of a workload: what profile traces, bench times, predict and plan price and train
    runs. ``PlanConfig``, ``PredictConfig``, ``BenchConfig`` and ``TrainConfig`` nest one (``config.step``),
    as torchtitan nests its component configs, and read its fields through (``config.precision``)."""

    workload: str | Workload  # a name or spec; a Workload object from the Python API
    batch_size: int | None = None  # None: the workload's default
    precision: Precision = Precision.FP32  # auto (predict, plan, bench): by the device, resolved before it runs
    optimizer: OptimizerName = OptimizerName.ADAMW
    seq_len: int | None = None
    image_size: int | None = None
    # Recomputed activations (bench, train and profile; predict and plan price the step with each of
    # ``RunSettings.activation_checkpointing``).
    activation_checkpointing: ActivationCheckpointing = ActivationCheckpointing.NONE
    # AMP as FSDP2's MixedPrecisionPolicy runs it: the parameters each block computes with are in the
    # autocast dtype (so are its activations and the residual stream), with no autocast around forward;
    # master weights, gradients and optimizer state stay float32 in the shards.
    low_precision_params: bool = False
    # The linear layers of the model's blocks run their products in FP8 (torchao's float8 training,
    # ``gpuwise.float8``), beside 16-bit autocast.
    fp8: bool = False

    def __post_init__(self) -> None:
        # Names are accepted where enums are expected (the Python API), as everywhere else in gpuwise.
        object.__setattr__(self, "precision", Precision.parse(self.precision))
        object.__setattr__(self, "optimizer", OptimizerName.parse(self.optimizer))
        object.__setattr__(self, "activation_checkpointing",
                           ActivationCheckpointing.parse(self.activation_checkpointing))


STEP_FIELDS = tuple(f.name for f in fields(StepConfig))


class WithStep:
    """A config that nests a ``step: StepConfig``: the step's fields read through (``config.precision`` is
    ``config.step.precision``), and ``of`` and ``with_`` take them as flat keywords, as the CLI's flags and
    the Python API give them. ``STEP_DEFAULTS``: this config's own defaults for the step (plan: precision auto)."""

    step: StepConfig
    STEP_DEFAULTS: ClassVar[dict[str, Any]] = {}

    @classmethod
    def of(cls, **values: Any) -> Self:
        """The config from flat keywords: the step's fields go into ``step``, the rest to the config."""
        step = {k: values.pop(k) for k in STEP_FIELDS if k in values}
        return cls(step=StepConfig(**(cls.STEP_DEFAULTS | step)), **values)  # type: ignore[call-arg]

    def with_(self, **changes: Any) -> Self:
        """``dataclasses.replace`` with flat keywords: the step's fields change in ``step``."""
        step = {k: changes.pop(k) for k in STEP_FIELDS if k in changes}
        return replace(self, step=replace(self.step, **step), **changes)  # type: ignore[type-var]

    @property
    def workload(self) -> str | Workload:
        return self.step.workload

    @property
    def batch_size(self) -> int | None:
        return self.step.batch_size

    @property
    def precision(self) -> Precision:
        return self.step.precision

    @property
    def optimizer(self) -> OptimizerName:
        return self.step.optimizer

    @property
    def seq_len(self) -> int | None:
        return self.step.seq_len

    @property
    def image_size(self) -> int | None:
        return self.step.image_size


@dataclass(frozen=True)
class RunSettings:
    """How a step is run beyond its profile: sharing over GPUs, recompute, accumulation, compilation.

    ``predict``, ``plan`` and ``train`` take the same settings, so what is priced is what runs.
    """

    strategy: Strategy = Strategy.AUTO
    activation_checkpointing: ActivationCheckpointing = ActivationCheckpointing.NONE
    grad_accum: int = 1  # micro batches per optimizer step: global batch = micro batch × grad_accum × GPUs
    compile: bool = False  # torch.compile
    fp8: bool = False  # the blocks' linear layers in FP8 (torchao float8 training, ``gpuwise.float8``)

    def __post_init__(self) -> None:
        # Names are accepted where enums are expected (the Python API), as everywhere else in gpuwise.
        object.__setattr__(self, "strategy", Strategy.parse(self.strategy))
        checkpointing = ActivationCheckpointing.parse(self.activation_checkpointing)
        object.__setattr__(self, "activation_checkpointing", checkpointing)
        check_grad_accum(self.grad_accum)

    def describe(self) -> str:
        """The settings that differ from the defaults, as a person reads them ('' if none)."""
        parts = []
        if self.strategy is not Strategy.AUTO:
            parts.append(f"--strategy {self.strategy.value}")
        if self.activation_checkpointing is not ActivationCheckpointing.NONE:
            parts.append(f"{self.activation_checkpointing.value} activation checkpointing")
        if self.grad_accum > 1:
            parts.append(f"{self.grad_accum} micro batches per step")
        if self.compile:
            parts.append("torch.compile")
        if self.fp8:
            parts.append("FP8 linear layers")
        return " · ".join(parts)


def check_positive(value: float, flag: str, what: str) -> None:
    """A finite number above zero (a flag's value, ``what`` says in which unit), else one line naming the flag."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise GpuwiseError(f"{flag} must be a number above zero ({what}), got {value!r}")
