"""What the report page shows, gathered into plain, JSON-able dataclasses (``ReportData``).

Everything here reshapes a finished ``Plan`` and what it carries (``Plan.basis``: the profile the
page draws and its time by op kind, the catalog entries, the CPU's ceilings, the efficiency
constants, this machine), besides the measurements: the results store and the shipped published
ones. Nothing is loaded, profiled, timed or detected again. The page (``gpuwise.report.html``)
only draws these numbers; the golden tests parse them back out of the page and compare them with
``plan(...)``.

Predicted vs measured shows, without profiling anything new:

- the published measurements (``gpuwise/data``) of this workload whose setting the plan
  predicted: the same GPU, GPU count, precision, batch per GPU and shape (the optimizer may
  differ and the point says so); predicted = the plan's throughput for that option;
- the plan's options measured here (a stored bench of the same setting): the roofline model's
  step against the measured median;
- stored ``gpuwise train`` runs of this workload with the prediction they stored
  (``gpuwise.validate.predict_result``, as ``gpuwise validate`` checks them).

The held-out error over every published row is ``gpuwise validate``'s (42 s; not rerun here).
"""

from __future__ import annotations

import platform
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gpuwise.config import Precision
from gpuwise.hardware.catalog import GPU
from gpuwise.plan import Option, Plan
from gpuwise.predict import memory
from gpuwise.predict.bands import BAND
from gpuwise.predict.option import modellable
from gpuwise.predict.own import OwnPlan
from gpuwise.predict.roofline import FP32, Efficiency
from gpuwise.predict.step import cpu_rates, gpu_rates
from gpuwise.profile.result import Profile
from gpuwise.records import Ceilings
from gpuwise.report import measured
from gpuwise.report.measured import ChecksData, SpeedupData
from gpuwise.units import HOUR_S

MAX_ROOFLINE_GPUS = 4  # without --gpus: the recommended GPU and the Pareto front's, at most this many
MEMORY_LABELS = {
    "weights": "weights", "gradients": "gradients", "optimizer_state": "optimizer state",
    "inputs": "inputs (the batch)", "activations": "activations saved for backward",
    "weight_copies": "autocast's weight copies", "temporaries": "temporaries",
}
GPU_OVERHEAD_LABEL = "CUDA context + allocator (GPU only)"


# ------------------------------------------------------------------ the data


@dataclass(frozen=True)
class OptionPoint:
    """One option of the plan, as the time-vs-cost chart and the table draw it."""

    label: str
    device: str
    is_gpu: bool
    num_gpus: int
    batch_size: int
    strategy: str
    fits: bool
    total_s: float | None
    total_low_s: float | None
    total_high_s: float | None
    cost_usd: float | None
    cost_low_usd: float | None
    cost_high_usd: float | None
    step_s: float | None
    throughput: float | None  # samples/s, or tokens/s when the data set counts tokens
    memory_per_gpu_bytes: int
    capacity_bytes: int
    bound: str
    provenance: str
    provenance_kind: str
    on_front: bool
    recommended: bool
    misses: tuple[str, ...]  # "deadline", "budget": constraints this option misses


@dataclass(frozen=True)
class RecommendationData:
    met: bool
    headline: str
    reason: str
    label: str | None
    band: float | None  # relative error of the recommended option's time (and cost)
    provenance: str | None
    also: tuple[str, ...]
    closest: tuple[str, ...]


@dataclass(frozen=True)
class Roof:
    """One device's ceilings as the prediction uses them: achievable rates, with where they come from."""

    device: str
    is_gpu: bool
    compute_tflops: float  # matrix products at the plan's precision
    bandwidth_gbps: float
    compute_source: str
    bandwidth_source: str

    @property
    def ridge_flops_per_byte(self) -> float:
        return self.compute_tflops * 1e3 / self.bandwidth_gbps

    def attainable_tflops(self, flops_per_byte: float) -> float:
        return min(self.compute_tflops, flops_per_byte * self.bandwidth_gbps / 1e3)

    def line(self, low: float, high: float) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """The roof from ``low`` to ``high`` FLOP/byte: the bandwidth slope, then the compute ceiling."""
        ridge = min(max(self.ridge_flops_per_byte, low), high)
        xs = (low, ridge, high)
        return xs, tuple(self.attainable_tflops(x) for x in xs)


@dataclass(frozen=True)
class KindPoint:
    """All ops of one kind, placed by arithmetic intensity."""

    kind: str
    num_ops: int
    flops: int  # matrix-product FLOPs + the approximate vector FLOPs of memory-bound ops
    bytes: int
    flops_per_byte: float
    attainable_tflops: float  # on the roofline's reference device
    bound: str  # on that device: "compute" or "memory bandwidth"
    time_share: float  # of that device's predicted device time


@dataclass(frozen=True)
class RooflineData:
    precision: str
    reference: str  # the device the op kinds are placed on
    roofs: tuple[Roof, ...]
    kinds: tuple[KindPoint, ...]
    x_range: tuple[float, float]  # FLOP/byte
    not_drawn: tuple[str, ...]  # op kinds without arithmetic (pure data movement) or without bytes


@dataclass(frozen=True)
class Capacity:
    name: str
    bytes: int
    # Does the requested batch fit one of them: a GPU against the GPU step's need (DDP adds the gradients'
    # buckets on 2+); the CPU by its own plan, whose step (CPU autocast lists, no CUDA context) is not the GPU's.
    fits: bool
    is_gpu: bool = True
    planned: str = ""  # what the plan does on this device, in words (the CPU's batch and memory)


@dataclass(frozen=True)
class MemoryData:
    batch_size: int
    parts: tuple[tuple[str, int], ...]  # (what, bytes) live at the step's peak; then the GPU overhead
    peak_bytes: int  # the profile's peak: sum of the parts without the GPU overhead
    gpu_bytes: int  # what one GPU must hold at this batch: peak + overhead
    peak_phase: str
    capacities: tuple[Capacity, ...]  # smallest first


@dataclass(frozen=True)
class Environment:
    made_at: str  # ISO 8601, UTC
    gpuwise: str
    torch: str
    python: str
    os: str
    cpu: str
    cpu_cores: int
    ram_bytes: int
    gpus_here: tuple[str, ...]
    command: str  # the command that makes this page


@dataclass(frozen=True)
class Provenance:
    bands: dict[str, float]
    efficiency_source: str
    cpu_ceilings: str
    catalog_files: tuple[str, ...]
    gpu_sources: dict[str, dict[str, str]]  # GPU -> field -> "value · source", for the fields the plan uses
    memory_source: str
    notes: tuple[str, ...]


@dataclass(frozen=True)
class ReportData:
    title: str
    setting: str  # the plan's setting in one line
    sample_unit: str
    throughput_unit: str  # "images/s", "tokens/s"
    deadline_s: float | None
    budget_usd: float | None
    recommendation: RecommendationData
    options: tuple[OptionPoint, ...]
    off_chart: tuple[str, ...]  # options the time-vs-cost chart cannot place, and why
    roofline: RooflineData
    memory: MemoryData
    speedups: SpeedupData
    checks: ChecksData
    environment: Environment
    provenance: Provenance
    own: OwnPlan | None = None  # rent or buy (--own)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["checks"]["rows"] = [dict(asdict(c), error=c.error) for c in self.checks.rows]
        return data


# ------------------------------------------------------------------ gathering


def gather(p: Plan, *, store_path: Path | None = None, now: datetime | None = None,
           own: OwnPlan | None = None) -> ReportData:
    """The page's data for plan ``p``, reshaped from the plan and what it carries (``p.basis``); ``store_path``:
    the results store whose measurements the page compares (``own``: the rent-or-buy comparison)."""
    c = p.config
    tokens = p.unit == "token"
    results = measured.stored(store_path)
    return ReportData(
        title=f"gpuwise report: {p.workload}",
        setting=_setting(p),
        sample_unit=p.sample_unit,
        throughput_unit="tokens/s" if tokens else f"{p.sample_unit}s/s",
        deadline_s=c.deadline_s,
        budget_usd=c.budget_usd,
        recommendation=_recommendation(p),
        options=tuple(_point(o, p, tokens=tokens) for o in p.options),
        off_chart=_off_chart(p),
        roofline=_roofline(p),
        memory=_memory(p, p.basis.profile),
        speedups=measured.speedups(results, store_path),
        checks=measured.checks(p, results),
        environment=_environment(p, now or datetime.now(UTC)),
        provenance=_provenance(p),
        own=own,
    )


def _setting(p: Plan) -> str:
    c = p.config
    size = (f"{c.dataset_size:,.0f} tokens = {p.samples_per_epoch:,.0f} sequences of {p.tokens_per_sample:,}"
            if p.unit == "token" else f"{c.dataset_size:,.0f} {p.sample_unit}s")
    recipe = f" ({p.global_batch_recipe} recipe)" if p.global_batch_recipe else ""  # a language model's default
    parts = [f"{p.workload} ({p.family})", f"{size} × {c.epochs:g} epoch{'' if c.epochs == 1 else 's'}",
             f"global batch {p.global_batch:,}{recipe}" if p.global_batch is not None
             else f"batch {p.requested_batch_size} per GPU"]
    if c.seq_len:
        parts.append(f"seq {c.seq_len}")
    if c.image_size:
        parts.append(f"{c.image_size}px")
    parts += [p.precision + (" (auto)" if p.precision_choice else ""), c.optimizer.value]
    if c.settings.describe():
        parts.append(c.settings.describe())
    return " · ".join(parts)


def _misses(o: Option, p: Plan) -> tuple[str, ...]:
    if o.run is None:
        return ()
    c = p.config
    out = []
    if c.deadline_s is not None and o.run.total_s > c.deadline_s:
        out.append("deadline")
    if c.budget_usd is not None and o.run.cost_usd is not None and o.run.cost_usd > c.budget_usd:
        out.append("budget")
    return tuple(out)


def _point(o: Option, p: Plan, *, tokens: bool) -> OptionPoint:
    run, step = o.run, o.step
    speed = None if step is None else (step.tokens_per_s if tokens and step.tokens_per_s else step.samples_per_s)
    return OptionPoint(
        label=o.label, device=o.device, is_gpu=o.is_gpu, num_gpus=o.num_gpus, batch_size=o.batch_size,
        strategy=o.strategy, fits=o.fits,
        total_s=run.total_s if run else None, total_low_s=run.total_low_s if run else None,
        total_high_s=run.total_high_s if run else None, cost_usd=run.cost_usd if run else None,
        cost_low_usd=run.cost_low_usd if run else None, cost_high_usd=run.cost_high_usd if run else None,
        step_s=step.step_s if step else None, throughput=speed,
        memory_per_gpu_bytes=o.memory_per_gpu_bytes, capacity_bytes=o.capacity_bytes, bound=o.bound,
        provenance=o.provenance, provenance_kind=o.provenance_kind,
        on_front=any(o is f for f in p.pareto), recommended=o is p.recommendation.option, misses=_misses(o, p),
    )


def _off_chart(p: Plan) -> tuple[str, ...]:
    unfit = [o.label for o in p.options if not o.fits]
    unpriced = sorted({o.device for o in p.options if o.fits and o.is_gpu and o.price_usd_per_hour is None})
    out = []
    if unfit:
        out.append(f"{len(unfit)} options do not fit even at batch 1 (see the memory chart)")
    if unpriced:
        out.append(f"no price in the catalog: {', '.join(unpriced)}")
    return tuple(out)


def _recommendation(p: Plan) -> RecommendationData:
    r = p.recommendation
    o = r.option
    return RecommendationData(
        met=r.met, headline=r.headline, reason=r.reason, label=o.label if o else None,
        band=o.band if o else None, provenance=o.provenance if o else None,
        also=tuple(f"fastest within the budget: {a.label}" for a in r.also),
        closest=tuple(f"{s.option.label} misses the {s.constraint}" for s in r.closest),
    )


# -- roofline


def _gpu_roof(gpu: GPU, precision: Precision, eff: Efficiency) -> Roof:
    """The roof the model prices this GPU's ops under: the achievable matmul rate and DRAM bandwidth
    (``gpu_rates``) times the fitted efficiencies, each with what it rests on."""
    rates, sheet = gpu_rates(gpu), gpu_rates(gpu, datasheet=True)
    achievable = rates.peak_tflops(precision) or rates.vector_tflops
    peak = sheet.peak_tflops(precision) or sheet.vector_tflops
    on_cuda_cores = precision is Precision.FP32 or (precision is Precision.TF32 and gpu.tf32_tflops is None)
    fraction, what = (eff.simt, "simt") if on_cuda_cores else (eff.matmul, "matmul")
    share = "" if on_cuda_cores or achievable == peak else f" × {achievable / peak:.2f} ({gpu.achievable_basis})"
    at = eff.at_generation(gpu.generation)  # what the step is priced at: the fitted fractions × its scale
    scale = eff.generation_scale.get(gpu.generation, 1.0)
    scaled = "" if scale == 1.0 else f" × {scale:.2f} ({gpu.generation}'s scale, {eff.generation_scale_source})"
    return Roof(
        device=gpu.name, is_gpu=True, compute_tflops=achievable * (at.simt if on_cuda_cores else at.matmul),
        bandwidth_gbps=rates.memory_gbps * at.bandwidth,
        compute_source=f"{peak:g} TFLOP/s dense peak (catalog){share} × {fraction:.2f} ('{what}' efficiency, "
                       f"{eff.source}){scaled}",
        bandwidth_source=f"{gpu.memory_bandwidth_gbps:g} GB/s ({gpu.sources.get('memory_bandwidth_gbps', 'catalog')})"
                         f" × {gpu.achievable_bandwidth_fraction:.2f} ({gpu.achievable_bandwidth_basis}) × "
                         f"{eff.bandwidth:.2f} ({eff.source}){scaled}",
    )


def _cpu_roof(ceilings: Ceilings, precision: Precision) -> Roof:
    rates = cpu_rates(ceilings)
    compute = rates.peak_tflops(precision) or rates.tensor_tflops[FP32]
    measured = f"measured on this CPU by gpuwise calibrate at {ceilings.measured_at}"
    return Roof(
        device=f"your CPU ({ceilings.device_name})", is_gpu=False, compute_tflops=compute,
        bandwidth_gbps=ceilings.memory_gbps, compute_source=f"dense GEMM, {measured}",
        bandwidth_source=f"copy (bytes read + written), {measured}",
    )


def _roofline_gpus(p: Plan) -> list[GPU]:
    """The GPUs asked for (``--gpus``), else the recommended one and the front's, at most ``MAX_ROOFLINE_GPUS``."""
    planned = {g.name: g for g in p.basis.gpus}
    if p.config.gpus is not None:
        names = list(planned)
    else:
        chosen = [p.recommendation.option] if p.recommendation.option else []
        names = list(dict.fromkeys(o.device for o in [*chosen, *p.pareto] if o.is_gpu))[:MAX_ROOFLINE_GPUS]
    return [planned[n] for n in names if modellable(planned[n])]


def _roofline(p: Plan) -> RooflineData:
    basis, profile = p.basis, p.basis.profile
    precision = p.precision  # with auto, the recommended option's
    gpus = _roofline_gpus(p)
    roofs = (*(_gpu_roof(g, precision, basis.efficiency) for g in gpus), _cpu_roof(basis.cpu_ceilings, precision))
    reference = roofs[0]
    by_kind_s = basis.kind_times[gpus[0].name if gpus else "cpu"]
    device_s = sum(by_kind_s.values()) or 1.0
    drawn = [k for k in profile.kinds if k.bytes > 0 and k.flops + k.vector_flops > 0]
    kinds = tuple(
        KindPoint(
            kind=k.kind, num_ops=k.num_ops, flops=k.flops + k.vector_flops, bytes=k.bytes,
            flops_per_byte=k.flops_per_byte, attainable_tflops=reference.attainable_tflops(k.flops_per_byte),
            bound="compute" if k.flops_per_byte >= reference.ridge_flops_per_byte else "memory bandwidth",
            time_share=by_kind_s.get(k.kind, 0.0) / device_s,
        )
        for k in drawn
    )
    xs = [k.flops_per_byte for k in kinds] + [r.ridge_flops_per_byte for r in roofs]
    low, high = min(xs) / 3, max(xs) * 3
    not_drawn = tuple(f"{k.kind} ({k.num_ops} ops): no arithmetic, only data movement"
                      for k in profile.kinds if k not in drawn)
    return RooflineData(precision=precision.value, reference=reference.device, roofs=roofs, kinds=kinds,
                        x_range=(low, high), not_drawn=not_drawn)


# -- memory


def _memory(p: Plan, profile: Profile) -> MemoryData:
    m = profile.memory
    parts = [(MEMORY_LABELS.get(k, k), v) for k, v in m.at_peak_bytes.items() if v > 0]
    gpu_bytes = memory.device_bytes(profile, on_gpu=True)
    parts.append((GPU_OVERHEAD_LABEL, gpu_bytes - m.peak_bytes))
    capacities: dict[str, Capacity] = {}
    for o in p.options:
        name = o.device if o.is_gpu else "your CPU: usable RAM"  # short on a phone; its model is in the hover
        if name in capacities:
            continue
        if o.is_gpu:
            capacities[name] = Capacity(name=name, bytes=o.capacity_bytes, fits=gpu_bytes <= o.capacity_bytes)
        else:
            capacities[name] = _cpu_capacity(name, o)
    return MemoryData(
        batch_size=profile.batch_size, parts=tuple(parts), peak_bytes=m.peak_bytes, gpu_bytes=gpu_bytes,
        peak_phase=m.peak_phase, capacities=tuple(sorted(capacities.values(), key=lambda c: (c.bytes, c.name))),
    )


def _cpu_capacity(name: str, o: Option) -> Capacity:
    """The CPU's RAM, coloured by the CPU's own plan: its step is profiled for the CPU, not the GPU's."""
    gib = o.memory_per_gpu_bytes / memory.GIB
    if not o.fits:
        planned = "the step does not fit even at batch 1"
    elif o.batch_reduced:
        planned = (f"the plan runs it at batch {o.batch_size}, the largest that fits "
                   f"(batch {o.requested_batch_size} does not): {gib:.1f} GiB")
    else:
        planned = f"the plan runs it at batch {o.batch_size}: {gib:.1f} GiB"
    return Capacity(name=name, bytes=o.capacity_bytes, fits=o.fits and not o.batch_reduced, is_gpu=False,
                    planned=f"{o.label}: {planned}")


# -- where and how the page was made


def equivalent_command(p: Plan) -> str:
    """The ``gpuwise report`` command that makes this page again (the plan's config, flag by flag)."""
    import shlex

    c = p.config
    args = ["gpuwise", "report", p.workload, "--dataset-size", _number(c.dataset_size), "--epochs", _number(c.epochs)]
    optional: list[tuple[str, object]] = [
        ("--unit", c.unit), ("--batch-size", c.batch_size), ("--seq-len", c.seq_len),
        ("--image-size", c.image_size), ("--deadline", f"{_number(c.deadline_s)}s" if c.deadline_s else None),
        ("--budget", _number(c.budget_usd) if c.budget_usd else None),
        ("--gpus", ",".join(c.gpus) if c.gpus else None), ("--catalog", c.catalog_path),
    ]
    if c.precision is not Precision.AUTO:
        optional.append(("--precision", c.precision.value))
    if c.global_batch is not None:
        optional.append(("--global-batch", c.global_batch))
    if c.optimizer.value != "adamw":
        optional.append(("--optimizer", c.optimizer.value))
    if c.max_gpus != type(c).max_gpus:
        optional.append(("--max-gpus", c.max_gpus))
    for flag, value in optional:
        if value is not None:
            args += [flag, str(value)]
    return shlex.join(args)


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def _environment(p: Plan, now: datetime) -> Environment:
    """The machine as the plan found it (``p.basis``), and the versions of the software that made the page."""
    import torch

    from gpuwise import __version__

    machine = p.basis
    return Environment(
        made_at=now.isoformat(timespec="seconds"), gpuwise=__version__, torch=torch.__version__,
        python=platform.python_version(), os=f"{platform.system()} {platform.release()}", cpu=machine.cpu_model,
        cpu_cores=machine.cpu_cores, ram_bytes=machine.ram_bytes, gpus_here=machine.gpus_here,
        command=equivalent_command(p),
    )


_PLAN_FIELDS = ("memory_gb", "memory_bandwidth_gbps", "fp32_tflops", "tf32_tflops", "bf16_tflops", "fp16_tflops",
                "nvlink_gbps", "pcie_gen", "price_usd_per_hour")


def _provenance(p: Plan) -> Provenance:
    planned = dict.fromkeys(o.device for o in p.options if o.is_gpu)
    sources = {
        g.name: {f: f"{getattr(g, f):g} · {g.sources.get(f, 'no source given')}"
                 for f in _PLAN_FIELDS if getattr(g, f) is not None}
        for g in p.basis.gpus if g.name in planned
    }
    ceilings = p.basis.cpu_ceilings
    rates = ", ".join(f"{k} {v:.3g} TFLOP/s" for k, v in ceilings.matmul_tflops.items())
    return Provenance(
        bands=dict(BAND), efficiency_source=p.efficiency_source,
        cpu_ceilings=f"{ceilings.device_name}: {rates}, copy {ceilings.memory_gbps:.3g} GB/s; measured by gpuwise "
                     f"calibrate at {ceilings.measured_at}",
        catalog_files=p.basis.catalog_files, gpu_sources=sources,
        memory_source=(f"analytical: the profile's live tensors on fake tensors (nothing allocated); on a GPU "
                       f"+ {memory.CUDA_CONTEXT_BYTES / memory.GIB:.1f} GiB CUDA context and "
                       f"{memory.ALLOCATOR_OVERHEAD:.0%} allocator overhead; a CPU run may use "
                       f"{memory.CPU_RAM_FRACTION:.0%} of RAM"),
        notes=p.notes,
    )


def hours(seconds: float) -> float:
    return seconds / HOUR_S
