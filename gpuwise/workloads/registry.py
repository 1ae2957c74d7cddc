"""One registry of workloads, looked up by name.

A workload is everything needed to run one training step of a model on
synthetic data: a model factory, a batch maker, a loss, a default batch size
and the unit its throughput is counted in. Family modules register theirs with
``register``; users name their own with ``path/to/file.py:factory`` or
``package.module:factory`` (see ``gpuwise.workloads.user``).
"""

from __future__ import annotations

import difflib
import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from gpuwise.errors import GpuwiseError

# Families are imported on first lookup, not at package import.
_FAMILY_MODULES = (
    "gpuwise.workloads.vision",
    "gpuwise.workloads.segmentation",
    "gpuwise.workloads.detection",
    "gpuwise.workloads.speech",
    "gpuwise.workloads.language",
    "gpuwise.workloads.decoder",
    "gpuwise.workloads.mpt",
)

SAMPLE_UNITS = ("image", "utterance", "sequence", "token", "sample")


@dataclass(frozen=True)
class Shape:
    """The options that change the shape of the work.

    ``None`` means the option does not apply to the workload.
    """

    seq_len: int | None = None
    image_size: int | None = None


Batch = Any  # a pytree of tensors: whatever ``forward_loss`` accepts


@dataclass(frozen=True)
class RecipeBatch:
    """The global batch a published training recipe used, in tokens per optimizer step over all GPUs: what
    ``gpuwise plan`` keeps by default for a language model, whose own default batch is one GPU's few sequences
    (nobody trains an LLM on 1-2 sequences per step)."""

    tokens: int
    recipe: str  # whose it is, for the output: "the Llama 2 paper's" (recipe)
    source: str  # where the number is written (URL, section, date read)

    def sequences(self, seq_len: int) -> int:
        """The recipe's tokens per step in sequences of ``seq_len``: the power of two nearest to tokens / seq_len
        (the recipe's own count at its sequence length), so the batch splits evenly over 1, 2, 4, ... GPUs."""
        return max(1, 2 ** round(math.log2(self.tokens / seq_len)))


@dataclass(frozen=True)
class Workload:
    """A model plus the data and loss of one training step.

    ``build_model(shape)`` returns the model in train mode; ``make_batch(batch_size,
    shape)`` returns a synthetic batch on the current default device (real, meta
    or fake tensors); ``forward_loss(model, batch)`` runs the forward pass and
    returns the scalar loss.
    """

    name: str
    family: str
    sample_unit: str
    default_batch_size: int
    summary: str
    build_model: Callable[[Shape], nn.Module]
    make_batch: Callable[[int, Shape], Batch]
    forward_loss: Callable[[nn.Module, Batch], torch.Tensor]
    default_shape: Shape = field(default_factory=Shape)
    # Sequence positions per sample (tokens for language models), when the unit counts them.
    tokens_per_sample: Callable[[Shape], int] | None = None
    reference: str = ""
    # Asks data-dependent questions in training (detection: nonzero, NMS); profiled with bounded sizes.
    data_dependent: bool = False
    # The optimizer the workload trains with (a user's UserWorkload may name one); None: gpuwise's default.
    optimizer: str | None = None
    # How `gpuwise train --data` reads a real data set for it: one of gpuwise.train.data.LAYOUTS ("images",
    # "segmentation", "detection", "speech", "tokens"); None: synthetic batches only.
    data_layout: str | None = None
    # A language model's published global batch (plan's default --global-batch); None: the default batch.
    recipe_batch: RecipeBatch | None = None

    def default_global_batch(self, seq_len: int | None = None) -> int:
        """Samples per optimizer step over all GPUs when none is asked for: the published recipe's tokens in
        sequences of the step's length, else the default batch (one GPU's)."""
        shape = self.resolve_shape(seq_len=seq_len)
        if self.recipe_batch is None or shape.seq_len is None:
            return self.default_batch_size
        return self.recipe_batch.sequences(shape.seq_len)

    @property
    def options(self) -> tuple[str, ...]:
        """The shape options (CLI flags) this workload accepts."""
        return tuple(
            name for name in ("seq_len", "image_size") if getattr(self.default_shape, name) is not None
        )

    def resolve_shape(self, seq_len: int | None = None, image_size: int | None = None) -> Shape:
        """The default shape with the user's options applied; an option that does not apply is an error."""
        shape = self.default_shape
        for option, value in (("seq_len", seq_len), ("image_size", image_size)):
            if value is None:
                continue
            flag = "--" + option.replace("_", "-")
            if getattr(shape, option) is None:
                accepted = ", ".join("--" + o.replace("_", "-") for o in self.options) or "none"
                raise GpuwiseError(
                    f"{flag} does not apply to workload '{self.name}' ({self.family}); "
                    f"its shape options: {accepted}"
                )
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise GpuwiseError(f"{flag} must be a positive integer, got {value!r}")
            shape = replace(shape, **{option: value})
        return shape


_REGISTRY: dict[str, Workload] = {}
_loaded = False


def register(workload: Workload) -> Workload:
    """Add a workload to the registry; names are unique."""
    if workload.name in _REGISTRY:
        raise AssertionError(f"workload {workload.name!r} registered twice")
    if workload.sample_unit not in SAMPLE_UNITS:
        raise AssertionError(f"unknown sample unit {workload.sample_unit!r}")
    _REGISTRY[workload.name] = workload
    return workload


def _load_families() -> None:
    global _loaded
    if not _loaded:
        for module in _FAMILY_MODULES:
            importlib.import_module(module)
        _loaded = True


def list_workloads() -> list[Workload]:
    """Every registered workload, in registration order (grouped by family)."""
    _load_families()
    return list(_REGISTRY.values())


def get_workload(name: str | Workload) -> Workload:
    """Look a workload up by name; load ``timm:NAME``, ``hf:PATH`` (a local config.json or model folder),
    or the user's ``file.py:factory`` / ``module:factory``. A ``Workload`` is returned as it is."""
    if isinstance(name, Workload):
        return name
    if name.startswith(("timm:", "hf:")):
        from gpuwise.workloads.external import external_workload

        return external_workload(name)
    if ":" in name:
        from gpuwise.workloads.user import load_user_workload

        return load_user_workload(name)
    _load_families()
    try:
        return _REGISTRY[name]
    except KeyError:
        pass
    by_lower = {known.lower(): known for known in _REGISTRY}  # as GPU names: RESNET50 is resnet50
    if name.strip().lower() in by_lower:
        return _REGISTRY[by_lower[name.strip().lower()]]
    close = [by_lower[m] for m in difflib.get_close_matches(name.strip().lower(), list(by_lower), n=3, cutoff=0.5)]
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise GpuwiseError(
        f"unknown workload '{name}': {hint}"
        "run 'gpuwise workloads' for the list, or name your own as path/to/file.py:factory, timm:NAME or hf:PATH"
    )
