"""gpuwise: know what your deep-learning training needs before you pay for it.

Importing the package imports nothing heavy: the names below load their module (and torch) on first
use, so ``gpuwise --help`` and ``gpuwise --version`` start in a fraction of a second.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from gpuwise.errors import GpuwiseError

__version__ = "0.1.0"

# Public name -> the module that defines it, imported when the name is first used (PEP 562).
_LAZY = {
    "Profile": "gpuwise.profile",
    "profile": "gpuwise.profile",
    "UserWorkload": "gpuwise.workloads",
    "Workload": "gpuwise.workloads",
    "get_workload": "gpuwise.workloads",
    "list_workloads": "gpuwise.workloads",
}

if TYPE_CHECKING:
    from gpuwise.profile import Profile, profile
    from gpuwise.workloads import UserWorkload, Workload, get_workload, list_workloads

__all__ = [
    "GpuwiseError",
    "Profile",
    "UserWorkload",
    "Workload",
    "__version__",
    "get_workload",
    "list_workloads",
    "profile",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # the next lookup is a plain attribute
        return value
    raise AttributeError(f"module 'gpuwise' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


class _Package(types.ModuleType):
    """Keeps a public function's name when its submodule of the same name loads.

    Importing ``gpuwise.profile`` (the package) makes Python set ``gpuwise.profile`` to the module;
    the user means the function ``gpuwise.profile``. A module for a name in ``_LAZY`` is not stored
    (it stays in ``sys.modules``), so the name resolves through ``__getattr__`` to the function.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _LAZY and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
