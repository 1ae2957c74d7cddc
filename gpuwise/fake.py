"""Building models on fake tensors: shapes and sizes, no data, nothing allocated."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

_INIT_FUNCTIONS = (
    "uniform_ normal_ trunc_normal_ constant_ ones_ zeros_ eye_ dirac_ xavier_uniform_ xavier_normal_ "
    "kaiming_uniform_ kaiming_normal_ orthogonal_ sparse_"
).split()


@contextmanager
def skip_weight_init() -> Iterator[None]:
    """Make ``torch.nn.init`` a no-op while a model is built on fake tensors.

    Initial values are irrelevant to the cost of a step, and some initialisers are
    data dependent (``trunc_normal_`` asks ``mask.any()``), which fake tensors cannot answer.
    """
    saved = {name: getattr(torch.nn.init, name) for name in _INIT_FUNCTIONS}

    def keep(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        return tensor

    try:
        for name in _INIT_FUNCTIONS:
            setattr(torch.nn.init, name, keep)
        yield
    finally:
        for name, fn in saved.items():
            setattr(torch.nn.init, name, fn)
        _repair_copies(keep, saved)


def _repair_copies(noop: Any, originals: dict[str, Any]) -> None:
    """transformers copies the ``torch.nn.init`` functions when it is first imported; if that
    import happened inside ``skip_weight_init`` its copies are our no-op, and every real model
    built later would keep uninitialised weights. Put the real functions back."""
    module = sys.modules.get("transformers.initialization")
    table = getattr(module, "TORCH_INIT_FUNCTIONS", None)
    if isinstance(table, dict):
        for name, fn in list(table.items()):
            if fn is noop and name in originals:
                table[name] = originals[name]
