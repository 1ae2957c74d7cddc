"""What a training run is: its settings (``TrainConfig``) and the devices it runs on (``Devices``).

Each default is defined here once; ``gpuwise train`` maps its flags onto these, and the launcher
turns a ``TrainConfig`` back into the flags of each worker process (``worker_args``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from gpuwise.config import ActivationCheckpointing, Precision, StepConfig, Strategy, WithStep, check_grad_accum
from gpuwise.errors import GpuwiseError
from gpuwise.train.schedule import check_schedule

DEFAULT_WARMUP = 3  # steps run before the clock starts, as bench discards them
MAX_SEED = 2**63  # seeds are 0 .. 2**63 - 1: torch's generators take 64 bits, and derived seeds stay below them
DEFAULT_KEEP_CHECKPOINTS = 3  # the newest good ones; older ones are deleted after a save


@dataclass(frozen=True)
class TrainConfig(WithStep):
    """One training run of a ``step`` (its ``batch_size`` is per device and per micro batch, None the workload's
    default; ``TrainConfig.of(workload=..., batch_size=..., steps=...)`` takes its fields flat); ``steps``
    counts optimizer steps of the whole run, each of ``grad_accum`` micro batches per device."""

    STEP_DEFAULTS: ClassVar[dict[str, Any]] = {"precision": Precision.AUTO}  # auto: by the device it runs on

    step: StepConfig
    data: str = "synthetic"  # "synthetic" or a path
    seed: int = 0  # model initialisation and data order derive from it
    epochs: int | None = None  # with neither epochs nor steps: one epoch
    steps: int | None = None  # stop after this many steps in all (a resumed run counts the earlier ones)
    warmup: int = DEFAULT_WARMUP
    strategy: Strategy = Strategy.AUTO
    grad_accum: int = 1  # micro batches per optimizer step; gradients are synchronised on the last one only
    compile: bool = False  # torch.compile each block (else the whole model)
    synthetic_samples: int = 10_000  # samples per epoch of --data synthetic
    num_workers: int | None = None  # data-loading processes per device; None: 0 for synthetic, else up to 4
    checkpoint_dir: Path | None = None
    checkpoint_every: int | None = None  # steps; a checkpoint is also written at the end and on a signal
    keep_checkpoints: int = DEFAULT_KEEP_CHECKPOINTS
    resume: Path | None = None  # continue from the newest good checkpoint in this folder
    store_path: Path | None = None  # the results database; None: the default one
    log_dir: Path | None = None  # per-step metrics (JSONL) and TensorBoard events; None: the checkpoint folder's
    # The learning rate (gpuwise.train.schedule): None keeps the optimizer's default rate and decay.
    lr: float | None = None
    warmup_steps: int = 0
    lr_schedule: str = "constant"  # constant | cosine | linear
    weight_decay: float | None = None

    def __post_init__(self) -> None:
        # Names are accepted where enums are expected (the Python API), as everywhere else in gpuwise.
        object.__setattr__(self, "strategy", Strategy.parse(self.strategy))
        check_grad_accum(self.grad_accum)
        check_schedule(self.lr, self.warmup_steps, self.lr_schedule, self.weight_decay)
        if self.epochs is not None and self.steps is not None:
            raise GpuwiseError("give --epochs or --steps, not both")
        for flag, value in (("--epochs", self.epochs), ("--steps", self.steps), ("--warmup", self.warmup),
                            ("--checkpoint-every", self.checkpoint_every), ("--batch-size", self.batch_size),
                            ("--keep-checkpoints", self.keep_checkpoints)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise GpuwiseError(f"{flag} must be a positive integer, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < MAX_SEED:
            raise GpuwiseError(f"--seed must be a whole number from 0 to 2**63 - 1 (what torch's generators take), "
                               f"got {self.seed!r}")
        if self.warmup < 1:
            raise GpuwiseError(f"--warmup must be at least 1 (the first steps pay for allocation), got {self.warmup}")
        if self.checkpoint_every is not None and self.checkpoint_dir is None and self.resume is None:
            raise GpuwiseError("--checkpoint-every needs a folder to write to: add --checkpoint-dir DIR")

    @property
    def workload(self) -> str:
        """A run names its workload (the workers get it as an argument): a zoo name or a file's factory."""
        assert isinstance(self.step.workload, str), "train takes a workload by name"
        return self.step.workload

    @property
    def activation_checkpointing(self) -> ActivationCheckpointing:
        return self.step.activation_checkpointing

    @property
    def fp8(self) -> bool:
        return self.step.fp8

    @property
    def output_dir(self) -> Path | None:
        """Where checkpoints are written: --checkpoint-dir, else the folder resumed from."""
        return self.checkpoint_dir if self.checkpoint_dir is not None else self.resume

    def settings(self, *, shape: dict[str, int | None], batch_size: int) -> dict[str, Any]:
        """What must match for a checkpoint to be resumed by this run (plain types: stored in it). The number
        of processes and micro batches per step need not: the data position is kept in samples, so a
        checkpoint resumes with other ones (``options``)."""
        return {
            "workload": self.workload, "data": self.data, "batch_size": batch_size,
            "precision": self.precision.value, "optimizer": self.optimizer.value, "seed": self.seed,
            "seq_len": shape["seq_len"], "image_size": shape["image_size"],
            "synthetic_samples": self.synthetic_samples if self.data == "synthetic" else None,
        }

    def options(self) -> dict[str, Any]:
        """Stored with each checkpoint and taken from it by a bare ``--resume``, but free to change on resume:
        recomputing activations or compiling changes memory and speed, not the step's result beyond
        rounding; the strategy and the micro batches per step, like the number of processes, change how
        the samples of a step are spread, and the data continues from the same sample."""
        return {"activation_checkpointing": self.activation_checkpointing.value, "compile": self.compile,
                "fp8": self.fp8,
                "strategy": self.strategy.value, "grad_accum": self.grad_accum,
                # the run's length and checkpointing: a bare --resume continues the same run, to the same end
                "steps": self.steps, "epochs": self.epochs, "checkpoint_every": self.checkpoint_every,
                "keep_checkpoints": self.keep_checkpoints, "warmup": self.warmup}

    def learning_rate(self) -> dict[str, Any]:
        """The schedule's settings, kept in each checkpoint's manifest (beside ``options``) so that a bare
        ``--resume`` continues it; free to change on resume like the options."""
        return {"lr": self.lr, "warmup_steps": self.warmup_steps, "lr_schedule": self.lr_schedule,
                "weight_decay": self.weight_decay}


def with_local_precision(config: TrainConfig, device: str) -> tuple[TrainConfig, str]:
    """``config`` with ``--precision auto`` resolved for ``device`` of this machine, and why; an explicit
    precision is kept (reason ''). The choice is bench's (``gpuwise.bench.run.local_precision``): a GPU by its
    tensor cores, the CPU by its measured matmul rates. Resolved before the run is prepared, so checkpoints,
    worker processes and the stored result carry the real precision, never "auto"."""
    if config.precision is not Precision.AUTO:
        return config, ""
    from gpuwise.bench.run import local_precision

    precision, reason = local_precision(device, config.store_path)
    return config.with_(precision=precision), reason


@dataclass(frozen=True)
class Devices:
    """Where the run goes on this node: ``count`` processes on CPUs or GPUs (``index``: one chosen GPU)."""

    kind: str  # "cpu" or "cuda"
    count: int
    index: int | None = None  # cuda:K; None: GPUs 0 .. count-1
    reason: str = ""  # why auto chose it, for the run's header

    @property
    def first(self) -> str:
        """This node's first device ("cpu", "cuda:K"): what ``--precision auto`` is resolved for."""
        return "cpu" if self.kind == "cpu" else f"cuda:{self.index if self.index is not None else 0}"

    @property
    def label(self) -> str:
        if self.kind == "cpu":
            return "cpu" if self.count == 1 else f"cpu × {self.count} processes"
        if self.index is not None:
            return f"cuda:{self.index}"
        return "cuda:0" if self.count == 1 else f"{self.count} GPUs"


def parse_devices(text: str, *, num_gpus: int, check: bool = True) -> Devices:
    """``auto``, ``cpu``, ``cpu:N``, ``N`` (local GPUs), ``cuda`` or ``cuda:K`` — checked against this
    machine's ``num_gpus`` unless ``check`` is False (a dry run prints the launch for other machines)."""
    value = text.strip().lower()
    have = f"this machine has {num_gpus} GPU{'' if num_gpus == 1 else 's'}"
    if value == "auto":
        if num_gpus:
            return Devices("cuda", 1, reason=f"auto: the GPU here (cuda:0 of {num_gpus})")
        return Devices("cpu", 1, reason="auto: no GPU here, so the CPU")
    if value == "cpu":
        return Devices("cpu", 1)
    if match := re.fullmatch(r"cpu:(\d+)", value):
        count = int(match[1])
        if count < 1:
            raise GpuwiseError(f"--devices {text}: the number of CPU processes must be at least 1")
        return Devices("cpu", count)
    if value == "cuda":
        value = "cuda:0"
    if match := re.fullmatch(r"cuda:(\d+)", value):
        index = int(match[1])
        if check and index >= num_gpus:
            fix = "use --devices cpu" if num_gpus == 0 else f"use --devices cuda:0 .. cuda:{num_gpus - 1}"
            raise GpuwiseError(f"--devices {text}: {have}; {fix}")
        return Devices("cuda", 1, index=index)
    if re.fullmatch(r"\d+", value):
        count = int(value)
        if count < 1:
            raise GpuwiseError(f"--devices {text}: give at least 1 GPU, or --devices cpu")
        if check and count > num_gpus:
            fix = "use --devices cpu (or cpu:N for N CPU processes)" if num_gpus == 0 else f"use --devices {num_gpus}"
            raise GpuwiseError(f"--devices {text}: more GPUs than exist; {have}; {fix}")
        return Devices("cuda", count)
    raise GpuwiseError(f"--devices {text}: use auto, cpu, cpu:N, N (GPUs), cuda or cuda:K")
