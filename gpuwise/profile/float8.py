"""torchao's FP8 casts as a GPU runs them under torch.compile: two fused kernels per cast.

torchao's float8 training (``gpuwise.float8``) casts each FP8 layer's input, weight and output gradient with
a dynamic per-tensor scale. Written out (``float8_utils.tensor_to_scale``, ``_ToFloat8ConstrFunc.forward``)
that is abs, max and four scalar ops for the scale, then an upcast to float32, a multiply, a clamp and the
cast: about 33 bytes moved per element of a bf16 tensor. torch.compile, which torchao and torchtitan run
float8 training under, generates two kernels instead: a reduction that reads the tensor once and writes the
scale, and a cast that reads it again and writes one byte per element (5 bytes). GPU profiles route the casts
through ``gpuwise::fp8_scale`` and ``gpuwise::fp8_cast``, ops with those kernels' shapes and dtypes; they
have no real kernel and exist for profiling on fake tensors only. Eager torchao runs the written-out form, which
``gpuwise predict --fp8`` without ``--compile`` says it does not price.

Under ``--compile`` the roofline's compile model (``roofline.COMPILE_OPS_PER_KERNEL``) then halves these two as it
does every memory-bound op of the graph: inductor folds a scale's reduction into the kernel that writes the tensor
(an activation's or gradient's producer), leaving the cast's read and one-byte write, about 3 bytes an element,
where the halving gives 2.5 (an assumption, as the compile model's is; a weight's scale, whose producer is FSDP's
all-gather, is a read of its own). ``python benchmarks/llm_runs.py --fp8-casts written-out`` prices the casts as
eager PyTorch writes them instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from unittest import mock

import torch

from gpuwise.float8 import torchao_float8


@torch.library.custom_op("gpuwise::fp8_scale", mutates_args=(), schema="(Tensor input) -> Tensor")
def fp8_scale(input: torch.Tensor) -> torch.Tensor:
    raise RuntimeError("gpuwise::fp8_scale models a compiled kernel for profiling on fake tensors only")


@fp8_scale.register_fake
def _fp8_scale_fake(input: torch.Tensor) -> torch.Tensor:
    return input.new_empty((), dtype=torch.float32)


@torch.library.custom_op("gpuwise::fp8_cast", mutates_args=(),
                         schema="(Tensor input, Tensor scale, ScalarType dtype) -> Tensor")
def fp8_cast(input: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    raise RuntimeError("gpuwise::fp8_cast models a compiled kernel for profiling on fake tensors only")


@fp8_cast.register_fake
def _fp8_cast_fake(input: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return torch.empty_like(input, dtype=dtype)


@contextmanager
def fused_fp8_casts() -> Iterator[None]:
    """torchao's tensor-wise casts through the two fused ops while it lasts (no-op without torchao); the
    distributed forms (an all-reduced amax, DTensor inputs) stay as torchao writes them."""
    if torchao_float8() is None:
        yield
        return
    from torchao.float8 import float8_scaling_utils, float8_training_tensor
    from torchao.float8.config import ScalingGranularity

    constructor = float8_training_tensor._ToFloat8ConstrFunc
    original_scale, original_forward = float8_scaling_utils.tensor_to_scale, constructor.forward

    def tensor_to_scale(hp_tensor: torch.Tensor, float8_dtype: torch.dtype, reduce_amax: bool = False,
                        device_mesh: Any = None, scaling_granularity: Any = ScalingGranularity.TENSORWISE,
                        *args: Any, **kwargs: Any) -> torch.Tensor:
        if reduce_amax or scaling_granularity is not ScalingGranularity.TENSORWISE:
            scale: torch.Tensor = original_scale(hp_tensor, float8_dtype, reduce_amax, device_mesh,
                                                 scaling_granularity, *args, **kwargs)
            return scale
        return fp8_scale(hp_tensor)  # type: ignore[no-any-return]

    def forward(ctx: Any, tensor: torch.Tensor, scale: torch.Tensor, float8_dtype: torch.dtype,
                linear_mm_config: Any = None, gemm_input_role: Any = None, axiswise_dim: int | None = None) -> Any:
        if type(tensor) is not torch.Tensor and not isinstance(tensor, torch._subclasses.FakeTensor):
            return original_forward(ctx, tensor, scale, float8_dtype, linear_mm_config, gemm_input_role,
                                    axiswise_dim)
        return float8_training_tensor.Float8TrainingTensor(
            fp8_cast(tensor, scale, float8_dtype), scale, tensor.dtype, linear_mm_config=linear_mm_config,
            gemm_input_role=gemm_input_role, axiswise_dim=axiswise_dim)

    with ExitStack() as stack:
        stack.enter_context(mock.patch.object(float8_scaling_utils, "tensor_to_scale", tensor_to_scale))
        stack.enter_context(mock.patch.object(constructor, "forward", staticmethod(forward)))
        yield
