"""Models that are built, not traced: parameters on the meta device, then fake tensors for the profile.

The profiler runs a step under ``FakeTensorMode``. Building a model inside that mode fails for
models that compute Python numbers while being built: timm's stochastic-depth schedules call
``torch.linspace(...).tolist()``, which a fake tensor cannot answer. Such models are built outside
fake mode instead, with every parameter and buffer put on the meta device as it is registered
(so a 7B config allocates nothing, and ``linspace`` still runs on the CPU), and the built module's
tensors are then replaced by fake tensors of the same shape, dtype and sharing. The same is done to
a user's own ``nn.Module``: the profile traces a fake copy and never touches the user's weights.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from gpuwise.fake import skip_weight_init


def active_fake_mode() -> Any:
    """The ``FakeTensorMode`` a profile runs under, or None when the step runs for real (bench, train)."""
    from torch._guards import detect_fake_mode

    return detect_fake_mode()


@contextmanager
def parameters_on_meta() -> Iterator[None]:
    """Every parameter and buffer a module registers goes to the meta device (accelerate's
    ``init_empty_weights`` does the same); other tensors (``linspace`` schedules) stay real."""
    register_parameter, register_buffer = nn.Module.register_parameter, nn.Module.register_buffer

    def meta_parameter(self: nn.Module, name: str, param: nn.Parameter | None) -> None:
        if param is not None and param.device.type != "meta":
            param = nn.Parameter(param.detach().to("meta"), requires_grad=param.requires_grad)
        register_parameter(self, name, param)

    def meta_buffer(self: nn.Module, name: str, tensor: torch.Tensor | None, persistent: bool = True) -> None:
        register_buffer(self, name, tensor.to("meta") if tensor is not None else None, persistent)

    nn.Module.register_parameter = meta_parameter  # type: ignore[method-assign]  # restored below
    nn.Module.register_buffer = meta_buffer  # type: ignore[method-assign]
    try:
        yield
    finally:
        nn.Module.register_parameter = register_parameter  # type: ignore[method-assign]
        nn.Module.register_buffer = register_buffer  # type: ignore[method-assign]


@contextmanager
def outside_fake_on_meta() -> Iterator[None]:
    """Leave the active fake mode (if any); parameters and buffers go to the meta device; no weight init."""
    from torch._subclasses.fake_tensor import unset_fake_temporarily

    with unset_fake_temporarily(), parameters_on_meta(), skip_weight_init():
        yield


def build_for_step(build: Callable[[], nn.Module]) -> nn.Module:
    """``build()`` as the current step needs it: for real when no fake mode is active; under a profile,
    outside fake mode on the meta device, then with fake tensors in place of its own."""
    fake_mode = active_fake_mode()
    if fake_mode is None:
        return build()
    with outside_fake_on_meta():
        model = build()
    return fake_copy(model, fake_mode)


def fake_copy(model: nn.Module, fake_mode: Any) -> nn.Module:
    """A copy of ``model`` whose parameters, buffers and tensor attributes are fake tensors on the CPU,
    with the same shapes, dtypes, ``requires_grad`` and sharing (tied weights stay tied); nothing of the
    original is copied or changed."""
    memo: dict[int, Any] = {}
    with fake_mode:
        for module in model.modules():
            for tensor in _tensors_in(vars(module)):
                if id(tensor) not in memo:
                    memo[id(tensor)] = _fake_like(tensor)
    return copy.deepcopy(model, memo)


def _tensors_in(value: Any) -> Iterator[torch.Tensor]:
    """Tensors a module holds: its parameters and buffers, and tensors in its attributes, lists and dicts
    (submodules are visited on their own)."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            if not isinstance(v, nn.Module):
                yield from _tensors_in(v)
    elif isinstance(value, list | tuple | set):
        for v in value:
            if not isinstance(v, nn.Module):
                yield from _tensors_in(v)


def _fake_like(t: torch.Tensor) -> torch.Tensor:
    """An empty tensor like ``t`` on the CPU, made inside the active fake mode (so fake); a parameter stays one."""
    fake = torch.empty_strided(tuple(t.shape), tuple(t.stride()), dtype=t.dtype, device="cpu")
    if isinstance(t, nn.Parameter):
        return nn.Parameter(fake, requires_grad=t.requires_grad)
    return fake.requires_grad_(t.requires_grad) if t.is_floating_point() else fake
