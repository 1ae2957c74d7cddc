"""How good are the predictions? Predicted against measured throughput.

Published rows are predicted by constants fitted *without* that row's GPU generation
(fit on V100, predict A100, and the reverse): the error reported is held-out error.
Cross-GPU: from a measurement on one GPU, the model predicts the same step on the
other, and so do two naive baselines (peak FLOP/s ratio alone, bandwidth ratio alone).

The published rows are predicted for the pipeline they ran (``fit.row_pipeline``: NVIDIA's
fused optimizers but for GNMT, channels-last convnets under AMP), not for eager PyTorch, which
is what ``predict`` and ``plan`` assume.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass

from gpuwise.hardware.catalog import Catalog, load_catalog
from gpuwise.predict.fit import Profiles, generation, held_out, predict_row
from gpuwise.predict.published import MappedRow, PublishedRow, load_published, map_row
from gpuwise.predict.roofline import Efficiency


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
    by_gpu_count: dict[str, ErrorStats]  # "1 GPU", "several GPUs": data-parallel scaling is a separate error
    overall: ErrorStats
    cross_gpu: dict[str, ErrorStats]  # "model", "peak FLOP/s ratio", "bandwidth ratio"
    fits: dict[str, Efficiency]


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


def validate(catalog: Catalog | None = None) -> Validation:
    catalog = catalog or load_catalog()
    mapped: list[MappedRow] = []
    skipped: list[tuple[PublishedRow, str]] = []
    for r in load_published():
        m = map_row(r)
        if isinstance(m, str):
            skipped.append((r, m))
        elif not catalog.has(r.gpu):
            skipped.append((r, f"GPU {r.gpu} is not in the catalog"))
        else:
            mapped.append(m)
    profiles = Profiles()
    fits = held_out(mapped, catalog, profiles, generation)
    checks = tuple(
        RowCheck(m.row, m.workload, predict_row(m, catalog, fits[generation(m)], profiles), generation(m))
        for m in mapped
    )
    by_gpu: dict[str, list[float]] = defaultdict(list)
    by_workload: dict[str, list[float]] = defaultdict(list)
    by_count: dict[str, list[float]] = defaultdict(list)
    for c in checks:
        if c.row.suspect:  # listed with --rows, kept out of the statistics
            continue
        by_gpu[c.row.gpu].append(c.error)
        by_workload[c.workload].append(c.error)
        by_count["1 GPU" if c.row.num_gpus == 1 else "several GPUs"].append(c.error)

    pairs = _pairs(mapped, catalog, fits, profiles)
    cross = {
        "model": stats([p.model / p.measured - 1 for p in pairs]),
        "peak FLOP/s ratio": stats([p.by_peak_flops / p.measured - 1 for p in pairs]),
        "bandwidth ratio": stats([p.by_bandwidth / p.measured - 1 for p in pairs]),
    }
    return Validation(
        rows=checks, skipped=tuple(skipped), pairs=pairs,
        by_gpu={k: stats(v) for k, v in sorted(by_gpu.items())},
        by_workload={k: stats(v) for k, v in sorted(by_workload.items())},
        by_gpu_count={k: stats(v) for k, v in sorted(by_count.items())},
        overall=stats([c.error for c in checks if not c.row.suspect]), cross_gpu=cross, fits=fits,
    )


def _pairs(
    mapped: list[MappedRow], catalog: Catalog, fits: dict[str, Efficiency], profiles: Profiles
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
