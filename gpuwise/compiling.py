"""torch.compile as gpuwise runs it: each block compiled in place, as torchtitan's ``apply_compile`` does.

Shared by ``gpuwise bench`` and ``gpuwise train`` (``--compile``), so a measured compiled step is the
one a compiled training run takes. ``gpuwise predict`` prices it by an assumption (``Pipeline.compiled``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from gpuwise.errors import GpuwiseError


def compile_blocks(model: torch.nn.Module, device: str, *, workload: str) -> int:
    """``torch.compile`` each block in place (``Module.compile``: names and state dicts unchanged), as
    torchtitan's ``apply_compile`` compiles each transformer block; the whole model if it has fewer than
    two. Returns how many were compiled. Compilation itself happens at the first step."""
    from gpuwise.recompute import blocks

    why = cannot_compile(device)
    if why:
        raise GpuwiseError(f"--compile: {why}; run without --compile")
    units = blocks(model)
    if len(units) < 2:
        units = [model]
    for unit in units:
        unit.compile()
    return len(units)


def cannot_compile(device: str) -> str | None:
    """Why torch.compile cannot run here, or None: dynamo's own verdict, and on the CPU a C++ compiler
    for inductor's kernels (it finds one through $CXX, else g++/clang++)."""
    import shutil

    from torch._dynamo.eval_frame import is_dynamo_supported

    if not is_dynamo_supported():
        return f"torch.compile is not supported on this Python ({sys.version.split()[0]}) or platform"
    if device == "cpu":
        wanted = [os.environ["CXX"]] if os.environ.get("CXX") else ["g++", "clang++", "c++"]
        if not any(shutil.which(c) for c in wanted):
            return (f"torch.compile on the CPU needs a C++ compiler and none was found ({' or '.join(wanted)}); "
                    "install one (e.g. apt install g++)")
    return None


@contextmanager
def explain_compile_failure(enabled: bool, workload: str) -> Iterator[None]:
    """A model torch.compile cannot trace becomes one line (the first step is where it compiles)."""
    if not enabled:
        yield
        return
    from torch._dynamo.exc import TorchDynamoException

    try:
        yield
    except TorchDynamoException as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise GpuwiseError(f"--compile: torch.compile failed on {workload}: {first[:300]}; "
                           "run without --compile") from e
