"""Whether a training step fits a device's memory, and the largest batch that does.

Memory per GPU is the profile's peak (the live tensors of the step) plus what PyTorch needs
beyond its tensors:

- ``CUDA_CONTEXT_BYTES``: the CUDA context (driver state, loaded kernels, cuBLAS/cuDNN
  handles), outside the caching allocator. With CUDA >= 11.7 lazy module loading it is about
  300-400 MB right after initialisation (pytorch/pytorch#107667, #109888, PyTorch's CUDA
  maintainer's figures); a training step loads more kernels and library workspaces, so 0.6 GiB.
- ``ALLOCATOR_OVERHEAD``: the caching allocator rounds every block up and fragments; in steady
  training ``max_memory_reserved`` exceeds ``max_memory_allocated`` by a few percent, so 5%.

Data parallel (DDP) also keeps its own flat copy of the gradients in its all-reduce buckets
(``gradient_as_bucket_view=False``, the default), so ``n >= 2`` adds the gradient bytes. FSDP
shards weights, gradients and optimizer state over the ranks; activations, inputs and
temporaries stay whole: per rank = (W + G + O) / n + the step's own tensors at their largest
(``Memory.peak_activity_bytes``, wherever in the step that is) + the gathered blocks
(``fsdp_working_bytes``).

Across batch sizes the peak is close to affine (state is constant, activations grow with the
batch), so two profiles give the line and the largest batch that fits; the caller confirms it
with a profile at that batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gpuwise.profile.result import Profile

GIB = 2**30
CUDA_CONTEXT_BYTES = int(0.6 * GIB)
ALLOCATOR_OVERHEAD = 0.05
# Of the machine's RAM, what a CPU training run may take: the OS, the page cache and the
# user's other programs keep the rest (an assumption, stated).
CPU_RAM_FRACTION = 0.8
_STATE = ("weights", "gradients", "optimizer_state")


def state_bytes(p: Profile) -> int:
    """Weights + gradients + optimizer state: what FSDP shards, and what must fit before any activation.
    A profile with low-precision parameters traced them in 2 bytes; FSDP keeps them in float32."""
    m = p.memory
    traced = m.weights_bytes + m.gradients_bytes + m.optimizer_state_bytes
    return 2 * traced if p.low_precision_params else traced


def tensor_bytes(p: Profile, *, num_gpus: int = 1, sharded: bool = False) -> int:
    """Live tensor bytes per device at the step's peak, for DDP (or one device) or FSDP over ``num_gpus``."""
    m = p.memory
    if sharded:
        return math.ceil(state_bytes(p) / num_gpus) + fsdp_working_bytes(p, num_gpus)
    return m.peak_bytes + (m.gradients_bytes if num_gpus > 1 else 0)


def fsdp_working_bytes(p: Profile, num_gpus: int) -> int:
    """What an FSDP rank holds beyond its shard of the state: the step's own tensors at their largest
    (activations, temporaries, the batch), the parameters of the block running and the one prefetched,
    gathered whole in the parameter dtype, and one block's unsharded gradients in float32 before their
    reduce-scatter; or, if larger, the optimizer step's temporaries for its 1/n of the parameters.
    Under AMP, FSDP2's ``MixedPrecisionPolicy(param_dtype=bf16)`` replaces autocast: the
    gathered parameters are bf16 and autocast's cached weight copies do not exist (best read from a
    profile with ``low_precision_params``, whose activations are bf16 as FSDP2's are)."""
    m = p.memory
    mixed = p.precision.autocast_dtype is not None
    activity = m.peak_activity_no_copies_bytes if mixed else m.peak_activity_bytes
    param_bytes = 2 if mixed else 4
    optimizer = m.peak_optimizer_activity_bytes * (2 if p.low_precision_params else 1) / num_gpus
    return math.ceil(max(activity + 2 * p.block_params * param_bytes + p.block_params * 4, optimizer))


def device_bytes(p: Profile, *, on_gpu: bool, num_gpus: int = 1, sharded: bool = False) -> int:
    """What the device must hold: tensors, and on a GPU the allocator's overhead and the CUDA context."""
    tensors = tensor_bytes(p, num_gpus=num_gpus, sharded=sharded)
    if not on_gpu:
        return tensors
    return math.ceil(tensors * (1 + ALLOCATOR_OVERHEAD)) + CUDA_CONTEXT_BYTES


def gpu_capacity_bytes(memory_gb: float) -> int:
    """A GPU's memory: vendors' "GB" of GPU memory are binary (an 80 GB H100 reports 79.6 GiB total)."""
    return int(memory_gb * GIB)


def cpu_capacity_bytes(ram_bytes: int) -> int:
    return int(ram_bytes * CPU_RAM_FRACTION)


@dataclass(frozen=True)
class MemoryLine:
    """Device bytes as an affine function of the batch per device, from two profiles."""

    base_bytes: float
    per_sample_bytes: float

    @classmethod
    def through(cls, b1: int, bytes1: int, b2: int, bytes2: int) -> MemoryLine:
        if b1 == b2:
            raise ValueError("two different batch sizes are needed for a line")
        slope = max((bytes2 - bytes1) / (b2 - b1), 0.0)
        return cls(base_bytes=bytes1 - slope * b1, per_sample_bytes=slope)

    def at(self, batch_size: int) -> float:
        return self.base_bytes + self.per_sample_bytes * batch_size

    def largest_batch(self, capacity_bytes: int, upto: int) -> int:
        """The largest batch (at most ``upto``) whose bytes fit ``capacity_bytes``; 0 if not even one."""
        if self.per_sample_bytes <= 0:
            return upto if self.base_bytes <= capacity_bytes else 0
        return max(0, min(upto, math.floor((capacity_bytes - self.base_bytes) / self.per_sample_bytes)))


def round_batch(batch_size: int) -> int:
    """The largest 2^k or 3·2^k at most ``batch_size`` (0 stays 0).

    Training runs use such sizes; rounding to them also keeps the number of distinct batches,
    hence profiles, small across a catalog (at most a third of the memory is left unused).
    """
    if batch_size < 1:
        return 0
    power = 1 << (batch_size.bit_length() - 1)
    return power * 3 // 2 if power >= 2 and power * 3 // 2 <= batch_size else power
