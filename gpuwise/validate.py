"""How good are the predictions? Predicted against measured throughput.

Published rows (the shipped file, and any file of the same columns the user gives) are
predicted by constants fitted *without* that row's GPU generation (fit on Volta, predict
Ampere, and the reverse): the error reported is held-out error.
Local measurements (every ``gpuwise bench`` and ``gpuwise train`` result in the results store)
are predicted as ``plan`` would predict them on that device: the calibrated CPU model for the
CPU this runs on, the catalog model with the shipped constants for a catalog GPU.
Cross-GPU: from a measurement on one GPU, the model predicts the same step on the
other, and so do three naive baselines (peak FLOP/s ratio alone, bandwidth ratio alone, and the
blend peak^0.3 × bandwidth^0.7), on the same pairs, overall and by the generation predicted.

Frozen (``validate_frozen``): the rows of the user's files predicted by the shipped constants,
fitting nothing; how a user checks the shipped model on their own cluster, and how the project
is scored on data it never saw. The held-out validation adds the other shipped files (``other_files``:
MLPerf's runs, the GeForce and Titan cards), each row predicted by the constants fitted without its
generation (the shipped kernel constants for a generation the kernel fit reads no row of: Turing, Ada, Hopper,
Blackwell; every other generation's scale, ``fit.fit_generation_scale``, fitted on all the files without it),
and sums every generation up on all of them (``every_generation``).

The published rows are predicted for the pipeline they ran (``fit.row_pipeline``: NVIDIA's
fused optimizers but for GNMT and SQuAD's FP32/TF32 runs, channels-last convnets under AMP, and what a
row's notes say it ran: FP8 layers, fused elementwise kernels, a 16-bit model, a distributed optimizer
with its gradient sync after backward), not for
eager PyTorch, which is what ``predict`` and ``plan`` assume.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gpuwise.config import Precision, Strategy
from gpuwise.errors import GpuwiseError
from gpuwise.hardware.catalog import Catalog, load_catalog
from gpuwise.predict.fit import generation, held_out, predict_llm_run, predict_row, row_profile, shipped_efficiency
from gpuwise.predict.published import (
    LlmRun,
    MappedRow,
    PublishedRow,
    as_run,
    is_llm_run,
    load_published,
    map_llm_run,
    map_row,
)
from gpuwise.predict.roofline import Efficiency
from gpuwise.predict.step import ProfileCache, gpu_rates
from gpuwise.workloads import get_workload

if TYPE_CHECKING:
    from gpuwise.records import BenchResult, Ceilings
    from gpuwise.workloads import Workload


# The blend baseline: throughput scaled by peak^0.3 × bandwidth^0.7, the naive guess that most steps
# are mostly memory-bound. Issue 12 names it; it is a baseline, never fitted.
BLEND_PEAK_EXPONENT = 0.3
MODEL = "model"
PEAK = "peak FLOP/s ratio"
BANDWIDTH = "bandwidth ratio"
BLEND = "blend peak^0.3 × bandwidth^0.7"
METHODS = (MODEL, PEAK, BANDWIDTH, BLEND)  # cross-GPU methods, each on the same pairs
# The other shipped measurements, each from another pipeline than the rows the kernel constants are fitted on
# (gpuwise/data/README.md): only each generation's scale is fitted on them (``fit.fit_generation_scale``);
# held-out validation predicts them file by file, each row by the constants fitted without its generation
# (``other_files``). Their label names the source.
SHIPPED_FROZEN = (("published_mlperf_training.csv", "MLPerf Training"),
                  ("published_other_training.csv", "GeForce and Titan cards"))


@dataclass(frozen=True)
class RowCheck:
    row: PublishedRow
    workload: str
    predicted: float
    fitted_without: str | None  # the generation held out of the constants; None: the shipped constants
    generation: str = ""  # the row's GPU generation (the catalog's architecture family)

    @property
    def error(self) -> float:
        """Signed relative error: (predicted - measured) / measured."""
        return self.predicted / self.row.throughput - 1


@dataclass(frozen=True)
class PairCheck:
    """Predicting GPU B from a measurement on GPU A, for the same workload and settings."""

    workload: str
    settings: str
    from_gpu: str
    to_gpu: str
    measured: float  # on B
    model: float  # measured on A × model(B) / model(A), model fitted without B's generation (or shipped)
    by_peak_flops: float  # measured on A × peak(B) / peak(A)
    by_bandwidth: float  # measured on A × bandwidth(B) / bandwidth(A)
    by_blend: float = float("nan")  # measured on A × (peak(B) / peak(A))^0.3 × (bandwidth(B) / bandwidth(A))^0.7
    generation: str = ""  # B's generation: the one the pair predicts

    def predictions(self) -> dict[str, float]:
        """Each method's prediction of the throughput on B, by ``METHODS`` name."""
        return {MODEL: self.model, PEAK: self.by_peak_flops, BANDWIDTH: self.by_bandwidth, BLEND: self.by_blend}

    def errors(self) -> dict[str, float]:
        """Each method's signed relative error on B: predicted / measured - 1."""
        return {name: value / self.measured - 1 for name, value in self.predictions().items()}


@dataclass(frozen=True)
class LocalCheck:
    """One stored measurement (``gpuwise bench`` or ``train``) against the model's step on that device."""

    result: BenchResult
    device: str  # "your CPU (...)" or the catalog GPU it matched
    predicted_step_s: float
    provenance: str = "analytical"  # where the prediction comes from, as plan says it

    @property
    def error(self) -> float:
        """Signed relative error on throughput, as for published rows: measured step / predicted step - 1."""
        return self.result.timing.median_s / self.predicted_step_s - 1


@dataclass(frozen=True)
class ErrorStats:
    count: int
    median: float  # of |error|
    p90: float


@dataclass(frozen=True)
class Validation:
    rows: tuple[RowCheck, ...]
    skipped: tuple[tuple[PublishedRow, str], ...]
    pairs: tuple[PairCheck, ...]
    by_gpu: dict[str, ErrorStats]
    by_workload: dict[str, ErrorStats]
    by_family: dict[str, ErrorStats]  # the zoo workload's family: image classification, object detection, ...
    by_gpu_count: dict[str, ErrorStats]  # "1 GPU", "several GPUs": data-parallel scaling is a separate error
    overall: ErrorStats
    cross_gpu: dict[str, ErrorStats]  # by ``METHODS`` name, all on the same pairs
    fits: dict[str, Efficiency]  # by held-out generation; {"shipped": ...} when frozen
    files: tuple[str, ...] = ()  # the user's published files, besides the shipped one
    store: str | None = None  # the results store read, None if not read
    local: tuple[LocalCheck, ...] = ()
    local_skipped: tuple[tuple[BenchResult, str], ...] = ()
    by_device: dict[str, ErrorStats] = field(default_factory=dict)  # local checks by device
    by_generation: dict[str, ErrorStats] = field(default_factory=dict)  # absolute error by the row's generation
    # generation predicted (B's) -> method -> stats, every method on that generation's pairs
    cross_gpu_by_generation: dict[str, dict[str, ErrorStats]] = field(default_factory=dict)
    frozen: bool = False  # the shipped constants, nothing fitted
    include_shipped: bool = True  # the shipped rows were predicted too
    other_files: tuple[OtherFile, ...] = ()  # held-out mode: the other shipped files, by generation
    # held-out mode: every generation over all the rows above (``ALL``: all of them), absolute and cross-GPU
    every_generation: dict[str, GenerationCheck] = field(default_factory=dict)


@dataclass(frozen=True)
class OtherFile:
    """One GPU generation's rows in one of the other shipped files (``SHIPPED_FROZEN``), predicted by the
    constants fitted without that generation (``fit.held_out``)."""

    generation: str
    source: str  # the file's label (``SHIPPED_FROZEN``)
    file: str  # its path, for ``validate --frozen --published FILE --rows``
    absolute: ErrorStats
    cross_gpu: dict[str, ErrorStats]  # pairs predicting this generation, by ``METHODS`` name; empty if none
    fitted_without: str | None = None  # the generation held out of the constants
    errors: tuple[float, ...] = ()  # each row's signed error, for ``every_generation``
    cross_errors: dict[str, tuple[float, ...]] = field(default_factory=dict)  # each pair's, by method


@dataclass(frozen=True)
class GenerationCheck:
    """A generation's rows and the pairs predicting it, across every shipped file, each held out."""

    absolute: ErrorStats
    cross_gpu: dict[str, ErrorStats]  # by ``METHODS`` name, on the same pairs
    sources: tuple[str, ...]  # the files its rows come from


ALL = "all generations"
DLE_SOURCE = "NVIDIA DeepLearningExamples"


def stats(errors: list[float]) -> ErrorStats:
    magnitudes = sorted(abs(e) for e in errors)
    if not magnitudes:
        return ErrorStats(0, float("nan"), float("nan"))
    p90 = magnitudes[min(len(magnitudes) - 1, max(0, round(0.9 * len(magnitudes)) - 1))]
    return ErrorStats(len(magnitudes), statistics.median(magnitudes), p90)


def _peak(catalog: Catalog, gpu: str, precision: Precision) -> float:
    rates = gpu_rates(catalog.get(gpu), datasheet=True)
    return rates.peak_tflops(precision) or rates.vector_tflops  # no such tensor cores: PyTorch runs FP32


def validate(
    catalog: Catalog | None = None, *, published: Sequence[Path] = (), store_path: Path | None = None,
    local: bool = True, shipped_frozen: bool = True,
) -> Validation:
    """Held-out error on the shipped published rows and those of ``published`` files (fitted on all
    of them, each generation without itself), and, with ``local``, on the results store's measurements.
    With ``shipped_frozen``, the other shipped files too, each row by the constants fitted without its
    generation (``other_files``), and every generation summed up over all of them (``every_generation``)."""
    catalog = catalog or load_catalog()
    profiles = ProfileCache()
    mapped, skipped = mapped_rows(load_published() + [r for path in published for r in load_published(path)],
                                  catalog, profiles)

    def group(m: MappedRow) -> str:
        return generation(m, catalog)

    others = other_shipped_rows(catalog, profiles) if shipped_frozen else []
    fits = held_out(mapped, catalog, profiles, [m for *_, rows in others for m in rows])
    checks = tuple(
        RowCheck(m.row, m.workload, predict_row(m, catalog, fits[group(m)], profiles), group(m), group(m))
        for m in mapped
    )
    # Pairs across generations only: the model is fitted without B's generation, and a pair within
    # one generation would compare two GPUs the held-out fit treats alike.
    pairs = _pairs(mapped, catalog, lambda b: fits[group(b)], profiles, group,
                   lambda a, b: group(a) != group(b))
    found = other_files(catalog, fits, others, profiles)
    return Validation(
        rows=checks, skipped=tuple(skipped), pairs=pairs, fits=fits, files=tuple(str(p) for p in published),
        other_files=found, every_generation=every_generation(checks, pairs, found) if shipped_frozen else {},
        **_summary(checks, pairs), **(local_checks(catalog, store_path) if local else {}),
    )


def other_shipped_rows(catalog: Catalog, profiles: ProfileCache) -> list[tuple[str, Path, list[MappedRow]]]:
    """The rows of each file of ``SHIPPED_FROZEN`` that gpuwise can predict, with the file's label and path."""
    found = []
    for name, source in SHIPPED_FROZEN:
        path = Path(str(resources.files("gpuwise.data").joinpath(name)))
        found.append((source, path, mapped_rows(load_published(path), catalog, profiles)[0]))
    return found


def other_files(catalog: Catalog, fits: dict[str, Efficiency], files: Sequence[tuple[str, Path, list[MappedRow]]],
                profiles: ProfileCache) -> tuple[OtherFile, ...]:
    """Each generation's rows in each of ``files`` (``other_shipped_rows``), and the cross-GPU pairs predicting it
    among that file's rows (pipelines differ between files), by the constants fitted without the generation
    (``fits``)."""

    def group(m: MappedRow) -> str:
        return generation(m, catalog)

    def efficiency(m: MappedRow) -> Efficiency:
        return fits[group(m)]

    found = []
    for source, path, mapped in files:
        usable = [m for m in mapped if not m.row.suspect]
        checks = [RowCheck(m.row, m.workload, predict_row(m, catalog, efficiency(m), profiles), group(m), group(m))
                  for m in usable]
        pairs = _pairs(usable, catalog, efficiency, profiles, group, lambda a, b: a.row.gpu != b.row.gpu)
        absolute, cross = _by_generation(checks, pairs)
        for gen, errors in absolute.items():
            by_method = {name: tuple(cross[gen][name]) for name in METHODS} if gen in cross else {}
            found.append(OtherFile(gen, source, str(path), stats(errors),
                                   {name: stats(list(e)) for name, e in by_method.items()},
                                   gen, tuple(errors), by_method))
    rank = {g: i for i, g in enumerate(_oldest_first({n.generation for n in found}))}
    return tuple(sorted(found, key=lambda n: (rank[n.generation], n.source)))


def every_generation(checks: Sequence[RowCheck], pairs: Sequence[PairCheck], others: Sequence[OtherFile]
                     ) -> dict[str, GenerationCheck]:
    """Each generation's held-out rows and the pairs predicting it over the fitted rows (``checks``, ``pairs``:
    SUSPECT rows left out) and the other shipped files, oldest generation first, then ``ALL``: every method on
    the same pairs."""
    absolute, cross = _by_generation(checks, pairs)
    sources: dict[str, list[str]] = defaultdict(list, {g: [DLE_SOURCE] for g in absolute})
    for o in others:
        absolute[o.generation] += o.errors
        sources[o.generation].append(o.source)
        for name, errors in o.cross_errors.items():
            cross[o.generation][name] += errors
    gens = _oldest_first(absolute)

    def check(rows: list[float], by_method: dict[str, list[float]], files: list[str]) -> GenerationCheck:
        return GenerationCheck(stats(rows), {name: stats(by_method.get(name, [])) for name in METHODS},
                               tuple(files))

    found = {g: check(absolute[g], cross[g], sources[g]) for g in gens}
    found[ALL] = check([e for g in gens for e in absolute[g]],
                       {name: [e for g in gens for e in cross[g].get(name, [])] for name in METHODS},
                       list(dict.fromkeys(s for g in gens for s in sources[g])))
    return found


# Generations oldest first, as tables list them.
GENERATION_ORDER = ("Volta", "Turing", "Ampere", "Ada", "Hopper", "Blackwell")


def _oldest_first(generations: Iterable[str]) -> list[str]:
    """``generations`` in ``GENERATION_ORDER``, any other after them by name."""
    order = {g: i for i, g in enumerate(GENERATION_ORDER)}
    return sorted(generations, key=lambda g: (order.get(g, len(order)), g))


def _by_generation(checks: Sequence[RowCheck], pairs: Sequence[PairCheck]
                   ) -> tuple[defaultdict[str, list[float]], defaultdict[str, defaultdict[str, list[float]]]]:
    """The signed errors of ``checks`` (SUSPECT rows left out) by the row's generation, and of ``pairs`` by the
    generation predicted and method: what the per-generation tables summarise."""
    absolute: defaultdict[str, list[float]] = defaultdict(list)
    cross: defaultdict[str, defaultdict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for c in checks:
        if not c.row.suspect:
            absolute[c.generation].append(c.error)
    for pair in pairs:
        for name, error in pair.errors().items():
            cross[pair.generation][name].append(error)
    return absolute, cross


def validate_frozen(
    catalog: Catalog | None = None, *, published: Sequence[Path] = (), include_shipped: bool = False,
    store_path: Path | None = None, local: bool = False, profiles: ProfileCache | None = None,
) -> Validation:
    """Every row of the ``published`` files (and the shipped rows if ``include_shipped``) predicted by
    the shipped constants, fitting nothing; pairs among those rows on two different GPUs.

    ``profiles`` lets a caller that validates several files share the traced steps."""
    catalog = catalog or load_catalog()
    profiles = profiles if profiles is not None else ProfileCache()
    rows = (load_published() if include_shipped else []) + [r for path in published for r in load_published(path)]
    if not rows:
        given = ", ".join(str(p) for p in published)
        raise GpuwiseError(
            f"validate --frozen has no rows to predict{f' ({given} has none)' if given else ''}: give "
            "--published FILE with your measurements (the shipped file's columns), or --include-shipped"
        )
    mapped, skipped = mapped_rows(rows, catalog, profiles)
    eff = shipped_efficiency()

    def group(m: MappedRow) -> str:
        return generation(m, catalog)

    checks = tuple(RowCheck(m.row, m.workload, predict_row(m, catalog, eff, profiles), None, group(m))
                   for m in mapped)
    llm_checks, skipped = _llm_runs(skipped, catalog, eff, profiles)
    # Nothing is held out, so two GPUs of one generation (H100 PCIe and SXM) make a pair too.
    pairs = _pairs(mapped, catalog, lambda b: eff, profiles, group, lambda a, b: a.row.gpu != b.row.gpu)
    checks += llm_checks
    return Validation(
        rows=checks, skipped=tuple(skipped), pairs=pairs, fits={"shipped": eff},
        files=tuple(str(p) for p in published), frozen=True, include_shipped=include_shipped,
        **_summary(checks, pairs), **(local_checks(catalog, store_path) if local else {}),
    )


def _llm_runs(skipped: Sequence[tuple[PublishedRow, str]], catalog: Catalog, eff: Efficiency,
              profiles: ProfileCache) -> tuple[tuple[RowCheck, ...], list[tuple[PublishedRow, str]]]:
    """The skipped rows that ran FSDP, activation checkpointing or FP8 layers, predicted as LLM runs are
    (``map_llm_run``, then ``gpuwise predict``'s own path with the run's strategy, recompute, compile and FP8
    layers: what ``benchmarks/llm_runs.py`` checks the shipped runs with); the rest stay skipped, with the reason."""
    checks: list[RowCheck] = []
    still: list[tuple[PublishedRow, str]] = []
    for row, why in skipped:
        run: LlmRun | str = why
        if is_llm_run(row, why):
            run = map_llm_run(row)
            if row.unit.strip() != "tokens/s":
                run = f"an LLM run's throughput is in tokens/s, not {row.unit}"
            elif not catalog.has(row.gpu):
                run = f"GPU {row.gpu} is not in the catalog (add it with --catalog)"
        if isinstance(run, str):
            still.append((row, run))
            continue
        try:
            option = predict_llm_run(run, eff, profiles, catalog)
        except GpuwiseError as e:
            still.append((row, f"cannot predict it: {e}"))
            continue
        if not option.fits or option.batch_reduced or option.step is None or not option.step.tokens_per_s:
            still.append((row, f"predicted not to fit at batch {row.batch_per_gpu} per GPU on {row.gpu}"))
            continue
        checks.append(RowCheck(row, run.workload, option.step.tokens_per_s, None, catalog.get(row.gpu).generation))
    return tuple(checks), still


def _summary(checks: Sequence[RowCheck], pairs: Sequence[PairCheck]) -> dict[str, Any]:
    """The statistics of ``Validation`` (its field names): rows marked SUSPECT are listed, never counted."""
    by: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for c in checks:
        if c.row.suspect:
            continue
        by["by_gpu"][c.row.gpu].append(c.error)
        by["by_workload"][c.workload].append(c.error)
        by["by_family"][get_workload(c.workload).family].append(c.error)
        by["by_gpu_count"]["1 GPU" if c.row.num_gpus == 1 else "several GPUs"].append(c.error)
    by["by_generation"], cross_by_generation = _by_generation(checks, pairs)
    return {
        **{name: {k: stats(v) for k, v in sorted(by[name].items())}
           for name in ("by_gpu", "by_workload", "by_family", "by_gpu_count", "by_generation")},
        "overall": stats([c.error for c in checks if not c.row.suspect]),
        "cross_gpu": {name: stats([pair.errors()[name] for pair in pairs]) for name in METHODS},
        "cross_gpu_by_generation": {
            g: {name: stats(errors[name]) for name in METHODS} for g, errors in sorted(cross_by_generation.items())
        },
    }


def mapped_rows(
    rows: Sequence[PublishedRow], catalog: Catalog, profiles: ProfileCache | None = None
) -> tuple[list[MappedRow], list[tuple[PublishedRow, str]]]:
    """The rows gpuwise can predict (a zoo workload, a precision it models, a catalog GPU: by its
    catalog name, as torch and nvidia-smi name it, or as tables write it: ``Catalog.match_written``),
    and the others with the reason. With ``profiles``, a row whose step cannot be traced (``seq len``
    on a vision model) is skipped too."""
    mapped: list[MappedRow] = []
    skipped: list[tuple[PublishedRow, str]] = []
    for r in rows:
        found = catalog.match_written(r.gpu)
        gpu = found if not isinstance(found, list) else None
        if gpu is not None and gpu.name != r.gpu:
            r = replace(r, gpu=gpu.name)
        m = map_row(r)
        if isinstance(m, str):
            skipped.append((r, m))
        elif isinstance(found, list) and found:
            names = ", ".join(g.name for g in found)
            skipped.append((r, f"GPU {r.gpu} could be any of {names}: write the catalog name in the gpu column"))
        elif gpu is None:
            skipped.append((r, f"GPU {r.gpu} is not in the catalog (add it with --catalog)"))
        elif gpu.fp32_tflops is None:  # the roofline's floor (``option.modellable``)
            skipped.append((r, f"GPU {gpu.name} has no compute figures in the catalog (add them with --catalog)"))
        else:
            m = as_run(m, has_tf32=bool(gpu.tf32_tflops))
            why = _untraceable(m, profiles)
            if why is None:
                mapped.append(m)
            else:
                skipped.append((r, why))
    return mapped, skipped


def _untraceable(m: MappedRow, profiles: ProfileCache | None) -> str | None:
    if profiles is None:
        return None
    try:
        row_profile(m, profiles)
    except GpuwiseError as e:
        return f"cannot profile it: {e}"
    return None


def blend(measured_a: float, peak_ratio: float, bandwidth_ratio: float) -> float:
    """The blend baseline: a throughput on A scaled by (peak B / peak A)^0.3 × (bandwidth B / bandwidth A)^0.7."""
    scale: float = peak_ratio**BLEND_PEAK_EXPONENT * bandwidth_ratio ** (1 - BLEND_PEAK_EXPONENT)
    return measured_a * scale


def _pairs(
    mapped: list[MappedRow], catalog: Catalog, efficiency: Callable[[MappedRow], Efficiency], profiles: ProfileCache,
    generation: Callable[[MappedRow], str], paired: Callable[[MappedRow, MappedRow], bool],
) -> tuple[PairCheck, ...]:
    """Same workload, batch, GPU count and precision class (full: FP32/TF32, or AMP) on two GPUs that
    ``paired`` accepts; the model predicts B with ``efficiency(B)``."""
    def key(m: MappedRow) -> tuple[object, ...]:
        full = m.precision in (Precision.FP32, Precision.TF32)
        return (m.workload, m.seq_len, m.batch_size, m.row.num_gpus, full)

    groups: dict[tuple[object, ...], list[MappedRow]] = defaultdict(list)
    for m in mapped:
        if not m.row.suspect:
            groups[key(m)].append(m)
    pairs = []
    for members in groups.values():
        for a in members:
            for b in members:
                if a is b or not paired(a, b):
                    continue
                eff = efficiency(b)
                ratio = predict_row(b, catalog, eff, profiles) / predict_row(a, catalog, eff, profiles)
                ga, gb = catalog.get(a.row.gpu), catalog.get(b.row.gpu)
                peak_ratio = _peak(catalog, b.row.gpu, b.precision) / _peak(catalog, a.row.gpu, a.precision)
                bandwidth_ratio = gb.memory_bandwidth_gbps / ga.memory_bandwidth_gbps
                pairs.append(PairCheck(
                    workload=a.workload,
                    settings=f"batch {a.batch_size}, {a.row.num_gpus} GPU, {a.precision}->{b.precision}",
                    from_gpu=a.row.gpu, to_gpu=b.row.gpu, measured=b.row.throughput,
                    model=a.row.throughput * ratio,
                    by_peak_flops=a.row.throughput * peak_ratio,
                    by_bandwidth=a.row.throughput * bandwidth_ratio,
                    by_blend=blend(a.row.throughput, peak_ratio, bandwidth_ratio),
                    generation=generation(b),
                ))
    return tuple(pairs)


def local_checks(catalog: Catalog, store_path: Path | None) -> dict[str, Any]:
    """Every stored measurement against the model's step on its device (``Validation`` fields)."""
    from gpuwise.bench.calibrate import with_cache
    from gpuwise.hardware.local import machine_key
    from gpuwise.store import open_store

    with open_store(store_path) as store:
        results = store.results()
        cpu = store.get_ceilings("cpu", machine_key())
        path = str(store.path)
    cpu = None if cpu is None else with_cache(cpu)
    checks: list[LocalCheck] = []
    skipped: list[tuple[BenchResult, str]] = []
    profiles = ProfileCache()
    for r in results:
        try:
            check = predict_result(r, catalog, cpu, profiles)
        except GpuwiseError as e:
            check = f"cannot profile it: {e}"
        if isinstance(check, str):
            skipped.append((r, check))
        else:
            checks.append(check)
    by_device: dict[str, list[float]] = defaultdict(list)
    for c in checks:
        by_device[c.device].append(c.error)
    return {
        "store": path, "local": tuple(checks), "local_skipped": tuple(skipped),
        "by_device": {k: stats(v) for k, v in sorted(by_device.items())},
    }


def predict_result(
    r: BenchResult, catalog: Catalog, cpu: Ceilings | None, profiles: ProfileCache, *, workload: Workload | None = None,
    measurements: Sequence[BenchResult] = (), strategy: Strategy = Strategy.DDP,
) -> LocalCheck | str:
    """One measurement (``gpuwise bench`` or ``train``) against the step ``plan`` predicts for its device, its
    device count and its settings, or why there is none: the one predicted-vs-measured of ``gpuwise validate``,
    of ``gpuwise train`` (which stores the prediction with its result) and so of the report, which shows it.

    The option is made as plan makes it (``OptionMaker``): the calibrated CPU model for ``cpu`` (this machine's
    ceilings), the catalog GPU's model with the shipped constants; ``strategy`` as the run sharded (a stored
    result does not say: DDP). ``measurements`` may stand for the step ("measured here", "extrapolated"); none:
    the model alone. A bench step reads no data, so only a train run's is slowed to the input pipeline.
    ``workload``: ``r.workload`` resolved (train has it); else it is looked up by name.
    """
    from gpuwise.config import ActivationCheckpointing, OptimizerName, Precision, RunSettings
    from gpuwise.predict.bands import BAND
    from gpuwise.predict.option import OptionMaker, modellable

    on_cpu = r.device.split(":")[0] == "cpu"
    n = r.num_devices
    gpu = None if on_cpu else catalog.match_device(r.device_name)
    if on_cpu and n > 1:
        return f"plan does not model {n} CPU processes"
    if on_cpu and (cpu is None or cpu.device_name != r.device_name):
        return (f"measured on {r.device_name}: this store has no calibration of that CPU on this machine "
                "(gpuwise calibrate there)")
    if not on_cpu and (gpu is None or not modellable(gpu)):
        return f"GPU {r.device_name} is not a catalog GPU with compute figures (add it with --catalog)"
    maker = OptionMaker(
        workload if workload is not None else get_workload(r.workload), batch_size=r.batch_size,
        precision=Precision.parse(r.precision), optimizer=OptimizerName.parse(r.optimizer), seq_len=r.seq_len,
        image_size=r.image_size, network_gbits=None, catalog=catalog, store_path=None, profiles=profiles, bands=BAND,
        settings=RunSettings(strategy=strategy, grad_accum=r.grad_accum, compile=r.compiled, fp8=r.fp8,
                             activation_checkpointing=ActivationCheckpointing.parse(r.activation_checkpointing)),
        measurements=measurements,
    )
    if gpu is None:
        from gpuwise.hardware.local import ram_bytes

        assert cpu is not None
        option, device = maker.cpu_option(cpu, ram_bytes()), f"your CPU ({cpu.device_name})"
    else:
        option, device = maker.gpu_option(gpu, n), gpu.name if n == 1 else f"{n}× {gpu.name}"
    step = option.step
    if step is None or option.batch_size != r.batch_size:
        return f"plan predicts batch {r.batch_size} does not fit {option.label}"
    fed = r.origin == "train"
    return LocalCheck(r, device, step.step_s if fed else step.compute_s + step.communication_s + step.sync_s,
                      option.provenance)
