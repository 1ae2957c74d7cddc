"""The result of profiling one training step: frozen dataclasses, no rendering."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from gpuwise.config import Precision
from gpuwise.display import Displayed, gib, si


@dataclass(frozen=True)
class KindSummary:
    """All ops of one kind (matmul, conv, attention, rnn, normalization, ...)."""

    kind: str
    num_ops: int
    forward_flops: int
    backward_flops: int
    optimizer_flops: int
    flops: int  # matrix-product FLOPs, all phases
    vector_flops: int  # approximate FLOPs of memory-bound ops
    bytes: int

    @property
    def flops_per_byte(self) -> float:
        """Arithmetic intensity of the kind as a whole."""
        return (self.flops + self.vector_flops) / self.bytes if self.bytes else 0.0


@dataclass(frozen=True)
class LayerSummary:
    """One module (innermost name), or the loss/top level, or the optimizer."""

    name: str
    num_ops: int
    forward_flops: int
    backward_flops: int
    bytes: int


@dataclass(frozen=True)
class Recurrence:
    """The time-step loop inside one recurrent-layer op (one layer, one direction).

    A GPU runs it a step at a time: each step's matrix product, h·W_hhᵀ forward and
    d(gates)·W_hh backward, needs the previous step's result. ``gpuwise.predict.roofline``
    prices those steps apart from the rest of the op.
    """

    steps: int
    batch: int
    hidden: int
    gates: int  # 4 LSTM, 3 GRU, 1 plain RNN
    directions: int  # 2: a bidirectional layer, whose two directions run concurrently

    @property
    def step_flops(self) -> int:
        """FLOPs of one step's recurrent product: (batch × hidden) · (hidden × gates·hidden)."""
        return 2 * self.batch * self.hidden * self.gates * self.hidden


@dataclass(frozen=True)
class OpGroup:
    """Identical ops (same op, kind, phase, dtype, FLOPs and bytes), with how many times they ran.

    This is the per-op input of the performance model: each group is one kernel shape.
    """

    op: str
    kind: str
    phase: str
    dtype: str
    count: int
    flops: int  # per call
    vector_flops: int  # per call
    bytes: int  # per call
    recurrence: Recurrence | None = None  # recurrent-layer ops: their time-step loop


@dataclass(frozen=True)
class UncountedOp:
    """An op in no FLOP or kind table: its bytes are counted, its FLOPs are unknown."""

    op: str
    count: int
    bytes: int


@dataclass(frozen=True)
class Memory:
    """Memory of one steady-state training step (optimizer state already created), in bytes."""

    weights_bytes: int  # parameters and buffers, at the dtype they are stored in
    gradients_bytes: int
    optimizer_state_bytes: int
    inputs_bytes: int  # the batch
    activations_bytes: int  # saved for backward, at the end of the forward pass
    peak_bytes: int
    peak_phase: str  # forward / backward / optimizer
    at_peak_bytes: dict[str, int]  # live bytes by category at the moment of the peak (sums to peak_bytes)
    # The largest the step's own tensors (all but weights, gradients and optimizer state) are at any
    # moment, with and without autocast's low-precision weight copies: FSDP shards the state, not these.
    peak_activity_bytes: int = 0  # in forward and backward
    peak_activity_no_copies_bytes: int = 0
    peak_optimizer_activity_bytes: int = 0  # in the optimizer step: its temporaries, as large as what it steps

    @property
    def transient_bytes(self) -> int:
        """Temporaries live at the peak: neither weights, gradients, state, inputs nor saved activations."""
        return self.at_peak_bytes.get("temporaries", 0)


@dataclass(frozen=True, repr=False)
class Profile(Displayed):
    """One training step's FLOPs, bytes and memory; ``repr`` shows the key numbers, ``to_dict`` everything."""

    workload: str
    family: str
    sample_unit: str
    batch_size: int
    seq_len: int | None
    image_size: int | None
    precision: Precision  # stored and printed as its name ("amp-bf16")
    optimizer: str
    params_total: int
    params_trainable: int
    forward_flops: int  # per step
    backward_flops: int  # per step
    optimizer_vector_flops: int  # the optimizer's elementwise work, approximate
    tokens_per_sample: int | None
    kinds: tuple[KindSummary, ...]
    layers: tuple[LayerSummary, ...]
    ops: tuple[OpGroup, ...]
    uncounted: tuple[UncountedOp, ...]
    substitutions: tuple[tuple[str, int], ...]  # data-dependent ops given a bounded synthetic size
    memory: Memory
    notes: tuple[str, ...]
    # Activation checkpointing: the forward's matrix-product FLOPs run again in backward (inside backward_flops).
    recompute_flops: int = 0
    activation_checkpointing: str = "none"
    block_params: int = 0  # parameters of the largest block (transformer layer, CNN stage): FSDP's unit
    # Profiled as FSDP2's mixed precision runs it (``StepConfig.low_precision_params``): weights,
    # gradients and optimizer state were then traced in the low dtype, and are float32 in the run.
    low_precision_params: bool = False
    fp8: bool = False  # the blocks' linear layers in FP8 (``StepConfig.fp8``, ``gpuwise.float8``)

    @property
    def training_flops(self) -> int:
        """Matrix-product FLOPs of forward + backward for the whole step (the model's FLOPs: recompute excluded)."""
        return self.forward_flops + self.backward_flops - self.recompute_flops

    @property
    def forward_macs(self) -> int:
        return self.forward_flops // 2

    def per_sample(self, flops: int) -> float:
        return flops / self.batch_size

    @property
    def tokens_per_step(self) -> int | None:
        return self.tokens_per_sample * self.batch_size if self.tokens_per_sample else None

    @property
    def bytes_moved(self) -> int:
        return sum(k.bytes for k in self.kinds)

    def _summary(self) -> list[tuple[str, str]]:
        shape = f"seq {self.seq_len}" if self.seq_len else f"{self.image_size}px" if self.image_size else ""
        return [
            ("workload", repr(self.workload)), ("batch_size", str(self.batch_size)),
            *([("shape", repr(shape))] if shape else []), ("precision", repr(self.precision.value)),
            ("optimizer", repr(self.optimizer)), ("params", si(self.params_total)),
            ("training_flops", si(self.training_flops, "FLOP")),
            ("per_sample", si(self.per_sample(self.training_flops), "FLOP")),
            ("peak_memory", gib(self.memory.peak_bytes)),
        ]

    def _rows(self) -> list[dict[str, Any]]:
        """One row per layer (innermost module), the loss and the optimizer."""
        return [asdict(layer) for layer in self.layers]

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready, with units in the field names."""
        data = asdict(self)
        data["precision"] = self.precision.value
        data["kinds"] = [dict(asdict(k), flops_per_byte=round(k.flops_per_byte, 3)) for k in self.kinds]
        data["memory"]["transient_bytes"] = self.memory.transient_bytes
        data["uncounted"] = [asdict(u) for u in self.uncounted]
        data["substitutions"] = [{"op": op, "count": n} for op, n in self.substitutions]
        data["derived"] = {
            "training_flops": self.training_flops,
            "forward_macs": self.forward_macs,
            "forward_flops_per_sample": self.per_sample(self.forward_flops),
            "backward_flops_per_sample": self.per_sample(self.backward_flops),
            "training_flops_per_sample": self.per_sample(self.training_flops),
            "tokens_per_step": self.tokens_per_step,
            "training_flops_per_token": self.training_flops / self.tokens_per_step if self.tokens_per_step else None,
            "bytes_moved": self.bytes_moved,
        }
        return data
