"""What the stored and published measurements say about this plan: CPU vs GPU speed-ups, and
predicted vs measured (see ``gpuwise.report.data`` for which rows are compared, and why)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gpuwise.plan import Plan
from gpuwise.predict.published import MappedRow, load_published, map_row
from gpuwise.records import BenchResult


@dataclass(frozen=True)
class Speedup:
    setting: str  # "resnet18 · batch 16 · fp32 · adamw"
    workload: str
    gpu: str
    cpu: str
    cpu_step_s: float
    gpu_step_s: float
    speedup: float  # CPU median step / GPU median step (same batch)
    measured_at: str  # the GPU result's time


@dataclass(frozen=True)
class SpeedupData:
    rows: tuple[Speedup, ...]
    num_results: int  # stored bench results, all workloads
    store: str
    empty_reason: str | None  # why there is no chart, in words


@dataclass(frozen=True)
class Check:
    """One prediction against one measurement, throughput in ``unit``."""

    label: str
    kind: str  # "published", "bench", "train"
    predicted: float
    measured: float
    unit: str
    source: str
    note: str = ""

    @property
    def error(self) -> float:
        """(predicted − measured) / measured, as ``gpuwise validate`` reports it."""
        return self.predicted / self.measured - 1


@dataclass(frozen=True)
class ChecksData:
    rows: tuple[Check, ...]
    empty_reason: str | None
    published_settings: tuple[str, ...]  # the settings this workload has published rows for



def stored(store_path: Path | None) -> list[BenchResult]:
    from gpuwise.store import open_store

    with open_store(store_path) as store:
        return store.results()


def _store_label(store_path: Path | None) -> str:
    from gpuwise.store import default_db_path

    return str(store_path if store_path is not None else default_db_path())


def _single_bench(r: BenchResult) -> bool:
    return r.origin == "bench" and r.num_devices == 1


def _setting_key(r: BenchResult) -> tuple[object, ...]:
    return (r.workload, r.batch_size, r.precision, r.optimizer, r.seq_len, r.image_size, r.hardware.cpu_model)


def speedups(results: list[BenchResult], store_path: Path | None) -> SpeedupData:
    benches = [r for r in results if _single_bench(r)]
    newest_cpu: dict[tuple[object, ...], BenchResult] = {}
    newest_gpu: dict[tuple[object, ...], BenchResult] = {}
    for r in benches:  # newest first: keep the first of each
        key = _setting_key(r)
        if r.device == "cpu":
            newest_cpu.setdefault(key, r)
        else:
            newest_gpu.setdefault((*key, r.device_name), r)
    rows = []
    for gpu_key, g in newest_gpu.items():
        cpu = newest_cpu.get(gpu_key[:-1])
        if cpu is None:
            continue
        shape = f" · seq {g.seq_len}" if g.seq_len else f" · {g.image_size}px" if g.image_size else ""
        rows.append(Speedup(
            setting=f"{g.workload} · batch {g.batch_size}{shape} · {g.precision} · {g.optimizer}",
            workload=g.workload, gpu=g.device_name, cpu=cpu.device_name, cpu_step_s=cpu.timing.median_s,
            gpu_step_s=g.timing.median_s, speedup=cpu.timing.median_s / g.timing.median_s, measured_at=g.created_at,
        ))
    reason = None
    if not rows:
        has_gpu = any(r.device != "cpu" for r in benches)
        reason = (
            f"No stored benchmark to compare: the results store ({_store_label(store_path)}) holds "
            + (f"{len(benches)} bench result{'' if len(benches) == 1 else 's'}, " if benches else "no bench result. ")
            + ("but no GPU result has a CPU result of the same setting on the same machine. " if has_gpu
               else "none of them on a GPU. " if benches else "")
            + "Run gpuwise bench WORKLOAD on a machine with a GPU: it times the CPU and each GPU and stores both."
        )
    rows.sort(key=lambda s: (s.setting, s.gpu))
    return SpeedupData(rows=tuple(rows), num_results=len(benches), store=_store_label(store_path),
                       empty_reason=reason)


def checks(p: Plan, results: list[BenchResult]) -> ChecksData:
    workload, profile = p.basis.workload, p.basis.profile
    tokens = p.unit == "token"
    unit = "tokens/s" if tokens else f"{p.sample_unit}s/s"
    rows: list[Check] = []
    published = [m for r in load_published() if isinstance(m := map_row(r), MappedRow)
                 and m.workload == p.workload and not r.suspect]
    shape = workload.resolve_shape(p.config.seq_len, p.config.image_size)
    for m in published:
        if m.precision != p.precision or m.counts_tokens != tokens:
            continue
        if workload.resolve_shape(m.seq_len, None) != shape:
            continue
        for o in p.options:
            if o.device == m.row.gpu and o.num_gpus == m.row.num_gpus and o.batch_size == m.batch_size and o.step:
                speed = o.step.tokens_per_s if tokens and o.step.tokens_per_s else o.step.samples_per_s
                note = "" if m.optimizer == p.config.optimizer.value else (
                    f"published with {m.optimizer}, planned with {p.config.optimizer.value}")
                rows.append(Check(label=o.label, kind="published", predicted=speed, measured=m.row.throughput,
                                  unit=unit, source=f"{m.row.source} (line {m.row.index})", note=note))
    for o in p.options:
        if o.provenance_kind == "measured" and o.num_gpus == 1 and o.step is not None:  # once per device
            per_step = o.batch_size * ((profile.tokens_per_sample or 1) if tokens else 1)
            rows.append(Check(label=o.label, kind="bench",
                              predicted=per_step / o.step.model_compute_s, measured=per_step / o.step.compute_s,
                              unit=unit, source="gpuwise bench, stored here; predicted = the roofline model alone"))
    for r in results:
        predicted_s = r.predicted_step_s
        if r.workload != p.workload or r.origin != "train" or not predicted_s:
            continue
        per_step = r.batch_size * r.num_devices * ((r.seq_len or 1) if tokens else 1)
        rows.append(Check(label=f"{r.num_devices}× {r.device_name}", kind="train",
                          predicted=per_step / predicted_s, measured=per_step / r.timing.median_s, unit=unit,
                          source=f"gpuwise train at {r.created_at}; prediction: "
                                 f"{r.prediction_provenance or 'the plan model'}"))
    settings = tuple(dict.fromkeys(
        f"{m.precision}, batch {m.batch_size}" + (f", seq {m.seq_len}" if m.seq_len else "") + f": {m.row.gpu} ×"
        f"{m.row.num_gpus}" for m in published))
    reason = None
    if not rows:
        reason = (f"No measurement matches this plan's setting ({p.precision}, batch "
                  f"{p.requested_batch_size} per GPU). ")
        reason += (f"The published measurements of {p.workload} shipped with gpuwise are at: {'; '.join(settings)}. "
                   "Plan with one of those settings (--precision, --batch-size) to see them against this plan's "
                   "predictions. " if settings else f"gpuwise ships no published measurement of {p.workload}. ")
        reason += ("Measure your own with gpuwise bench. The model's held-out error over all published rows: "
                   "gpuwise validate.")
    return ChecksData(rows=tuple(rows), empty_reason=reason, published_settings=settings)
