"""FP8 linear layers, as torchao's float8 training runs them (torchtitan's ``float8`` model converter).

The same function serves the profile (on fake tensors: the FP8 products, the casts and scales around them
and the FP8 tensors saved for backward are traced as they run) and ``gpuwise train`` (on the real model), so
what is predicted is what runs.

Which layers: every ``nn.Linear`` inside the model's repeated blocks (``gpuwise.recompute.blocks``: a
transformer's layers) whose two dimensions are multiples of 16 (the FP8 tensor cores' tile; torchtitan skips
the others too). The embedding and the output head stay 16-bit, as torchtitan's recipes run them
(``filter_fqns = ["output"]``) and as Transformer Engine runs only the layers built as ``te.Linear``.
Scaling is torchao's default: one dynamic scale per tensor (input and weight in e4m3, output gradient in
e5m2), each product run by ``torch._scaled_mm``. FSDP all-gathers the weights in 16 bits (torchao's
``enable_fsdp_float8_all_gather`` is off, as in torchtitan's default configs).
"""

from __future__ import annotations

import importlib
from types import ModuleType

import torch
from torch import nn

from gpuwise import recompute
from gpuwise.config import Precision
from gpuwise.errors import GpuwiseError

# The FP8 tensor cores' tile: torch._scaled_mm needs both dimensions of each operand to be multiples of 16.
FP8_MULTIPLE = 16


def torchao_float8() -> ModuleType | None:
    """``torchao.float8``, None where torchao is not installed (its import warnings: ``gpuwise/__init__.py``)."""
    try:
        return importlib.import_module("torchao.float8")
    except ImportError:
        return None


def fp8_layers(model: nn.Module) -> list[nn.Linear]:
    """The linear layers ``convert`` runs in FP8 (its filter, before converting)."""
    inside = {id(m) for block in recompute.blocks(model) for m in block.modules()}
    return [m for m in model.modules() if type(m) is nn.Linear and id(m) in inside
            and m.in_features % FP8_MULTIPLE == 0 and m.out_features % FP8_MULTIPLE == 0]


def convert(model: nn.Module, precision: Precision, *, what: str) -> int:
    """Swap ``model``'s eligible linear layers for torchao's ``Float8Linear`` in place; how many were swapped.
    Raises a one-line error where FP8 cannot apply: no AMP precision, no eligible layer, no torchao."""
    if precision.autocast_dtype is None:
        raise GpuwiseError(f"--fp8 runs the linear layers' products in FP8 beside 16-bit autocast, not "
                           f"{precision.value}: use --precision amp-bf16")
    chosen = {id(m) for m in fp8_layers(model)}
    if not chosen:
        raise GpuwiseError(f"--fp8: {what} has no nn.Linear with dimensions in multiples of {FP8_MULTIPLE} inside its "
                           "repeated blocks (torchao's float8 training converts those only): drop --fp8")
    float8 = torchao_float8()
    if float8 is None:
        raise GpuwiseError("--fp8 needs torchao (PyTorch's float8 training, a gpuwise dependency): pip install torchao")
    float8.convert_to_float8_training(model, module_filter_fn=lambda module, fqn: id(module) in chosen)
    return len(chosen)


def cannot_run_fp8(device_kind: str, device: str | None = None) -> str | None:
    """Why this machine's devices of ``device_kind`` cannot train with FP8 products (torch._scaled_mm), None if
    they can: CUDA needs compute capability 8.9 (Ada) or later. The CPU has no FP8 units: its _scaled_mm is a
    reference kernel, 11 s for one 128 x 768 x 3072 product where bf16 takes 13 ms (measured on this project's
    development machine), so a CPU run is refused rather than left to crawl."""
    if device_kind != "cuda":
        return ("the CPU has no FP8 units (torch's FP8 product there is a reference kernel, about 1000x slower "
                "than bf16)")
    major, minor = torch.cuda.get_device_capability(device)
    if (major, minor) < (8, 9):
        return (f"{torch.cuda.get_device_name(device)} (compute capability {major}.{minor}) has no FP8 tensor cores; "
                "FP8 products need 8.9 or later (Ada, Hopper, Blackwell)")
    return None
