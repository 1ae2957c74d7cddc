"""The user's own workload: ``path/to/file.py:factory`` or ``package.module:factory``.

The factory returns a ``UserWorkload``: the model, a function making a synthetic batch of N
samples, and the loss of a batch (optionally the optimizer it trains with). It takes no arguments,
or keyword arguments ``seq_len`` and/or ``image_size`` with default values: then ``--seq-len`` and
``--image-size`` apply to it, and the defaults are the shape without them. The file is code: it
runs only because the user named it. The factory is called on fake tensors when the workload is
loaded (to read what it declares, once per shape) and again each time a model is built: outside fake
mode with its parameters on the meta device, then given fake tensors (``gpuwise.workloads.meta``), so
that models computing Python numbers while being built (timm's stochastic-depth schedules) load; a
factory that fails there (one that copies its weights to a device) is called in fake mode instead.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode

from gpuwise.errors import GpuwiseError
from gpuwise.fake import skip_weight_init
from gpuwise.workloads.meta import active_fake_mode, fake_copy, outside_fake_on_meta
from gpuwise.workloads.registry import SAMPLE_UNITS, Batch, Shape, Workload

SHAPE_OPTIONS = ("seq_len", "image_size")  # keyword arguments a factory may take; the shape flags set them


@dataclass(frozen=True)
class UserWorkload:
    """What a user's factory returns."""

    model: nn.Module
    make_batch: Callable[[int], Batch]  # batch size -> a synthetic batch (tensors made with torch factories)
    loss: Callable[[nn.Module, Batch], torch.Tensor]  # (model, batch) -> scalar loss, forward included
    sample_unit: str = "sample"
    default_batch_size: int = 32
    tokens_per_sample: int | None = None
    optimizer: str | None = None  # sgd | sgd-momentum | adam | adamw: what it trains with [default: adamw]


@contextmanager
def user_code(spec: str, what: str) -> Iterator[None]:
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
        with user_code(spec, f"importing {target}"):
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


def _call(spec: str, factory: Callable[..., Any], kwargs: dict[str, int]) -> UserWorkload:
    with user_code(spec, "the factory"):
        result = factory(**kwargs)
    if not isinstance(result, UserWorkload):
        raise GpuwiseError(
            f"{spec}: the factory returned {type(result).__name__}; "
            "return gpuwise.UserWorkload(model, make_batch, loss)"
        )
    return result


def _call_in_fake_mode(spec: str, factory: Callable[..., Any], kwargs: dict[str, int]) -> UserWorkload:
    """The factory's workload with its model in fake tensors of the active fake mode (a new one if none is):
    built outside fake mode on the meta device and then made fake, else, if that fails (a factory that copies
    its weights to a device, say), built in fake mode. The meta device first: fake mode cannot build models
    that compute Python numbers from tensors, and ``copy.deepcopy`` of a fake tensor (``nn.TransformerEncoder``
    clones its layer) gives one of another fake mode."""
    fake_mode = active_fake_mode()
    if fake_mode is None:
        with FakeTensorMode():
            return _call_in_fake_mode(spec, factory, kwargs)
    try:
        with outside_fake_on_meta():
            user = _call(spec, factory, kwargs)
        return replace(user, model=fake_copy(user.model, fake_mode))
    except GpuwiseError as on_meta:
        try:
            with skip_weight_init():
                return _call(spec, factory, kwargs)
        except GpuwiseError:
            raise on_meta from None


def _default_shape(spec: str, factory: Callable[..., Any]) -> Shape:
    """The shape options the factory takes (``seq_len``, ``image_size``), at their default values."""
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # a builtin or C callable: no keywords to read
        return Shape()
    defaults: dict[str, int] = {}
    for name in SHAPE_OPTIONS:
        if name not in parameters:
            continue
        default = parameters[name].default
        if isinstance(default, bool) or not isinstance(default, int) or default < 1:
            raise GpuwiseError(f"{spec}: give the factory's {name} a default value, a positive integer (the shape "
                               f"without --{name.replace('_', '-')}), e.g. def factory({name}=...)")
        defaults[name] = default
    return Shape(**defaults)


def _shape_kwargs(shape: Shape, accepted: Shape) -> dict[str, int]:
    return {name: getattr(shape, name) for name in SHAPE_OPTIONS
            if getattr(accepted, name) is not None and getattr(shape, name) is not None}


# Loaded workloads by spec and the state of its file: the commands resolve a workload once, at their edge, and
# pass it down, but a training run's loop is handed a name (its config crosses processes): the file then runs
# once per process, and again only after it changes (a notebook that edits it).
_LOADED: dict[tuple[str, tuple[object, ...] | None], Workload] = {}


def load_user_workload(spec: str) -> Workload:
    """The user's ``file.py:factory`` or ``module:factory`` as a workload: its file is run once per process
    while unchanged (``_LOADED``)."""
    key = (spec, _file_state(spec))
    if key not in _LOADED:
        _LOADED[key] = _load_user_workload(spec)
    return _LOADED[key]


def _file_state(spec: str) -> tuple[object, ...] | None:
    """Which version of the spec's file: its path, modification time and size (None for a module, which Python
    imports once anyway, or a file that cannot be read: loading it says why)."""
    target = spec.rpartition(":")[0]
    if not (target.endswith(".py") or "/" in target or "\\" in target):
        return None
    try:
        path = Path(target).resolve()
        stat = path.stat()
    except OSError:
        return None
    return (str(path), stat.st_mtime_ns, stat.st_size)


def _load_user_workload(spec: str) -> Workload:
    factory = _load_factory(spec)
    default_shape = _default_shape(spec, factory)
    declarations: dict[Shape, UserWorkload] = {}  # what the factory declares at each shape

    def declared(shape: Shape) -> UserWorkload:
        if shape not in declarations:
            declarations[shape] = _call_in_fake_mode(spec, factory, _shape_kwargs(shape, default_shape))
        return declarations[shape]

    first = declared(default_shape)
    if first.sample_unit not in SAMPLE_UNITS:
        raise GpuwiseError(f"{spec}: sample_unit must be one of {', '.join(SAMPLE_UNITS)}")
    if first.default_batch_size < 1:
        raise GpuwiseError(f"{spec}: default_batch_size must be a positive integer")
    optimizer = _optimizer_name(spec, first.optimizer)
    built: dict[int, UserWorkload] = {}  # model id -> the spec that built it

    def build_model(shape: Shape) -> nn.Module:
        kwargs = _shape_kwargs(shape, default_shape)
        user = _call_in_fake_mode(spec, factory, kwargs) if active_fake_mode() else _call(spec, factory, kwargs)
        built[id(user.model)] = user
        return user.model

    def make_batch(batch_size: int, shape: Shape) -> Batch:
        with user_code(spec, "make_batch"):
            return declared(shape).make_batch(batch_size)

    def forward_loss(model: nn.Module, batch: Batch) -> torch.Tensor:
        user = built.get(id(model), first)
        with user_code(spec, "loss"):
            loss = user.loss(model, batch)
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise GpuwiseError(f"{spec}: loss must return a scalar tensor")
        return loss

    def tokens_per_sample(shape: Shape) -> int:
        value = declared(shape).tokens_per_sample
        assert value is not None, "declared at the default shape, so at every shape"
        return value

    return Workload(
        name=spec,
        family="user",
        sample_unit=first.sample_unit,
        default_batch_size=first.default_batch_size,
        summary=f"{type(first.model).__name__} from {spec}",
        build_model=build_model,
        make_batch=make_batch,
        forward_loss=forward_loss,
        default_shape=default_shape,
        tokens_per_sample=tokens_per_sample if first.tokens_per_sample is not None else None,
        reference="user code",
        data_dependent=True,  # unknown: answer data-dependent questions with bounded sizes if it asks
        optimizer=optimizer,
    )


def _optimizer_name(spec: str, value: object) -> str | None:
    """The optimizer a UserWorkload names, checked: one of gpuwise's names, else one line with the choices."""
    if value is None:
        return None
    from gpuwise.config import OptimizerName

    try:
        return OptimizerName.parse(value).value  # type: ignore[arg-type]  # checked: anything else is refused
    except GpuwiseError as e:
        raise GpuwiseError(f"{spec}: UserWorkload(optimizer=...): {e}") from None
