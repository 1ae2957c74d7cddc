"""Plan a training run: the CPU and every catalog GPU × count, the time-vs-cost front, one recommendation.

For the local CPU and each chosen GPU × 1, 2, 4, 8 in a node and clusters of 2, 4, 8 nodes × 8
GPUs (up to ``max_gpus``), an ``Option`` (``gpuwise.predict.option``): whether the step fits, the
step time, what binds and where the number comes from. Every option trains the same global batch
(``--global-batch``, by default the workload's batch): each GPU takes its share, in micro batches
with gradient accumulation where the share does not fit; a GPU count the batch does not split over
is left out, and the notes say so. ``--batch-size`` keeps a batch per GPU instead (the global batch
then grows with the GPUs, else the largest batch that fits, or FSDP). ``--precision auto`` prices
each device at its own precision (``gpuwise.predict.precision``). Here each option gets its run —
steps per epoch = ceil(samples / global batch), epoch and total time, cost = total hours × GPUs ×
price per GPU-hour (your CPU costs nothing extra) — and an uncertainty band from ``BAND``; then the
time-vs-cost Pareto front and one recommendation (``recommend`` states the rules).

The step is profiled once per distinct batch size and precision (a profile takes seconds); every
option is then arithmetic, so the whole catalog plans in well under a second once profiled
(``benchmarks/plan_speed.py``). Nothing here prints: the CLI renders the ``Plan``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from gpuwise.bench.calibrate import cached_ceilings
from gpuwise.config import (
    Precision,
    RunSettings,
    StepConfig,
    WithStep,
    check_batch_size,
    check_count,
    check_positive,
)
from gpuwise.display import Displayed, jsonable
from gpuwise.errors import GpuwiseError
from gpuwise.hardware.catalog import GPU, Catalog, load_catalog
from gpuwise.predict import memory
from gpuwise.predict.bands import BAND as BAND  # BAND, bands_text, PredictConfig, predict: in gpuwise.predict,
from gpuwise.predict.bands import bands_text as bands_text  # importable from here, where they were first
from gpuwise.predict.option import GPUS_PER_NODE, Option, OptionMaker, RunEstimate, has_fp8, modellable, option_row
from gpuwise.predict.parallel import check_gpus_per_node
from gpuwise.predict.precision import cpu_precision as auto_cpu
from gpuwise.predict.precision import gpu_precision as auto_gpu
from gpuwise.predict.precision import resolve
from gpuwise.predict.roofline import Efficiency, step_time
from gpuwise.predict.single import PredictConfig as PredictConfig
from gpuwise.predict.single import predict as predict
from gpuwise.predict.step import ProfileCache, cpu_step, gpu_rates
from gpuwise.profile.result import Profile
from gpuwise.records import Ceilings
from gpuwise.units import HOUR_S, duration, duration_span, money
from gpuwise.workloads import Workload, get_workload

__all__ = [
    "BAND", "Option", "Plan", "PlanBasis", "PlanConfig", "PredictConfig", "ProfileCache", "Recommendation", "Shortfall",
    "bands_text", "pareto_front", "plan", "predict", "recommend",
]

NODE_GPU_COUNTS = (1, 2, 4, 8)  # GPUs in one node
CLUSTER_NODE_COUNTS = (2, 4, 8)  # nodes of GPUS_PER_NODE GPUs
DEFAULT_MAX_GPUS = 64
# Without --deadline, a CPU run this short counts as "no GPU needed" (a coffee break, not a rental).
CPU_ENOUGH_S = 1 * HOUR_S
# Without --deadline or --budget: the cheapest option that finishes within a day ("results
# tomorrow"); if none does, the fastest.
DEFAULT_DEADLINE_S = 24 * HOUR_S
# Costs (or times) within 2% count as equal: the predictions are not that precise. Among equal
# costs one node beats a cluster (simpler to rent and run), then the faster wins; among equal
# times the cheaper wins.
TIE = 0.02
UNITS = ("sample", "token")
# Sane bounds on what a plan is asked for, so that a slip (1e300) is one line, not an overflow or a 31-digit
# answer: 1e15 is some 60× the largest published training corpora (~15 trillion tokens, 2024), 1e4 epochs
# over a hundred times the longest ImageNet schedules; the whole run is bounded by the same 1e15 × 10.
MAX_DATASET_SIZE = 1e15
MAX_EPOCHS = 1e4
MAX_RUN_SIZE = 1e16


# ------------------------------------------------------------------ configs


@dataclass(frozen=True)
class PlanConfig(WithStep):
    """What to plan: a step of a workload, how much data, and the user's constraints. Defaults are defined here
    once. ``PlanConfig.of(workload=..., dataset_size=..., epochs=...)`` takes the step's fields flat; the step's
    precision defaults to auto (per device), its batch size is per GPU (see ``global_batch``)."""

    STEP_DEFAULTS: ClassVar[dict[str, Any]] = {"precision": Precision.AUTO}

    step: StepConfig
    dataset_size: float  # samples, or tokens when unit == "token"
    epochs: float
    unit: str | None = None  # "sample" | "token"; None: tokens for workloads counted in tokens, else samples
    # The batch: either a global batch kept across every option (split over the GPUs, with gradient
    # accumulation where a GPU's share does not fit), or a batch per GPU kept instead (the global batch
    # then grows with the GPUs). Neither: a language model's published recipe (``Workload.recipe_batch``), else
    # the workload's default batch (one GPU's).
    # step.batch_size: per GPU (with settings.grad_accum micro batches per step)
    global_batch: int | None = None  # samples per optimizer step over all GPUs
    deadline_s: float | None = None
    budget_usd: float | None = None
    gpus: tuple[str, ...] | None = None  # catalog names; None: every catalog GPU
    max_gpus: int = DEFAULT_MAX_GPUS
    network_gbits: float | None = None  # per GPU between nodes; None: the stated default of each GPU's class
    catalog_path: Path | None = None
    settings: RunSettings = field(default_factory=RunSettings)
    cpu_threads_per_gpu: int | None = None  # decoding images (gpuwise.predict.inputs); None: by GPU class
    gpus_per_node: int | None = None  # GPUs in one host, beyond which the ring crosses the network; None: 8

    def __post_init__(self) -> None:
        check_gpus_per_node(self.gpus_per_node)
        if self.cpu_threads_per_gpu is not None:
            check_count(self.cpu_threads_per_gpu, "--cpu-cores-per-gpu")
        check_positive(self.dataset_size, "--dataset-size", "samples (or tokens with --unit token)")
        check_positive(self.epochs, "--epochs", "passes over the data set")
        _check_at_most(self.dataset_size, MAX_DATASET_SIZE, "--dataset-size", "samples (or tokens)")
        _check_at_most(self.epochs, MAX_EPOCHS, "--epochs", "passes")
        _check_at_most(self.dataset_size * self.epochs, MAX_RUN_SIZE, "--dataset-size × --epochs",
                       "samples (or tokens) passed over")
        if self.unit is not None and self.unit not in UNITS:
            raise GpuwiseError(f"unknown unit '{self.unit}': use --unit {' | '.join(UNITS)}")
        if self.batch_size is not None:
            check_batch_size(self.batch_size)
        if self.global_batch is not None:
            check_count(self.global_batch, "--global-batch")
            if self.batch_size is not None or self.settings.grad_accum > 1:
                raise GpuwiseError("--global-batch splits itself into micro batches × accumulation × GPUs: give it "
                                   "without --batch-size and --grad-accum (or those without --global-batch)")
        if self.deadline_s is not None:
            check_positive(self.deadline_s, "--deadline", "a duration")
        if self.budget_usd is not None:
            check_positive(self.budget_usd, "--budget", "US dollars")
        if isinstance(self.max_gpus, bool) or not isinstance(self.max_gpus, int) or self.max_gpus < 1:
            raise GpuwiseError(f"--max-gpus must be a positive integer, got {self.max_gpus!r}")
        if self.network_gbits is not None:
            check_positive(self.network_gbits, "--network-gbps", "Gb/s per GPU")
        if self.gpus is not None and not self.gpus:
            raise GpuwiseError("--gpus names no GPU: give catalog names separated by commas, e.g. --gpus T4,L4")


def _check_at_most(value: float, limit: float, flag: str, what: str) -> None:
    if value > limit:
        raise GpuwiseError(f"{flag} is {value:g}, more than gpuwise plans for ({limit:g} {what}): check the number "
                           "(a typo, or another unit?)")


# ------------------------------------------------------------------ results


@dataclass(frozen=True)
class Shortfall:
    """How far an option misses a constraint: seconds past the deadline, dollars over the budget, bytes over."""

    option: Option
    constraint: str  # "deadline", "budget", "memory"
    miss: float  # seconds, US dollars, or bytes


@dataclass(frozen=True)
class Recommendation:
    """One option in plain words, with the rule that chose it; or, when nothing meets the constraints,
    the options that come closest and by how much they miss."""

    met: bool
    option: Option | None
    headline: str  # the plain-words answer
    reason: str  # the rule that chose it
    also: tuple[Option, ...] = ()  # with both a deadline and a budget: the fastest within the budget
    closest: tuple[Shortfall, ...] = ()  # when not met


@dataclass(frozen=True)
class PlanBasis:
    """What a plan was made from and worked out on the way, carried so that the report only reshapes the plan
    (as torchinfo's formatting only reads its ``ModelStatistics``): nothing is loaded, profiled, detected or
    timed again. Not part of ``Plan.to_dict()``."""

    workload: Workload  # resolved once: a user's file is not run again
    gpus: tuple[GPU, ...]  # the catalog entries planned, in the order asked, each once
    catalog_files: tuple[str, ...]  # where the catalog came from
    efficiency: Efficiency  # the GPU constants the options were priced with
    cpu_ceilings: Ceilings  # this CPU's, measured once and cached in the store
    ram_bytes: int  # this machine's, which the CPU option may use a share of
    cpu_model: str
    cpu_cores: int
    gpus_here: tuple[str, ...]  # the GPUs this machine has, as torch names them
    profiles: ProfileCache  # every profile the plan made
    # The step the page draws: the shown option's precision (the recommended one's, else the first GPU's) at its
    # batch per GPU (with a global batch, the recommended option's micro batch; else the batch asked for).
    profile: Profile
    # Seconds of that step by op kind (the roofline model, eager, one device) on this CPU ("cpu") and on each
    # modellable GPU the plan singles out (by catalog name): those asked for (--gpus), else the recommended one
    # and the front's.
    kind_times: Mapping[str, Mapping[str, float]]


@dataclass(frozen=True, repr=False)
class Plan(Displayed):
    """Every option, the time-vs-cost front and the recommendation; ``to_pandas`` has one row per option."""

    config: PlanConfig
    workload: str
    family: str
    sample_unit: str  # what a sample is (image, sequence, token, ...)
    unit: str  # what dataset_size counts: "sample" or "token"
    tokens_per_sample: int | None
    samples_per_epoch: float
    requested_batch_size: int  # per GPU on one GPU: the global batch, unless a batch per GPU was asked for
    options: tuple[Option, ...]
    pareto: tuple[Option, ...]  # fitting, priced options no other beats on both time and cost; fastest first
    recommendation: Recommendation
    profiled_batches: tuple[int, ...]
    efficiency_source: str
    notes: tuple[str, ...]
    basis: PlanBasis = field(compare=False, repr=False)  # what the plan used (the report reads it); not in to_dict
    global_batch: int | None = None  # kept across the options; None: the batch per GPU was kept instead
    global_batch_recipe: str = ""  # the published recipe the default global batch is ("" when asked or not one)
    precision: Precision = Precision.FP32  # the recommended option's (else the first GPU's): what the report draws
    precision_choice: str = ""  # what --precision auto chose on which devices, and why ("" when asked)

    def _summary(self) -> list[tuple[str, str]]:
        r = self.recommendation
        best = r.option
        parts = [("workload", repr(self.workload)), ("options", str(len(self.options))),
                 ("pareto", str(len(self.pareto))), ("recommended", repr(best.label if best else None))]
        if best is not None and best.run is not None:
            parts.append(("total", f"{best.run.total_s / HOUR_S:,.1f} h"))
            if best.run.cost_usd is not None:
                parts.append(("cost", money(best.run.cost_usd)))
        return parts

    def _rows(self) -> list[dict[str, Any]]:
        return [dict(option_row(o), pareto=o in self.pareto, recommended=o is self.recommendation.option)
                for o in self.options]

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready, units in the field names."""
        # What the plan used (``basis``) is not its result: left out.
        data = _jsonable({f.name: _plain(getattr(self, f.name)) for f in fields(self) if f.name != "basis"})
        assert isinstance(data, dict)
        step = data["config"].pop("step")  # its fields beside the plan's, flat; recompute is in config.settings
        data["config"] = {k: v for k, v in step.items() if k not in ("activation_checkpointing",
                                                                     "low_precision_params")} | data["config"]
        data["config"]["workload"] = self.workload  # a Workload object (the Python API) by its name
        for option, o in zip(data["options"], self.options, strict=True):
            option["global_batch_size"] = o.global_batch_size  # micro batch × accumulation × GPUs
        data["constants"] = {
            "band": BAND, "cuda_context_bytes": memory.CUDA_CONTEXT_BYTES,
            "allocator_overhead": memory.ALLOCATOR_OVERHEAD, "cpu_ram_fraction": memory.CPU_RAM_FRACTION,
            "cpu_enough_s": CPU_ENOUGH_S, "default_deadline_s": DEFAULT_DEADLINE_S, "tie": TIE,
        }
        return data


def _plain(value: Any) -> Any:
    """A field's value as ``asdict`` gives it: dataclasses (alone or in a sequence) as dicts."""
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return asdict(value) if is_dataclass(value) and not isinstance(value, type) else value


def option_dict(option: Option) -> dict[str, Any]:
    return option.to_dict()


_jsonable = jsonable


def _with_run(option: Option, samples_per_epoch: float, epochs: float) -> Option:
    if option.step is None:
        return option
    step_s, band = option.step.step_s, option.band
    steps_per_epoch = math.ceil(samples_per_epoch / option.global_batch_size)
    total_steps = math.ceil(epochs * steps_per_epoch)
    total_s = total_steps * step_s
    price = option.price_usd_per_hour

    def cost(seconds: float) -> float | None:
        return None if price is None else seconds / HOUR_S * option.num_gpus * price

    run = RunEstimate(
        steps_per_epoch=steps_per_epoch, total_steps=total_steps, epoch_s=steps_per_epoch * step_s,
        total_s=total_s, total_low_s=total_s * (1 - band), total_high_s=total_s * (1 + band),
        cost_usd=cost(total_s), cost_low_usd=cost(total_s * (1 - band)), cost_high_usd=cost(total_s * (1 + band)),
    )
    return replace(option, run=run)


def _gpu_counts(max_gpus: int, gpus_per_node: int | None = None) -> list[int]:
    """The GPU counts planned: within one node, then whole nodes (2, 4, 8 of them, and the counts of nodes of 8
    that whole nodes of this size make)."""
    size = gpus_per_node or GPUS_PER_NODE
    within = sorted({n for n in NODE_GPU_COUNTS if n <= size} | {size})
    nodes = {k * size for k in CLUSTER_NODE_COUNTS} | {
        k * GPUS_PER_NODE for k in CLUSTER_NODE_COUNTS if k * GPUS_PER_NODE % size == 0}
    return [n for n in [*within, *sorted(nodes)] if n <= max_gpus]


def _ram_bytes() -> int:
    from gpuwise.hardware.local import ram_bytes

    return ram_bytes()


def _gpus_here() -> tuple[str, ...]:
    from gpuwise.hardware.local import available_devices, device_name

    return tuple(device_name(d) for d in available_devices() if d != "cpu")


# ------------------------------------------------------------------ plan


def plan(
    config: PlanConfig, catalog: Catalog | None = None, store_path: Path | None = None, *,
    profiles: ProfileCache | None = None,
) -> Plan:
    """Every option for ``config``, the time-vs-cost front and one recommendation.

    ``catalog`` defaults to ``load_catalog(config.catalog_path)``; ``store_path`` is the results
    database (stored benches make options "measured here" or "extrapolated"; the CPU's
    ceilings are measured once and cached there). ``profiles``: a cache to reuse across plans (the
    tests, the speed benchmark); the plan carries the one it filled (``Plan.basis``).
    """
    catalog = catalog if catalog is not None else load_catalog(config.catalog_path)
    chosen = [catalog.get(name) for name in config.gpus] if config.gpus is not None else catalog.all()
    gpus = list({g.name: g for g in chosen}.values())  # a GPU named twice is planned once
    workload = get_workload(config.workload)
    per_gpu = config.batch_size is not None or config.settings.grad_accum > 1
    makers = _Makers(workload, config, catalog, store_path, profiles if profiles is not None else ProfileCache(),
                     global_mode=not per_gpu)
    global_batch = None if per_gpu else config.global_batch or workload.default_global_batch(config.seq_len)
    defaulted = global_batch is not None and config.global_batch is None
    recipe = workload.recipe_batch.recipe if defaulted and workload.recipe_batch is not None else ""
    requested = (config.batch_size or workload.default_batch_size) if global_batch is None else global_batch

    ceilings = cached_ceilings("cpu", store_path)
    cpu_precision, cpu_reason = resolve(config.precision, auto_cpu(ceilings))
    fp8 = config.settings.fp8  # FP8 layers run on GPUs with FP8 tensor cores only: no CPU option
    first_precision = resolve(config.precision, (Precision.AMP_BF16, ""))[0] if fp8 else cpu_precision
    first = makers.get(first_precision, requested, config.settings.grad_accum).profile(requested)
    unit = config.unit or ("token" if first.sample_unit == "token" else "sample")
    if unit == "token" and not first.tokens_per_sample:
        raise GpuwiseError(
            f"--unit token: workload '{first.workload}' counts {first.sample_unit}s, not tokens; "
            "give --dataset-size in samples (--unit sample)"
        )
    samples = config.dataset_size / (first.tokens_per_sample or 1) if unit == "token" else config.dataset_size

    def option(precision: Precision, num_gpus: int, make: Callable[[OptionMaker], Option]) -> Option | None:
        if global_batch is None:
            return make(makers.get(precision, requested, config.settings.grad_accum))
        return _global_option(makers, precision, num_gpus, global_batch, make)

    notes: list[str] = []
    ram = _ram_bytes()
    options: list[Option | None] = []
    if not fp8:
        options.append(option(cpu_precision, 1, lambda m: m.cpu_option(ceilings, ram)))
        options[0] = replace(options[0], precision_reason=cpu_reason) if options[0] is not None else None
    skipped: set[int] = set()
    no_fp8 = [g.name for g in gpus if fp8 and modellable(g) and not has_fp8(g)]
    if fp8 and not any(modellable(g) and has_fp8(g) for g in gpus):
        raise GpuwiseError(f"--fp8: no GPU planned has FP8 tensor cores ({', '.join(g.name for g in gpus)}): drop "
                           "--fp8, or plan GPUs that have them (Ada, Hopper, Blackwell: --gpus H100-SXM5-80GB,L40S)")
    if fp8:
        notes.append("--fp8: not planned on the CPU (no FP8 units)" + (
            f" nor on GPUs without FP8 tensor cores: {', '.join(no_fp8)}" if no_fp8 else ""))
    for gpu in gpus:
        if not modellable(gpu):
            notes.append(f"{gpu.name} is not planned: the catalog gives no FP32 rate for it")
            continue
        if gpu.name in no_fp8:
            continue
        precision, reason = resolve(config.precision, auto_gpu(gpu))
        for n in _gpu_counts(config.max_gpus, config.gpus_per_node):
            o = option(precision, n, partial(OptionMaker.gpu_option, gpu=gpu, num_gpus=n))
            if o is None:
                skipped.add(n)
            options.append(replace(o, precision_reason=reason) if o is not None else None)
    planned = [_with_run(o, samples, config.epochs) for o in options if o is not None]
    if skipped:
        counts = ", ".join(str(n) for n in sorted(skipped))
        notes.append(f"not planned on {counts} GPUs: a global batch of {global_batch} does not split evenly over "
                     "them (--global-batch N for another)")
    notes += list(dict.fromkeys(note for o in planned for note in o.notes))  # each GPU's once, not per count
    networks = dict.fromkeys(o.network for o in planned if o.network and o.fits)
    notes += [f"between nodes: {text}" for text in networks]
    unpriced = sorted({o.device for o in planned if o.is_gpu and o.price_usd_per_hour is None})
    if unpriced:
        notes.append(f"no price in the catalog, so never recommended: {', '.join(unpriced)}")
    front = pareto_front(planned)
    recommendation = recommend(planned, deadline_s=config.deadline_s, budget_usd=config.budget_usd)
    shown = recommendation.option or next((o for o in planned if o.is_gpu), planned[0])
    # The step the report draws: with a global batch, the micro batch the recommended option runs per GPU (the
    # whole global batch on one GPU is a step no option takes); per GPU, the batch asked for.
    rec = recommendation.option
    drawn = rec.batch_size if global_batch is not None and rec is not None and rec.batch_size else requested
    singled_out = gpus if config.gpus is not None else [
        g for g in gpus if any(o.device == g.name for o in (rec, *front) if o is not None)]
    basis = _basis(makers, gpus, singled_out, catalog, ceilings, ram, Precision(shown.precision), drawn)
    return Plan(
        config=config, workload=first.workload, family=first.family, sample_unit=first.sample_unit, unit=unit,
        tokens_per_sample=first.tokens_per_sample, samples_per_epoch=samples, requested_batch_size=requested,
        options=tuple(planned), pareto=front, recommendation=recommendation,
        profiled_batches=makers.profiled_batches(), efficiency_source=makers.efficiency().source,
        notes=tuple(notes), basis=basis, global_batch=global_batch, global_batch_recipe=recipe,
        precision=shown.precision,
        precision_choice=precision_choice(planned) if config.precision is Precision.AUTO else "",
    )


class _Makers:
    """One ``OptionMaker`` per (precision, batch per GPU, micro batches per step), sharing the profiles."""

    def __init__(self, workload: Workload, config: PlanConfig, catalog: Catalog, store_path: Path | None,
                 profiles: ProfileCache, *, global_mode: bool) -> None:
        self.workload, self.config, self.catalog, self.global_mode = workload, config, catalog, global_mode
        self.store_path, self.profiles = store_path, profiles
        self._makers: dict[tuple[Precision, int, int], OptionMaker] = {}

    def get(self, precision: Precision, batch_size: int, grad_accum: int) -> OptionMaker:
        key = (precision, batch_size, grad_accum)
        if key not in self._makers:
            c = self.config
            self._makers[key] = OptionMaker(
                self.workload, batch_size=batch_size, precision=precision, optimizer=c.optimizer,
                seq_len=c.seq_len, image_size=c.image_size, network_gbits=c.network_gbits, catalog=self.catalog,
                store_path=self.store_path, bands=BAND, profiles=self.profiles,
                settings=replace(c.settings, grad_accum=grad_accum), cpu_threads_per_gpu=c.cpu_threads_per_gpu,
                gpus_per_node=c.gpus_per_node,
                round_batch=partial(largest_divisor, batch_size) if self.global_mode else memory.round_batch,
            )
        return self._makers[key]

    def profiled_batches(self) -> tuple[int, ...]:
        return tuple(sorted({b for m in self._makers.values() for b in m.profiled}))

    def efficiency(self) -> Efficiency:
        return next(iter(self._makers.values())).eff


def _basis(makers: _Makers, gpus: Sequence[GPU], singled_out: Sequence[GPU], catalog: Catalog, ceilings: Ceilings,
           ram: int, precision: Precision, batch_size: int) -> PlanBasis:
    """What the plan used, and the step it shows at ``precision`` and ``batch_size`` timed by op kind on the CPU and
    the ``singled_out`` GPUs (arithmetic on a profile the plan already made)."""
    from gpuwise.hardware.local import cpu_model, physical_cores

    c = makers.config
    eff = makers.efficiency()
    shown = makers.profiles.get(makers.workload, batch_size=batch_size, precision=precision, optimizer=c.optimizer,
                                seq_len=c.seq_len, image_size=c.image_size,
                                activation_checkpointing=c.settings.activation_checkpointing.value)
    kind_times: dict[str, Mapping[str, float]] = {
        g.name: step_time(shown, gpu_rates(g), eff).by_kind_s for g in singled_out if modellable(g)}
    kind_times["cpu"] = cpu_step(shown, ceilings).by_kind_s
    return PlanBasis(
        workload=makers.workload, gpus=tuple(gpus), catalog_files=catalog.files, efficiency=eff,
        cpu_ceilings=ceilings, ram_bytes=ram, cpu_model=cpu_model(), cpu_cores=physical_cores(), gpus_here=_gpus_here(),
        profiles=makers.profiles, profile=shown, kind_times=kind_times,
    )


def _global_option(makers: _Makers, precision: Precision, num_gpus: int, global_batch: int,
                   make: Callable[[OptionMaker], Option]) -> Option | None:
    """``num_gpus`` devices sharing ``global_batch``: each its share in one micro batch where that fits, else in
    micro batches of the largest divisor of the share that fits, accumulated; None if the batch does not split
    evenly over the devices."""
    if global_batch % num_gpus:
        return None
    share = global_batch // num_gpus
    whole = make(makers.get(precision, share, 1))
    if not whole.batch_reduced:
        return whole  # fits in one micro batch, or nothing fits at all
    micro = largest_divisor(share, whole.batch_size)
    return make(makers.get(precision, micro, share // micro))


def largest_divisor(share: int, at_most: int) -> int:
    """The largest micro batch that divides a GPU's ``share`` of the global batch and is at most ``at_most``
    (0 below 1): the share is then whole micro batches, accumulated."""
    return max((d for d in range(1, min(share, at_most) + 1) if share % d == 0), default=0)


def precision_choice(options: Sequence[Option]) -> str:
    """What --precision auto chose, as a person reads it: 'amp-fp16 on V100-SXM2-16GB, T4 (FP16 tensor cores,
    no BF16); amp-bf16 on the other 20 GPUs (BF16 tensor cores); fp32 on your CPU (...)'. The largest group of
    GPUs is counted, not listed, when it is longer than four."""
    chosen: dict[tuple[Precision, str], list[str]] = {}
    for o in options:
        names = chosen.setdefault((o.precision, o.precision_reason), [])
        name = o.device if o.is_gpu else "your CPU"
        if name not in names:
            names.append(name)
    gpu_groups = [k for k, names in chosen.items() if "your CPU" not in names]
    largest = max(gpu_groups, key=lambda k: len(chosen[k]), default=None)
    parts = []
    for key, names in chosen.items():
        counted = key == largest and len(names) > 4  # a long list is counted, not listed
        where = (", ".join(names) if not counted else
                 f"the other {len(names)} GPUs" if len(gpu_groups) > 1 else f"all {len(names)} GPUs")
        parts.append(f"{key[0]} on {where} ({key[1]})")
    return "; ".join(parts)


# ------------------------------------------------------------------ front and recommendation


def pareto_front(options: Sequence[Option]) -> tuple[Option, ...]:
    """Fitting options with a cost that no other option beats on both total time and cost; fastest first."""
    priced = [o for o in options if o.run is not None and o.run.cost_usd is not None]
    priced.sort(key=lambda o: (_total(o), _cost(o)))
    front: list[Option] = []
    for o in priced:
        if not front or _cost(o) < _cost(front[-1]):
            front.append(o)
    return tuple(front)


def _total(o: Option) -> float:
    assert o.run is not None
    return o.run.total_s


def _cost(o: Option) -> float:
    assert o.run is not None and o.run.cost_usd is not None
    return o.run.cost_usd


def _cheapest(options: Sequence[Option]) -> Option:
    """The cheapest; among costs within ``TIE`` of it, one node over a cluster, then the fastest."""
    lowest = min(_cost(o) for o in options)
    return min((o for o in options if _cost(o) <= lowest * (1 + TIE)), key=lambda o: (o.num_nodes, _total(o)))


def _fastest(options: Sequence[Option]) -> Option:
    """The fastest; among times within ``TIE`` of it, the cheapest."""
    lowest = min(_total(o) for o in options)
    return min((o for o in options if _total(o) <= lowest * (1 + TIE)), key=_cost)


def recommend(options: Sequence[Option], *, deadline_s: float | None = None,
              budget_usd: float | None = None) -> Recommendation:
    """The rules, in order:

    1. Your CPU, if it fits and finishes within the deadline (without one: within ``CPU_ENOUGH_S``):
       it costs nothing extra, so it is the cheapest.
    2. Deadline and budget: the cheapest option that meets both (the fastest within the budget
       is given as ``also``). Deadline only: the cheapest that meets it. Budget only: the
       fastest within it. Neither: the cheapest GPU option that finishes within
       ``DEFAULT_DEADLINE_S``, else the fastest.
    3. Nothing meets them: not an error; the options that come closest and by how much they miss.

    Only options that fit and have a price are recommended; see ``TIE`` for near-equal costs and times.
    """
    priced = [o for o in options if o.run is not None and o.run.cost_usd is not None]
    if not priced:
        return _nothing_fits(options)
    cpu = next((o for o in priced if not o.is_gpu), None)
    cpu_limit = deadline_s if deadline_s is not None else CPU_ENOUGH_S
    if cpu is not None and _total(cpu) <= cpu_limit:
        rule = (f"it meets your {duration(deadline_s)} deadline and costs nothing extra" if deadline_s is not None
                else f"without a --deadline, a CPU run of at most {duration(CPU_ENOUGH_S)} needs no GPU")
        return Recommendation(True, cpu, f"No GPU needed: this finishes on your CPU in {_span(cpu)}.", rule)

    meeting = [o for o in priced if (deadline_s is None or _total(o) <= deadline_s)
               and (budget_usd is None or _cost(o) <= budget_usd)]
    if deadline_s is not None and meeting:
        best = _cheapest(meeting)
        also: tuple[Option, ...] = ()
        rule = f"the cheapest option that meets the {duration(deadline_s)} deadline"
        if budget_usd is not None:
            rule += f" within the {money(budget_usd)} budget"
            fastest = _fastest([o for o in priced if _cost(o) <= budget_usd])
            also = (fastest,) if fastest is not best else ()
        return Recommendation(True, best, _headline(best), rule + _caveat(best, deadline_s), also=also)
    if budget_usd is not None and deadline_s is None and meeting:
        best = _fastest(meeting)
        return Recommendation(True, best, _headline(best), f"the fastest option within the {money(budget_usd)} budget")
    if deadline_s is not None or budget_usd is not None:
        return _unmet(priced, deadline_s, budget_usd)

    gpus = [o for o in priced if o.is_gpu]
    if not gpus:
        assert cpu is not None
        return Recommendation(True, cpu, f"Use your CPU: {_span(cpu)}.",
                              "no GPU option that fits has a price in the catalog")
    in_a_day = [o for o in gpus if _total(o) <= DEFAULT_DEADLINE_S]
    if in_a_day:
        best = _cheapest(in_a_day)
        return Recommendation(True, best, _headline(best), "without --deadline or --budget: the cheapest "
                              f"option that finishes within {duration(DEFAULT_DEADLINE_S)}")
    best = _fastest(priced)  # every option, the CPU too: it may beat a GPU the catalog makes absurdly slow
    return Recommendation(True, best, _headline(best) if best.is_gpu else f"Use your CPU: {_span(best)}.",
                          "without --deadline or --budget: nothing finishes within "
                          f"{duration(DEFAULT_DEADLINE_S)}, so the fastest option")


def _unmet(priced: list[Option], deadline_s: float | None, budget_usd: float | None) -> Recommendation:
    """Within the budget, the fastest (it misses the deadline by ...); within the deadline, the cheapest
    (over the budget by ...). Where nothing is within one, the option nearest to it instead."""
    wanted = " and ".join(
        ([f"the {duration(deadline_s)} deadline"] if deadline_s is not None else [])
        + ([f"the {money(budget_usd)} budget"] if budget_usd is not None else [])
    )
    candidates: list[Option] = []
    if deadline_s is not None:
        in_budget = [o for o in priced if budget_usd is None or _cost(o) <= budget_usd]
        candidates.append(_fastest(in_budget) if in_budget else _cheapest(priced))
    if budget_usd is not None:
        in_time = [o for o in priced if deadline_s is None or _total(o) <= deadline_s]
        candidates.append(_cheapest(in_time) if in_time else _fastest(priced))
    closest: list[Shortfall] = []
    for o in dict.fromkeys(candidates):  # in order, without repeats
        if deadline_s is not None and _total(o) > deadline_s:
            closest.append(Shortfall(o, "deadline", _total(o) - deadline_s))
        if budget_usd is not None and _cost(o) > budget_usd:
            closest.append(Shortfall(o, "budget", _cost(o) - budget_usd))
    parts = [_miss_text(o, deadline_s, budget_usd) for o in dict.fromkeys(candidates)]
    return Recommendation(False, None, f"Nothing meets {wanted}. Closest: {'; '.join(parts)}.",
                          "no option meets every constraint; these miss by the least", closest=tuple(closest))


def _miss_text(o: Option, deadline_s: float | None, budget_usd: float | None) -> str:
    misses = []
    if deadline_s is not None and _total(o) > deadline_s:
        misses.append(f"{duration(_total(o) - deadline_s)} past the deadline")
    if budget_usd is not None and _cost(o) > budget_usd:
        misses.append(f"{money(_cost(o) - budget_usd)} over the budget")
    return f"{o.label} takes {duration(_total(o))} for {money(_cost(o))} ({', '.join(misses)})"


def _nothing_fits(options: Sequence[Option]) -> Recommendation:
    short = sorted((o for o in options if not o.fits),
                   key=lambda o: (o.memory_per_gpu_bytes - o.capacity_bytes) / o.capacity_bytes)
    closest = tuple(Shortfall(o, "memory", o.memory_per_gpu_bytes - o.capacity_bytes) for o in short[:2])
    parts = [f"{s.option.label} needs {s.option.memory_per_gpu_bytes / memory.GIB:.1f} GiB per "
             f"{'GPU' if s.option.is_gpu else 'machine'} of {s.option.capacity_bytes / memory.GIB:.1f} GiB"
             for s in closest]
    fitting_unpriced = any(o.fits for o in options)
    headline = ("Nothing with a price fits" if fitting_unpriced else "Nothing fits, even at batch 1") + (
        f". Closest: {'; '.join(parts)}." if parts else ".")
    reason = ("only GPUs without a catalog price fit; add prices in your catalog file (--catalog PATH)"
              if fitting_unpriced else "the step does not fit any device's memory; try a smaller --seq-len or "
              "--image-size, amp-bf16, or more GPUs (--max-gpus)")
    return Recommendation(False, None, headline, reason, closest=closest)


def _span(o: Option) -> str:
    assert o.run is not None
    return duration_span(o.run.total_s, o.run.total_low_s, o.run.total_high_s)


def _headline(o: Option) -> str:
    assert o.run is not None and o.run.cost_usd is not None
    run = o.run
    cost, cost_low, cost_high = run.cost_usd or 0.0, run.cost_low_usd or 0.0, run.cost_high_usd or 0.0
    how = []
    if o.strategy == "FSDP":
        how.append("sharded with FSDP")
    if o.batch_reduced:
        how.append(f"batch {o.batch_size} per GPU ({o.requested_batch_size} does not fit)")
    if o.settings.grad_accum > 1:
        how.append(f"{o.settings.grad_accum} micro batches of {o.batch_size} per GPU per step")
    extra = f", {', '.join(how)}" if how else ""
    return (f"Use {o.label}{extra}: {_span(o)} for {money(cost)} ({money(cost_low)}–{money(cost_high)}); "
            f"prediction: {o.provenance}.")


def _caveat(o: Option, deadline_s: float) -> str:
    assert o.run is not None
    if o.run.total_high_s > deadline_s:
        return f"; at the slow end of its band ({duration(o.run.total_high_s)}) it would miss the deadline"
    return ""



from gpuwise.entry import make_callable  # noqa: E402  (gpuwise.plan(...) is the Python API: see gpuwise.entry)

make_callable(__name__)
