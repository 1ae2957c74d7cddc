"""gpuwise: know what your deep-learning training needs before you pay for it.

``gpuwise.profile``, ``gpuwise.predict``, ``gpuwise.plan`` and ``gpuwise.bench`` are the Python API
(``gpuwise.api``). Importing gpuwise is cheap: every name below is loaded on first use (PEP 562),
so ``gpuwise --help`` and ``import gpuwise`` do not import torch.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from gpuwise.errors import GpuwiseError

__version__ = "0.1.0"


def _not_pytree_enum_deprecation(record: logging.LogRecord) -> bool:
    """torch logs a deprecation warning for each enum torchao registers with pytree as its modules load (on import,
    and lazily mid-step; transformers imports torchao where it is installed): a line per enum about torchao's
    internals on a user's terminal. This drops those lines alone; it needs no torch import."""
    return "register_constant()" not in record.getMessage()


logging.getLogger("torch.utils._pytree").addFilter(_not_pytree_enum_deprecation)


def _not_fake_meta_failure(record: logging.LogRecord) -> bool:
    """Where a model's op fails on the profile's fake tensors, torch logs the op's traceback (about 30 lines) and
    then raises the error, which gpuwise reports in one line naming the model (``workloads.user.user_code``):
    this drops the logged copy."""
    return "failed while attempting to run meta for" not in record.getMessage()


logging.getLogger("torch._subclasses.fake_tensor").addFilter(_not_fake_meta_failure)

# name -> the module that defines it; loaded by ``__getattr__`` on first use.
_LAZY = {
    "Profile": "gpuwise.profile.result",
    "Option": "gpuwise.predict.option",
    "Plan": "gpuwise.plan",
    "PlanConfig": "gpuwise.plan",
    "PredictConfig": "gpuwise.predict.single",
    "BenchResult": "gpuwise.records",
    "UserWorkload": "gpuwise.workloads.user",
    "Workload": "gpuwise.workloads.registry",
    "get_workload": "gpuwise.workloads.registry",
    "list_workloads": "gpuwise.workloads.registry",
    "Precision": "gpuwise.config",
    "OptimizerName": "gpuwise.config",
    "Strategy": "gpuwise.config",
    "ActivationCheckpointing": "gpuwise.config",
    "RunSettings": "gpuwise.config",
}
# The API's four calls share their names with parts of the package; those modules are callable
# (gpuwise.entry), so ``gpuwise.plan(...)`` works whether or not ``gpuwise.plan`` was imported first.
_CALLABLE_MODULES = ("profile", "predict", "plan", "bench")

__all__ = ["GpuwiseError", "__version__", *_LAZY, *_CALLABLE_MODULES]

if TYPE_CHECKING:  # what type checkers and editors see; at run time ``__getattr__`` loads these
    from gpuwise.api import bench as bench
    from gpuwise.api import plan as plan
    from gpuwise.api import predict as predict
    from gpuwise.api import profile as profile
    from gpuwise.config import ActivationCheckpointing as ActivationCheckpointing
    from gpuwise.config import OptimizerName as OptimizerName
    from gpuwise.config import Precision as Precision
    from gpuwise.config import RunSettings as RunSettings
    from gpuwise.config import Strategy as Strategy
    from gpuwise.plan import Plan as Plan
    from gpuwise.plan import PlanConfig as PlanConfig
    from gpuwise.predict.option import Option as Option
    from gpuwise.predict.single import PredictConfig as PredictConfig
    from gpuwise.profile.result import Profile as Profile
    from gpuwise.records import BenchResult as BenchResult
    from gpuwise.workloads.registry import Workload as Workload
    from gpuwise.workloads.registry import get_workload as get_workload
    from gpuwise.workloads.registry import list_workloads as list_workloads
    from gpuwise.workloads.user import UserWorkload as UserWorkload


def __getattr__(name: str) -> Any:
    if name in _CALLABLE_MODULES:
        return importlib.import_module(f"gpuwise.{name}")
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gpuwise' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
