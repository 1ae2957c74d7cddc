"""The Python API: ``gpuwise.profile``, ``gpuwise.predict``, ``gpuwise.plan`` and ``gpuwise.bench``.

One call each, returning a typed result (``Profile``, ``Option``, ``Plan``, ``BenchResult``), as the
CLI's commands do. Each takes the workload as

- a zoo name (``"resnet50"``), ``"path/to/file.py:factory"``, ``"timm:NAME"`` or ``"hf:PATH"``;
- a ``gpuwise.UserWorkload`` (model, batch maker, loss, what it counts);
- an ``nn.Module`` with ``make_batch=lambda n: ...`` (a batch of n samples) and optionally
  ``loss=lambda model, batch: ...`` (default: the sum of the model's outputs);

and options as the CLI's names or as enums (``precision="amp-bf16"`` or ``Precision.AMP_BF16``).
Defaults are the configs' (``gpuwise.config``, ``gpuwise.plan``): each is defined once.

    >>> import torch, gpuwise
    >>> model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
    >>> p = gpuwise.profile(model, make_batch=lambda n: torch.randn(n, 64), batch_size=8, precision="amp-bf16")
    >>> o = gpuwise.predict("resnet50", gpu="H100-SXM5-80GB", num_gpus=8)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gpuwise.config import (
    ActivationCheckpointing,
    OptimizerName,
    Precision,
    RunSettings,
    Strategy,
    optimizer_for,
)
from gpuwise.errors import GpuwiseError
from gpuwise.workloads import UserWorkload, Workload, get_workload
from gpuwise.workloads.module import module_workload

if TYPE_CHECKING:

    from gpuwise.plan import Option, Plan
    from gpuwise.profile.result import Profile
    from gpuwise.records import BenchResult

__all__ = ["bench", "plan", "predict", "profile", "workload"]

WorkloadSpec = Any  # str | Workload | UserWorkload | nn.Module (torch is not imported to say so)


def workload(
    spec: WorkloadSpec, make_batch: Callable[[int], Any] | None = None,
    loss: Callable[[Any, Any], Any] | None = None,
) -> Workload:
    """Any of the accepted forms of a workload as a ``Workload``; ``make_batch`` and ``loss`` go with a module."""
    from torch import nn

    if isinstance(spec, nn.Module):
        if make_batch is None:
            raise GpuwiseError(f"a {type(spec).__name__} needs make_batch: pass make_batch=lambda n: <a batch of n "
                               "samples>, e.g. lambda n: torch.randn(n, 64)")
        return module_workload(spec, make_batch, loss)
    if make_batch is not None or loss is not None:
        raise GpuwiseError("make_batch and loss go with an nn.Module; a named workload or UserWorkload has its own")
    if isinstance(spec, UserWorkload):
        return module_workload(spec.model, spec.make_batch, spec.loss, sample_unit=spec.sample_unit,
                               default_batch_size=spec.default_batch_size, tokens_per_sample=spec.tokens_per_sample,
                               optimizer=optimizer_for(spec.optimizer, None).value if spec.optimizer else None)
    if isinstance(spec, str | Workload):
        return get_workload(spec)
    raise GpuwiseError(f"cannot make a workload of a {type(spec).__name__}: give a zoo name, 'path/to/file.py:factory',"
                       " 'timm:NAME', 'hf:PATH', a gpuwise.UserWorkload, or an nn.Module with make_batch=...")


def profile(
    spec: WorkloadSpec, *, make_batch: Callable[[int], Any] | None = None,
    loss: Callable[[Any, Any], Any] | None = None, batch_size: int | None = None,
    precision: str | Precision = Precision.FP32, optimizer: str | OptimizerName | None = None,
    seq_len: int | None = None, image_size: int | None = None,
    activation_checkpointing: str | ActivationCheckpointing = ActivationCheckpointing.NONE, gpu_kernels: bool = False,
    fp8: bool = False,
) -> Profile:
    """FLOPs, bytes and memory of one training step, traced on fake tensors (nothing real is allocated).
    ``gpu_kernels``: attention, dropout and GRUs as a GPU's fused kernels run them; ``fp8``: the blocks' linear
    layers in FP8 (torchao float8 training, with its casts fused as torch.compile runs them where ``gpu_kernels``)."""
    from gpuwise.profile.run import profile as profile_workload

    return profile_workload(workload(spec, make_batch, loss), batch_size=batch_size, precision=precision,
                            optimizer=optimizer, seq_len=seq_len, image_size=image_size, gpu_kernels=gpu_kernels,
                            activation_checkpointing=activation_checkpointing, fp8=fp8)


def predict(
    spec: WorkloadSpec, *, gpu: str, num_gpus: int = 1, make_batch: Callable[[int], Any] | None = None,
    loss: Callable[[Any, Any], Any] | None = None, batch_size: int | None = None,
    precision: str | Precision = Precision.AUTO, optimizer: str | OptimizerName | None = None,
    seq_len: int | None = None, image_size: int | None = None, strategy: str | Strategy = Strategy.AUTO,
    activation_checkpointing: str | ActivationCheckpointing = ActivationCheckpointing.NONE, grad_accum: int = 1,
    compile: bool = False, fp8: bool = False, network_gbits: float | None = None,
    cpu_threads_per_gpu: int | None = None, gpus_per_node: int | None = None, catalog: Path | str | None = None,
    store_path: Path | str | None = None, busbw_gbs: float | None = None,
) -> Option:
    """One training step on ``num_gpus`` × ``gpu`` (a catalog name): whether it fits, its time and parts,
    throughput, and where the number comes from. ``precision`` auto: by the GPU (``Option.precision_reason``).
    ``busbw_gbs``: the all-reduce bus bandwidth you measured within one node, GB/s (nccl-tests'
    ``all_reduce_perf``, busbw at large sizes), in place of the catalog link times its ring share."""
    from gpuwise.predict.single import PredictConfig
    from gpuwise.predict.single import predict as predict_config

    w = workload(spec, make_batch, loss)
    config = PredictConfig.of(
        workload=w, gpu=gpu, num_gpus=num_gpus, batch_size=batch_size, precision=precision,
        optimizer=optimizer_for(optimizer, w.optimizer), seq_len=seq_len, image_size=image_size,
        network_gbits=network_gbits, catalog_path=_path(catalog),
        settings=_settings(strategy, activation_checkpointing, grad_accum, compile, fp8),
        cpu_threads_per_gpu=cpu_threads_per_gpu, gpus_per_node=gpus_per_node, busbw_gbs=busbw_gbs,
    )
    return predict_config(config, store_path=_path(store_path))


def plan(
    spec: WorkloadSpec, *, dataset_size: float, epochs: float = 1, make_batch: Callable[[int], Any] | None = None,
    loss: Callable[[Any, Any], Any] | None = None, unit: str | None = None, global_batch: int | None = None,
    batch_size: int | None = None,
    precision: str | Precision = Precision.AUTO, optimizer: str | OptimizerName | None = None,
    seq_len: int | None = None, image_size: int | None = None, deadline: float | str | None = None,
    budget: float | str | None = None, gpus: Sequence[str] | str | None = None, max_gpus: int | None = None,
    strategy: str | Strategy = Strategy.AUTO,
    activation_checkpointing: str | ActivationCheckpointing = ActivationCheckpointing.NONE, grad_accum: int = 1,
    compile: bool = False, fp8: bool = False, network_gbits: float | None = None,
    cpu_threads_per_gpu: int | None = None, gpus_per_node: int | None = None, catalog: Path | str | None = None,
    store_path: Path | str | None = None,
) -> Plan:
    """Every way to run the training (your CPU, each catalog GPU × count), the time-vs-cost front and one
    recommendation. ``global_batch`` (default: a zoo language model's published recipe, whose
    ``Plan.global_batch_recipe`` says; else the workload's batch) is kept in every option, split over the GPUs
    with gradient accumulation where a share does not fit; ``batch_size`` keeps a batch per GPU instead.
    ``precision`` auto: per device. ``deadline``: seconds or text ('48h'); ``budget``: US dollars or text
    ('5k'); ``gpus``: catalog names (a list, or comma-separated)."""
    from gpuwise.plan import PlanConfig
    from gpuwise.plan import plan as plan_config
    from gpuwise.units import parse_duration, parse_money

    w = workload(spec, make_batch, loss)
    names = tuple(n.strip() for n in gpus.split(",") if n.strip()) if isinstance(gpus, str) else (
        tuple(gpus) if gpus is not None else None)
    config = PlanConfig.of(
        workload=w, dataset_size=dataset_size, epochs=epochs, unit=unit, global_batch=global_batch,
        batch_size=batch_size,
        precision=Precision.parse(precision), optimizer=optimizer_for(optimizer, w.optimizer), seq_len=seq_len,
        image_size=image_size,
        deadline_s=parse_duration(deadline, "deadline") if isinstance(deadline, str) else deadline,
        budget_usd=parse_money(budget, "budget") if isinstance(budget, str) else budget,
        gpus=names, max_gpus=max_gpus if max_gpus is not None else PlanConfig.max_gpus,
        network_gbits=network_gbits, catalog_path=_path(catalog),
        settings=_settings(strategy, activation_checkpointing, grad_accum, compile, fp8),
        cpu_threads_per_gpu=cpu_threads_per_gpu, gpus_per_node=gpus_per_node,
    )
    return plan_config(config, store_path=_path(store_path))


def bench(
    spec: WorkloadSpec, *, device: str = "cpu", make_batch: Callable[[int], Any] | None = None,
    loss: Callable[[Any, Any], Any] | None = None, batch_size: int | str | None = None,
    precision: str | Precision = Precision.AUTO, optimizer: str | OptimizerName | None = None,
    seq_len: int | None = None, image_size: int | None = None, steps: int = 10, warmup: int = 3,
    activation_checkpointing: str | ActivationCheckpointing = ActivationCheckpointing.NONE, compile: bool = False,
    fp8: bool = False, store: bool | None = None, store_path: Path | str | None = None,
) -> BenchResult:
    """Real training steps on ``device`` ("cpu", "cuda", "cuda:1"), timed by the one protocol.
    ``batch_size="auto"``: the largest that fits. ``precision`` auto: by the device (a GPU by its tensor cores,
    the CPU by its measured matmul rates; ``BenchResult.precision`` is the one chosen). ``store``: keep the
    result in the results database (default: for named workloads; a module passed in has no name to find it by
    later)."""
    from gpuwise.bench.run import BenchConfig
    from gpuwise.bench.run import bench as bench_config

    w = workload(spec, make_batch, loss)
    auto = batch_size == "auto"
    if isinstance(batch_size, str) and not auto:
        raise GpuwiseError(f"batch_size must be a positive integer or 'auto', got {batch_size!r}")
    config = BenchConfig.of(
        workload=w, device=device, batch_size=None if auto else batch_size, auto_batch=auto,
        precision=Precision.parse(precision), optimizer=optimizer_for(optimizer, w.optimizer), seq_len=seq_len,
        image_size=image_size, steps=steps, warmup=warmup,
        activation_checkpointing=ActivationCheckpointing.parse(activation_checkpointing), compile=compile, fp8=fp8,
    )
    keep = store if store is not None else isinstance(spec, str)
    return bench_config(config, store_path=_path(store_path), store=keep)


def _settings(strategy: str | Strategy, activation_checkpointing: str | ActivationCheckpointing, grad_accum: int,
              compile: bool, fp8: bool) -> RunSettings:
    """The run settings of predict and plan; names as strings or enums (RunSettings parses them)."""
    return RunSettings(strategy=strategy, activation_checkpointing=activation_checkpointing,  # type: ignore[arg-type]
                       grad_accum=grad_accum, compile=compile, fp8=fp8)


def _path(value: Path | str | None) -> Path | None:
    return Path(value) if isinstance(value, str) else value
