"""Options for running one training step setting: the CPU, or n GPUs of one catalog kind.

An ``Option`` says whether the step fits (at the requested batch per device, else the largest
batch that fits, or FSDP when the weights, gradients and optimizer state alone exceed the GPU;
see ``gpuwise.predict.memory``), how long a step takes and what makes it up, what binds, and
where the number comes from:

- **measured here**: the results store has a bench of the same workload, batch, precision,
  optimizer and shape on that device; its median step time is used.
- **extrapolated from a measurement on X**: it has one on another catalog GPU; the step is
  that median × model(this GPU) / model(X). CPU measurements are not extrapolated to GPUs:
  a host-bound CPU step says little about a GPU's.
- **analytical**: the roofline model (``gpuwise.predict.roofline``) alone.

``OptionMaker`` profiles a step once per distinct batch size (``ProfileCache``); every option
after that is arithmetic. ``gpuwise.plan`` adds the run (epochs, cost) and chooses.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from gpuwise.config import OptimizerName, Precision, RunSettings, Strategy
from gpuwise.display import Displayed, gib, jsonable, seconds
from gpuwise.errors import GpuwiseError
from gpuwise.hardware.catalog import GPU, Catalog
from gpuwise.predict import memory, parallel
from gpuwise.predict.constants import shipped_efficiency
from gpuwise.predict.inputs import default_cpu_threads, input_ceiling
from gpuwise.predict.parallel import default_network_gbits
from gpuwise.predict.roofline import Efficiency, Pipeline, StepTime
from gpuwise.predict.step import GpuStep, ProfileCache, cpu_step, fsdp_step, gpu_rates, gpu_step
from gpuwise.profile.result import Profile
from gpuwise.profile.run import has_gpu_kernels
from gpuwise.records import BenchResult, Ceilings
from gpuwise.workloads import Workload

GPUS_PER_NODE = parallel.GPUS_PER_NODE


@dataclass(frozen=True)
class StepEstimate:
    """One training step of an option, and what makes it up (seconds)."""

    step_s: float  # compute + exposed communication + the wait for the slowest GPU
    step_low_s: float
    step_high_s: float
    compute_s: float  # one device's step: measured, extrapolated, or the model's
    model_compute_s: float  # the roofline model's step on one device
    compute_bound_s: float  # the model's parts: ops bound by compute ...
    memory_bound_s: float  # ... by memory bandwidth
    latency_s: float  # kernel launches on the device
    host_s: float  # eager dispatch on the host (overlaps the device on a GPU; adds on the CPU)
    communication_s: float  # exposed gradient all-reduce (DDP) or FSDP's gathers and reduce-scatter
    link: str | None  # what the communication runs over; None on one device
    samples_per_s: float  # all devices together, every micro batch
    tokens_per_s: float | None
    bound: str  # "compute", "memory bandwidth", "overhead", "communication", "input pipeline"
    # Images per second the CPU threads can decode and augment for all GPUs (gpuwise.predict.inputs);
    # None where no decode is modelled. The step is slowed to it when it binds ("input pipeline").
    input_ceiling_samples_per_s: float | None = None
    sync_s: float = 0.0  # every GPU waits for the slowest one (gpuwise.predict.parallel.sync_wait_s)


@dataclass(frozen=True)
class RunEstimate:
    """The whole run of an option: steps, time, cost, and their bands."""

    steps_per_epoch: int
    total_steps: int
    epoch_s: float
    total_s: float
    total_low_s: float
    total_high_s: float
    cost_usd: float | None  # None without a price; 0 on your own CPU
    cost_low_usd: float | None
    cost_high_usd: float | None


@dataclass(frozen=True, repr=False)
class Option(Displayed):
    """The CPU, or ``num_gpus`` GPUs of one kind, for this workload."""

    device: str  # "cpu" or the catalog name
    label: str  # "8× H100-SXM5-80GB", "your CPU (...)"
    is_gpu: bool
    num_gpus: int  # 1 for the CPU
    num_nodes: int
    price_usd_per_hour: float | None  # per GPU; None: the catalog has no price; 0 for your CPU
    requested_batch_size: int  # per device
    batch_size: int  # per device, as planned: the requested one, or the largest that fits
    strategy: str  # "single", "DDP" or "FSDP"
    fits: bool
    memory_per_gpu_bytes: int  # at the planned batch, CUDA context and allocator included
    capacity_bytes: int  # the GPU's memory, or the RAM a CPU run may use
    bound: str  # "compute", "memory bandwidth", "overhead", "communication", "input pipeline"; "VRAM" ("RAM" on
    # the CPU) if unfit
    provenance: str  # "measured here", "extrapolated from a measurement on X", "analytical"
    provenance_kind: str  # "measured", "extrapolated" or "analytical"
    band: float  # relative error of this prediction
    step: StepEstimate | None  # None when nothing fits
    run: RunEstimate | None  # None when nothing fits, or when no data set was given (predict)
    settings: RunSettings = field(default_factory=RunSettings)  # as priced: strategy, recompute, accumulation, compile
    notes: tuple[str, ...] = ()  # what the prediction assumes that the user should know (a precision run otherwise)
    # Across nodes: the network per GPU it was priced with and where that comes from ("" in one node).
    network: str = ""
    # On several GPUs: the bus bandwidth the ring within a node was priced at and where it comes from ("" on one).
    ring: str = ""
    precision: Precision = Precision.FP32  # what it was priced at (--precision auto chooses per device)
    precision_reason: str = ""  # why auto chose it; "" when the precision was asked for

    @property
    def global_batch_size(self) -> int:
        """Samples per optimizer step over all devices: batch per device × accumulation × devices."""
        return self.batch_size * self.settings.grad_accum * self.num_gpus

    @property
    def batch_reduced(self) -> bool:
        return self.fits and self.batch_size < self.requested_batch_size

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready, units in the field names."""
        data = jsonable(asdict(self))
        assert isinstance(data, dict)
        data["global_batch_size"] = self.global_batch_size
        return data

    def _summary(self) -> list[tuple[str, str]]:
        parts = [("option", repr(self.label)), ("fits", str(self.fits)),
                 ("memory_per_gpu", f"{gib(self.memory_per_gpu_bytes)} of {gib(self.capacity_bytes)}")]
        if self.step is None:
            return parts
        parts += [("batch_size", str(self.batch_size)), ("global_batch", str(self.global_batch_size)),
                  ("strategy", repr(self.strategy)), ("step", f"{seconds(self.step.step_s)} ±{self.band:.0%}"),
                  ("samples_per_s", f"{self.step.samples_per_s:,.1f}"), ("bound", repr(self.bound)),
                  ("source", repr(self.provenance))]
        if self.run is not None:
            parts.append(("total", f"{self.run.total_s / 3600:,.1f} h"))
            if self.run.cost_usd is not None:
                parts.append(("cost", f"${self.run.cost_usd:,.2f}"))
        return parts

    def _rows(self) -> list[dict[str, Any]]:
        return [option_row(self)]


def option_row(o: Option) -> dict[str, Any]:
    """An option as one flat table row: what a plan's table shows, in plain numbers."""
    step, run = o.step, o.run
    return {
        "option": o.label, "device": o.device, "num_gpus": o.num_gpus, "num_nodes": o.num_nodes, "fits": o.fits,
        "batch_size": o.batch_size, "grad_accum": o.settings.grad_accum, "global_batch_size": o.global_batch_size,
        "strategy": o.strategy, "precision": o.precision, "memory_per_gpu_bytes": o.memory_per_gpu_bytes,
        "capacity_bytes": o.capacity_bytes,
        "step_s": step.step_s if step else None, "samples_per_s": step.samples_per_s if step else None,
        "tokens_per_s": step.tokens_per_s if step else None, "total_s": run.total_s if run else None,
        "cost_usd": run.cost_usd if run else None, "bound": o.bound, "provenance": o.provenance, "band": o.band,
    }


# ------------------------------------------------------------------ options


@dataclass(frozen=True)
class _Fit:
    batch_size: int  # 0: nothing fits
    strategy: str
    device_bytes: int  # at batch_size, or what the smallest attempt needed when nothing fits


class OptionMaker:
    """Profiles, efficiency constants and stored measurements of one step setting; makes options."""

    def __init__(
        self, workload: Workload, *, batch_size: int | None, precision: Precision, optimizer: OptimizerName,
        seq_len: int | None, image_size: int | None, network_gbits: float | None, catalog: Catalog,
        store_path: Path | None, profiles: ProfileCache, bands: Mapping[str, float],
        settings: RunSettings = RunSettings(), efficiency: Efficiency | None = None,
        cpu_threads_per_gpu: int | None = None, round_batch: Callable[[int], int] = memory.round_batch,
        measurements: Sequence[BenchResult] | None = None, gpus_per_node: int | None = None,
        busbw_gbs: float | None = None,
    ) -> None:
        """``measurements``: what may stand for this step ("measured here", "extrapolated"); None: the
        store's (``stored_results``); ``()``: the model alone. ``busbw_gbs``: the all-reduce bus bandwidth the
        user measured within a node (``parallel.links``); None: the catalog link times its ring share."""
        assert precision is not Precision.AUTO, "resolve --precision auto per device first (gpuwise.predict.precision)"
        self.cpu_threads_per_gpu = cpu_threads_per_gpu  # None: the stated default of each GPU's class
        self.gpus_per_node = gpus_per_node  # GPUs in one host; None: parallel.GPUS_PER_NODE
        self.busbw_gbs = busbw_gbs
        # The batch sizes a reduced batch is rounded down to (the plan's global batch: divisors of a GPU's share).
        self.round_batch = round_batch
        self.bands = bands  # relative error by provenance kind
        self.settings = settings
        self.pipeline = Pipeline(name="torch.compile" if settings.compile else "eager PyTorch",
                                 compiled=settings.compile)
        self.workload, self.precision, self.optimizer = workload, precision, optimizer
        self.seq_len, self.image_size, self.network_gbits = seq_len, image_size, network_gbits
        self.catalog, self.profiles = catalog, profiles
        self.requested = workload.default_batch_size if batch_size is None else batch_size
        self.profiled: set[int] = set()
        first = self.profile(self.requested)
        self.eff: Efficiency = efficiency if efficiency is not None else shipped_efficiency()
        # A stored measurement stands for this step only if it ran with the same settings (bench: one
        # eager micro batch without recompute); FSDP's sharded step is never measured on one device.
        stored = stored_results(first.workload, store_path) if measurements is None else measurements
        self.measurements = [r for r in stored if self._same_setting(r, first)
                             and (r.activation_checkpointing, r.grad_accum, r.compiled, r.fp8) == (
                                 settings.activation_checkpointing.value, settings.grad_accum, settings.compile,
                                 settings.fp8)]
        self._model_steps: dict[tuple[int, str, int], GpuStep] = {}

    def profile(self, batch_size: int, *, on_gpu: bool = True, sharded: bool = False) -> Profile:
        """The GPU's profile; on the CPU, the CPU's own where they differ (the CPU runs attention,
        GRUs and dropout unfused, step by step: its time and memory are those of the unfused ops).
        ``sharded`` under AMP: FSDP2's mixed precision (bf16 parameters) instead of autocast."""
        self.profiled.add(batch_size)
        settings: dict[str, Any] = dict(batch_size=batch_size, precision=self.precision, optimizer=self.optimizer,
                                        seq_len=self.seq_len, image_size=self.image_size,
                                        activation_checkpointing=self.settings.activation_checkpointing.value,
                                        fp8=self.settings.fp8)
        if sharded and on_gpu and self.precision.autocast_dtype is not None:
            return self.profiles.get(self.workload, **settings, low_precision_params=True)
        p = self.profiles.get(self.workload, **settings)
        if on_gpu or not has_gpu_kernels(p):
            return p
        return self.profiles.get(self.workload, **settings, gpu_kernels=False)

    @staticmethod
    def _same_setting(r: BenchResult, p: Profile) -> bool:
        return (r.precision, r.optimizer, r.seq_len, r.image_size) == (p.precision, p.optimizer, p.seq_len,
                                                                       p.image_size)

    # -- memory

    def fit(self, capacity_bytes: int, *, num_gpus: int, on_gpu: bool) -> _Fit:
        """With ``--strategy auto``: the requested batch under DDP; else, if the state alone fits, the
        largest batch that does; else (or if even one sample does not fit) FSDP over ``num_gpus``, at
        the largest batch that fits. ``--strategy ddp`` never shards; ``fsdp`` always does on 2+ GPUs."""
        strategy = self.settings.strategy
        if strategy is Strategy.FSDP and on_gpu and num_gpus > 1:
            found = self._largest(capacity_bytes, num_gpus=num_gpus, on_gpu=on_gpu, sharded=True)
            return found if found.batch_size else _Fit(0, "FSDP", found.device_bytes)
        p = self.profile(self.requested, on_gpu=on_gpu)
        ddp = memory.device_bytes(p, on_gpu=on_gpu, num_gpus=num_gpus)
        if ddp <= capacity_bytes:
            return _Fit(self.requested, "DDP" if num_gpus > 1 else "single", ddp)
        state = memory.state_bytes(p)
        static = math.ceil(state * (1 + memory.ALLOCATOR_OVERHEAD)) + memory.CUDA_CONTEXT_BYTES if on_gpu else state
        attempts = [False] if static <= capacity_bytes else []
        if on_gpu and num_gpus > 1 and strategy is Strategy.AUTO:
            attempts.append(True)
        smallest = ddp
        for sharded in attempts:
            found = self._largest(capacity_bytes, num_gpus=num_gpus, on_gpu=on_gpu, sharded=sharded)
            if found.batch_size:
                return found
            smallest = min(smallest, found.device_bytes)
        return _Fit(0, "FSDP" if on_gpu and num_gpus > 1 else "DDP" if num_gpus > 1 else "single", smallest)

    def _largest(self, capacity_bytes: int, *, num_gpus: int, on_gpu: bool, sharded: bool) -> _Fit:
        strategy = "FSDP" if sharded else "DDP" if num_gpus > 1 else "single"

        def need(batch: int) -> int:
            return memory.device_bytes(self.profile(batch, on_gpu=on_gpu, sharded=sharded), on_gpu=on_gpu,
                                       num_gpus=num_gpus, sharded=sharded)

        top = self.requested
        if need(top) <= capacity_bytes:
            return _Fit(top, strategy, need(top))
        if top == 1:
            return _Fit(0, strategy, need(1))
        low = max(1, top // 2)
        line = memory.MemoryLine.through(low, need(low), top, need(top))
        batch = self.round_batch(line.largest_batch(capacity_bytes, upto=top - 1))
        while batch >= 1:  # confirm on a profile at that batch; step down if the line was optimistic
            if need(batch) <= capacity_bytes:
                return _Fit(batch, strategy, need(batch))
            batch = self.round_batch(batch - 1)
        return _Fit(0, strategy, math.ceil(line.at(1)))

    # -- time

    def gpu_model(self, p: Profile, gpu: GPU, num_gpus: int, sharded: bool) -> GpuStep:
        key = (p.batch_size, gpu.name, num_gpus if sharded else -num_gpus)
        if key not in self._model_steps:
            _, per_node = parallel.node_shape(num_gpus, self.gpus_per_node)
            make = fsdp_step if sharded else gpu_step
            self._model_steps[key] = make(p, gpu, self.eff, num_gpus=num_gpus, gpus_per_node=per_node,
                                          network_gbits=self.network_gbits, pipeline=self.pipeline,
                                          grad_accum=self.settings.grad_accum, busbw_gbs=self.busbw_gbs)
        return self._model_steps[key]

    def gpu_compute(self, p: Profile, gpu: GPU, model: StepTime, sharded: bool) -> tuple[float, str, str]:
        """One GPU's step: measured here, extrapolated from another GPU, or the model's; with provenance."""
        if not sharded:
            stored = [r for r in self.measurements if r.batch_size == p.batch_size and r.device != "cpu"]
            for r in stored:
                match = self.catalog.match_device(r.device_name)
                if match is not None and match.name == gpu.name:
                    return r.timing.median_s, "measured here", "measured"
            for r in stored:
                other = self.catalog.match_device(r.device_name)
                if other is None or not modellable(other):
                    continue
                ratio = model.step_s / self.gpu_model(p, other, 1, False).compute.step_s
                return r.timing.median_s * ratio, f"extrapolated from a measurement on {other.name}", "extrapolated"
        return model.step_s, "analytical", "analytical"

    def gpu_option(self, gpu: GPU, num_gpus: int) -> Option:
        if self.settings.fp8 and not has_fp8(gpu):
            raise GpuwiseError(f"--fp8: {gpu.name} has no FP8 tensor cores (the catalog gives it no FP8 rate; Ada, "
                               "Hopper and Blackwell GPUs have them): drop --fp8 or pick one of those")
        capacity = memory.gpu_capacity_bytes(gpu.memory_gb)
        nodes, _ = parallel.node_shape(num_gpus, self.gpus_per_node)
        label = f"{num_gpus}× {gpu.name}" + (f" ({nodes} nodes)" if nodes > 1 else "")
        found = self.fit(capacity, num_gpus=num_gpus, on_gpu=True)
        notes = tuple(n for n in (precision_note(gpu, self.precision), self.fp8_note()) if n)
        base: dict[str, Any] = dict(
            notes=notes, device=gpu.name, label=label, is_gpu=True, num_gpus=num_gpus,
            num_nodes=nodes,
            price_usd_per_hour=gpu.price_usd_per_hour, requested_batch_size=self.requested,
            batch_size=found.batch_size, strategy=found.strategy, capacity_bytes=capacity,
            memory_per_gpu_bytes=found.device_bytes, network=self.network_text(gpu) if nodes > 1 else "",
            ring=self.ring_text(gpu) if num_gpus > 1 else "",
            precision=self.precision,
        )
        if not found.batch_size:
            return _unfit(self.gpu_band("analytical", gpu), **base)
        sharded = found.strategy == "FSDP"
        p = self.profile(found.batch_size, sharded=sharded)
        model = self.gpu_model(p, gpu, num_gpus, sharded)
        compute_s, provenance, kind = self.gpu_compute(p, gpu, model.compute, sharded)
        link = model.via if num_gpus > 1 else None
        band = self.gpu_band(kind, gpu)
        # The wait for the slowest GPU grows with the one-GPU step, whichever way that step was found.
        sync_s = parallel.sync_wait_s(compute_s, self.eff.spread_for(p.family), num_gpus)
        step = _estimate(p, model.compute, compute_s, model.communication_s, link, num_gpus * model.grad_accum,
                         band, bound=replace(model, compute=replace(model.compute, step_s=compute_s)).bound,
                         sync_s=sync_s)
        step = self._fed(step, p, gpu, num_gpus)
        return Option(**base, fits=True, bound=step.bound, provenance=provenance, provenance_kind=kind,
                      band=band, step=step, run=None, settings=self.settings)

    def fp8_note(self) -> str | None:
        """What an FP8 prediction without torch.compile leaves out (``gpuwise.profile.float8``)."""
        if not self.settings.fp8 or self.settings.compile:
            return None
        return ("--fp8 without --compile: the FP8 casts are priced as torch.compile fuses them (two kernels each); "
                "eager torchao runs each as about ten, so the step is slower than predicted (add --compile)")

    def network_text(self, gpu: GPU) -> str:
        """The network between nodes this option is priced with, and its source."""
        if self.network_gbits:
            return f"{self.network_gbits:g} Gb/s per GPU (--network-gbits)"
        gbits, reason = default_network_gbits(gpu.architecture, gpu.nvlink_gbps, gpu.name,
                                              self.gpus_per_node or GPUS_PER_NODE)
        return f"{gbits:g} Gb/s per GPU: {reason}; --network-gbits overrides"

    def ring_text(self, gpu: GPU) -> str:
        """The bus bandwidth the ring within a node is priced at, and its source (the network does not enter it)."""
        return parallel.ring_text(parallel.links(gpu.nvlink_gbps, gpu.pcie_gen, 0.0, self.busbw_gbs))

    def _fed(self, step: StepEstimate, p: Profile, gpu: GPU, num_gpus: int) -> StepEstimate:
        """The step, slowed to what the CPU threads can decode and augment, when that binds."""
        threads = self.cpu_threads_per_gpu or default_cpu_threads(gpu)[0]
        ceiling = input_ceiling(p.family, p.sample_unit, threads, num_gpus)
        if ceiling is None:
            return step
        step = replace(step, input_ceiling_samples_per_s=ceiling)
        if step.samples_per_s <= ceiling:
            return step
        factor = step.samples_per_s / ceiling
        return replace(step, step_s=step.step_s * factor, step_low_s=step.step_low_s * factor,
                       step_high_s=step.step_high_s * factor, samples_per_s=ceiling,
                       tokens_per_s=step.tokens_per_s / factor if step.tokens_per_s else None, bound="input pipeline")

    def gpu_band(self, kind: str, gpu: GPU) -> float:
        """The relative error of a GPU prediction: an analytical one takes its generation's band where the
        bands give one per generation (``analytical:Ampere``), else ``analytical:unchecked``."""
        if kind != "analytical":
            return self.bands[kind]
        return self.bands.get(f"analytical:{gpu.generation}",
                              self.bands.get("analytical:unchecked", self.bands["analytical"]))

    def cpu_option(self, ceilings: Ceilings, ram_bytes: int) -> Option:
        capacity = memory.cpu_capacity_bytes(ram_bytes)
        found = self.fit(capacity, num_gpus=1, on_gpu=False)
        base: dict[str, Any] = dict(
            device="cpu", label=f"your CPU ({ceilings.device_name})", is_gpu=False, num_gpus=1, num_nodes=1,
            price_usd_per_hour=0.0, requested_batch_size=self.requested, batch_size=found.batch_size,
            strategy="single", capacity_bytes=capacity, memory_per_gpu_bytes=found.device_bytes,
            precision=self.precision,
        )
        if not found.batch_size:
            return _unfit(self.bands["analytical"], **base)
        p = self.profile(found.batch_size, on_gpu=False)
        model = cpu_step(p, ceilings, grad_accum=self.settings.grad_accum)
        measured = [r for r in self.measurements if r.batch_size == p.batch_size and r.device == "cpu"
                    and r.device_name == ceilings.device_name]
        compute_s, provenance, kind = (
            (measured[0].timing.median_s, "measured here", "measured") if measured
            else (model.step_s, "analytical (calibrated on this CPU)", "analytical")
        )
        band = self.bands["analytical-cpu" if kind == "analytical" else kind]  # the CPU model has its own error
        step = _estimate(p, model, compute_s, 0.0, None, self.settings.grad_accum, band, bound=model.bound)
        return Option(**base, fits=True, bound=step.bound, provenance=provenance, provenance_kind=kind,
                      band=band, step=step, run=None, settings=self.settings)


def _unfit(band: float, **fields: Any) -> Option:
    return Option(**fields, fits=False, bound="VRAM" if fields["is_gpu"] else "RAM", provenance="analytical",
                  provenance_kind="analytical", band=band, step=None, run=None)


def _estimate(
    p: Profile, model: StepTime, compute_s: float, communication_s: float, link: str | None, num_batches: int,
    band: float, *, bound: str, sync_s: float = 0.0,
) -> StepEstimate:
    """``num_batches``: batches of the profile's size per step, over all devices and micro batches."""
    step_s = compute_s + communication_s + sync_s
    samples_per_s = p.batch_size * num_batches / step_s
    return StepEstimate(
        step_s=step_s, step_low_s=step_s * (1 - band), step_high_s=step_s * (1 + band),
        compute_s=compute_s, model_compute_s=model.step_s, compute_bound_s=model.compute_bound_s,
        memory_bound_s=model.memory_bound_s, latency_s=model.latency_s, host_s=model.host_s,
        communication_s=communication_s, link=link, samples_per_s=samples_per_s,
        tokens_per_s=samples_per_s * p.tokens_per_sample if p.tokens_per_sample else None, bound=bound,
        sync_s=sync_s,
    )


def precision_note(gpu: GPU, precision: Precision) -> str | None:
    """What PyTorch does with ``precision`` on a GPU without the tensor cores for it, as predicted; None if it has
    them. TF32 is a flag PyTorch ignores where there is no TF32 (FP32 runs); BF16 autocast runs, but its
    products go to the CUDA cores (V100, T4: no BF16 tensor cores)."""
    rates = gpu_rates(gpu, datasheet=True)
    if precision is Precision.TF32 and not rates.runs_tf32(precision):
        return (f"{gpu.name} has no TF32 tensor cores: PyTorch runs --precision tf32 as fp32 there, and it is "
                "predicted as fp32")
    if precision in (Precision.AMP_BF16, Precision.AMP_FP16) and rates.peak_tflops(precision) is None:
        name = "BF16" if precision is Precision.AMP_BF16 else "FP16"
        has_fp16 = rates.peak_tflops(Precision.AMP_FP16) is not None
        other = " (amp-fp16 uses its FP16 tensor cores)" if name == "BF16" and has_fp16 else ""
        return (f"{gpu.name} has no {name} tensor cores: PyTorch runs --precision {precision.value}'s matrix "
                f"products without them, at about its FP32 rate, and it is predicted so{other}")
    return None


def has_fp8(gpu: GPU) -> bool:
    """Whether ``gpu`` runs FP8 products on tensor cores (its catalog entry gives an FP8 rate): torch._scaled_mm
    needs them (compute capability 8.9 and up on NVIDIA's GPUs)."""
    return bool(gpu.fp8_tflops)


def modellable(gpu: GPU) -> bool:
    """The roofline needs the FP32 rate and the bandwidth; an entry without them cannot be predicted."""
    return gpu.fp32_tflops is not None


def stored_results(workload: str, store_path: Path | None) -> list[BenchResult]:
    """What is stored, read only: predicting creates no database (there is nothing measured without one)."""
    from gpuwise.store import default_db_path, open_store

    if not (Path(store_path).expanduser() if store_path is not None else default_db_path()).exists():
        return []
    with open_store(store_path, read_only=True) as store:
        # One device's step: a multi-process `gpuwise train` measured something else (N processes).
        return [r for r in store.results(workload=workload) if r.num_devices == 1]
