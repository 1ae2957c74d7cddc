"""How good are the predictions? Predicted against measured throughput.

Published rows (the shipped file, and any file of the same columns the user gives) are
predicted by constants fitted *without* that row's GPU generation (fit on Volta, predict
Ampere, and the reverse): the error reported is held-out error.
Local measurements (every ``gpuwise bench`` and ``gpuwise train`` result in the results store)
are predicted as ``plan`` would predict them on that device: the calibrated CPU model for the
CPU this runs on, the catalog model with the shipped constants for a catalog GPU.
Cross-GPU: from a measurement on one GPU, the model predicts the same step on the
other, and so do two naive baselines (peak FLOP/s ratio alone, bandwidth ratio alone).

The published rows are predicted for the pipeline they ran (``fit.row_pipeline``: NVIDIA's
fused optimizers but for GNMT, channels-last convnets under AMP), not for eager PyTorch, which
is what ``predict`` and ``plan`` assume.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gpuwise.errors import GpuwiseError
from gpuwise.hardware.catalog import Catalog, load_catalog
from gpuwise.predict.fit import Profiles, generation, held_out, predict_row
from gpuwise.predict.published import MappedRow, PublishedRow, load_published, map_row
from gpuwise.predict.roofline import Efficiency
from gpuwise.workloads import get_workload

if TYPE_CHECKING:
    from gpuwise.bench.result import BenchResult, Ceilings
    from gpuwise.profile import Profile


@dataclass(frozen=True)
class RowCheck:
    row: PublishedRow
    workload: str
    predicted: float
    fitted_without: str

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
    model: float  # measured on A × model(B) / model(A), model fitted without B's generation
    by_peak_flops: float  # measured on A × peak(B) / peak(A)
    by_bandwidth: float  # measured on A × bandwidth(B) / bandwidth(A)


@dataclass(frozen=True)
class LocalCheck:
    """One stored measurement (``gpuwise bench`` or ``train``) against the model's step on that device."""

    result: BenchResult
    device: str  # "your CPU (...)" or the catalog GPU it matched
    predicted_step_s: float

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
    cross_gpu: dict[str, ErrorStats]  # "model", "peak FLOP/s ratio", "bandwidth ratio"
    fits: dict[str, Efficiency]
    files: tuple[str, ...] = ()  # the user's published files, besides the shipped one
    store: str | None = None  # the results store read, None if not read
    local: tuple[LocalCheck, ...] = ()
    local_skipped: tuple[tuple[BenchResult, str], ...] = ()
    by_device: dict[str, ErrorStats] = field(default_factory=dict)  # local checks by device


def stats(errors: list[float]) -> ErrorStats:
    magnitudes = sorted(abs(e) for e in errors)
    if not magnitudes:
        return ErrorStats(0, float("nan"), float("nan"))
    p90 = magnitudes[min(len(magnitudes) - 1, max(0, round(0.9 * len(magnitudes)) - 1))]
    return ErrorStats(len(magnitudes), statistics.median(magnitudes), p90)


def _peak(catalog: Catalog, gpu: str, precision: str) -> float:
    g = catalog.get(gpu)
    peak = g.peak_tflops(precision) or g.fp32_tflops
    assert peak is not None, f"{gpu} has no compute figures"
    return peak


def validate(
    catalog: Catalog | None = None, *, published: Sequence[Path] = (), store_path: Path | None = None,
    local: bool = True,
) -> Validation:
    """Held-out error on the shipped published rows and those of ``published`` files (fitted on all
    of them, each generation without itself), and, with ``local``, on the results store's measurements."""
    catalog = catalog or load_catalog()
    mapped, skipped = mapped_rows(load_published() + [r for path in published for r in load_published(path)],
                                  catalog)
    profiles = Profiles()

    def group(m: MappedRow) -> str:
        return generation(m, catalog)

    fits = held_out(mapped, catalog, profiles, group)
    checks = tuple(
        RowCheck(m.row, m.workload, predict_row(m, catalog, fits[group(m)], profiles), group(m)) for m in mapped
    )
    by_gpu: dict[str, list[float]] = defaultdict(list)
    by_workload: dict[str, list[float]] = defaultdict(list)
    by_family: dict[str, list[float]] = defaultdict(list)
    by_count: dict[str, list[float]] = defaultdict(list)
    for c in checks:
        if c.row.suspect:  # listed with --rows, kept out of the statistics
            continue
        by_gpu[c.row.gpu].append(c.error)
        by_workload[c.workload].append(c.error)
        by_family[get_workload(c.workload).family].append(c.error)
        by_count["1 GPU" if c.row.num_gpus == 1 else "several GPUs"].append(c.error)

    pairs = _pairs(mapped, catalog, fits, profiles, group)
    cross = {
        "model": stats([p.model / p.measured - 1 for p in pairs]),
        "peak FLOP/s ratio": stats([p.by_peak_flops / p.measured - 1 for p in pairs]),
        "bandwidth ratio": stats([p.by_bandwidth / p.measured - 1 for p in pairs]),
    }
    return Validation(
        rows=checks, skipped=tuple(skipped), pairs=pairs,
        by_gpu={k: stats(v) for k, v in sorted(by_gpu.items())},
        by_workload={k: stats(v) for k, v in sorted(by_workload.items())},
        by_family={k: stats(v) for k, v in sorted(by_family.items())},
        by_gpu_count={k: stats(v) for k, v in sorted(by_count.items())},
        overall=stats([c.error for c in checks if not c.row.suspect]), cross_gpu=cross, fits=fits,
        files=tuple(str(p) for p in published), **(local_checks(catalog, store_path) if local else {}),
    )


def mapped_rows(
    rows: Sequence[PublishedRow], catalog: Catalog
) -> tuple[list[MappedRow], list[tuple[PublishedRow, str]]]:
    """The rows gpuwise can predict (a zoo workload, a precision it models, a catalog GPU: by its
    catalog name or as torch and nvidia-smi name it), and the others with the reason."""
    mapped: list[MappedRow] = []
    skipped: list[tuple[PublishedRow, str]] = []
    for r in rows:
        gpu = catalog.match_device(r.gpu)
        if gpu is not None and gpu.name != r.gpu:
            r = replace(r, gpu=gpu.name)
        m = map_row(r)
        if isinstance(m, str):
            skipped.append((r, m))
        elif gpu is None:
            skipped.append((r, f"GPU {r.gpu} is not in the catalog (add it with --catalog)"))
        else:
            mapped.append(m)
    return mapped, skipped


def _pairs(
    mapped: list[MappedRow], catalog: Catalog, fits: dict[str, Efficiency], profiles: Profiles,
    generation: Callable[[MappedRow], str],
) -> tuple[PairCheck, ...]:
    """Same workload, batch, GPU count and precision class (full: FP32/TF32, or AMP) on two generations."""
    def key(m: MappedRow) -> tuple[object, ...]:
        full = m.precision in ("fp32", "tf32")
        return (m.workload, m.seq_len, m.batch_size, m.row.num_gpus, full)

    groups: dict[tuple[object, ...], list[MappedRow]] = defaultdict(list)
    for m in mapped:
        if not m.row.suspect:
            groups[key(m)].append(m)
    pairs = []
    for members in groups.values():
        for a in members:
            for b in members:
                if generation(a) == generation(b):
                    continue
                eff = fits[generation(b)]  # fitted without B's generation
                ratio = predict_row(b, catalog, eff, profiles) / predict_row(a, catalog, eff, profiles)
                model = a.row.throughput * ratio
                ga, gb = catalog.get(a.row.gpu), catalog.get(b.row.gpu)
                pairs.append(PairCheck(
                    workload=a.workload,
                    settings=f"batch {a.batch_size}, {a.row.num_gpus} GPU, {a.precision}->{b.precision}",
                    from_gpu=a.row.gpu, to_gpu=b.row.gpu, measured=b.row.throughput, model=model,
                    by_peak_flops=a.row.throughput * _peak(catalog, b.row.gpu, b.precision)
                    / _peak(catalog, a.row.gpu, a.precision),
                    by_bandwidth=a.row.throughput * gb.memory_bandwidth_gbps / ga.memory_bandwidth_gbps,
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
    profiles: dict[tuple[object, ...], Profile] = {}
    for r in results:
        try:
            check = _local_check(r, catalog, cpu, profiles)
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


def _local_check(
    r: BenchResult, catalog: Catalog, cpu: Ceilings | None, profiles: dict[tuple[object, ...], Profile]
) -> LocalCheck | str:
    """One stored result against the model's step on its device, or why it cannot be predicted."""
    from gpuwise.predict.fit import shipped_efficiency
    from gpuwise.predict.option import modellable
    from gpuwise.predict.step import cpu_step, gpu_step, profile_for_gpu
    from gpuwise.profile import profile

    settings: dict[str, Any] = dict(batch_size=r.batch_size, precision=r.precision, optimizer=r.optimizer,
                                    seq_len=r.seq_len, image_size=r.image_size)
    on_cpu = r.device.split(":")[0] == "cpu"
    key = (r.workload, on_cpu, *settings.values())
    if on_cpu:
        if r.num_devices > 1:
            return f"{r.num_devices} CPU processes trained together: the CPU model predicts one process"
        if cpu is None or cpu.device_name != r.device_name:
            return (f"measured on {r.device_name}: this store has no calibration of that CPU on this machine "
                    "(gpuwise calibrate there)")
        if key not in profiles:
            profiles[key] = profile(r.workload, **settings)
        return LocalCheck(r, f"your CPU ({cpu.device_name})", cpu_step(profiles[key], cpu).step_s)
    gpu = catalog.match_device(r.device_name)
    if gpu is None or not modellable(gpu):
        return f"GPU {r.device_name} is not a catalog GPU with compute figures (add it with --catalog)"
    if key not in profiles:
        profiles[key] = profile_for_gpu(r.workload, **settings)
    n = r.num_devices
    step = gpu_step(profiles[key], gpu, shipped_efficiency(), num_gpus=n, gpus_per_node=min(n, 8))
    return LocalCheck(r, gpu.name if n == 1 else f"{n}× {gpu.name}", step.step_s)
