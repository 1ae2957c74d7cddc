"""The user's own workload: ``path/to/file.py:factory`` or ``package.module:factory``.

The factory takes no arguments and returns a ``UserWorkload``: the model, a
function making a synthetic batch of N samples, and the loss of a batch. The
file is code: it runs only because the user named it. The factory is called
once on fake tensors when the workload is loaded (to read what it declares)
and again each time a model is built.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode

from gpuwise.errors import GpuwiseError
from gpuwise.fake import skip_weight_init
from gpuwise.workloads.registry import SAMPLE_UNITS, Batch, Shape, Workload


@dataclass(frozen=True)
class UserWorkload:
    """What a user's factory returns."""

    model: nn.Module
    make_batch: Callable[[int], Batch]  # batch size -> a synthetic batch (tensors made with torch factories)
    loss: Callable[[nn.Module, Batch], torch.Tensor]  # (model, batch) -> scalar loss, forward included
    sample_unit: str = "sample"
    default_batch_size: int = 32
    tokens_per_sample: int | None = None


@contextmanager
def _user_code(spec: str, what: str) -> Iterator[None]:
    """Errors raised by the user's code become one line that shows their message."""
    try:
        yield
    except GpuwiseError:
        raise
    except Exception as e:
        raise GpuwiseError(f"{spec}: {what} raised {type(e).__name__}: {e}") from e


# The module a user's model file is imported as; errors name the file instead of this made-up name.
USER_MODULE_PREFIX = "gpuwise_user_"


def _load_factory(spec: str) -> Callable[[], Any]:
    target, _, attr = spec.rpartition(":")
    if not target or not attr:
        raise GpuwiseError(f"'{spec}' is not path/to/file.py:factory or package.module:factory")
    if target.endswith(".py") or "/" in target or "\\" in target:
        path = Path(target)
        if not path.is_file():
            raise GpuwiseError(f"{spec}: no such file '{target}'; give the path to your model file")
        module_name = f"{USER_MODULE_PREFIX}{abs(hash(str(path.resolve())))}"
        module_spec = importlib.util.spec_from_file_location(module_name, path)
        if module_spec is None or module_spec.loader is None:  # Python imports .py files only
            raise GpuwiseError(f"{spec}: '{target}' is not a Python file (.py); give path/to/file.py:factory")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_name] = module
        with _user_code(spec, f"importing {target}"):
            module_spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(target)
        except ModuleNotFoundError as e:
            raise GpuwiseError(f"{spec}: cannot import module '{target}' ({e}); is it on PYTHONPATH?") from e
    factory = getattr(module, attr, None)
    if not callable(factory):
        found = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))
        listed = ", ".join(found) or "none"
        raise GpuwiseError(f"{spec}: no factory '{attr}' in {target}; callables there: {listed}")
    return factory


def _call(spec: str, factory: Callable[[], Any]) -> UserWorkload:
    with _user_code(spec, "the factory"):
        result = factory()
    if not isinstance(result, UserWorkload):
        raise GpuwiseError(
            f"{spec}: the factory returned {type(result).__name__}; "
            "return gpuwise.UserWorkload(model, make_batch, loss)"
        )
    return result


def load_user_workload(spec: str) -> Workload:
    factory = _load_factory(spec)
    with FakeTensorMode(), skip_weight_init():
        declared = _call(spec, factory)
    if declared.sample_unit not in SAMPLE_UNITS:
        raise GpuwiseError(f"{spec}: sample_unit must be one of {', '.join(SAMPLE_UNITS)}")
    if declared.default_batch_size < 1:
        raise GpuwiseError(f"{spec}: default_batch_size must be a positive integer")
    built: dict[int, UserWorkload] = {}  # model id -> the spec that built it

    def build_model(shape: Shape) -> nn.Module:
        user = _call(spec, factory)
        built[id(user.model)] = user
        return user.model

    def make_batch(batch_size: int, shape: Shape) -> Batch:
        with _user_code(spec, "make_batch"):
            return declared.make_batch(batch_size)

    def forward_loss(model: nn.Module, batch: Batch) -> torch.Tensor:
        user = built.get(id(model), declared)
        with _user_code(spec, "loss"):
            loss = user.loss(model, batch)
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise GpuwiseError(f"{spec}: loss must return a scalar tensor")
        return loss

    return Workload(
        name=spec,
        family="user",
        sample_unit=declared.sample_unit,
        default_batch_size=declared.default_batch_size,
        summary=f"{type(declared.model).__name__} from {spec}",
        build_model=build_model,
        make_batch=make_batch,
        forward_loss=forward_loss,
        tokens_per_sample=_constant(declared.tokens_per_sample),
        reference="user code",
        data_dependent=True,  # unknown: answer data-dependent questions with bounded sizes if it asks
    )


def _constant(value: int | None) -> Callable[[Shape], int] | None:
    if value is None:
        return None
    return lambda shape: value
