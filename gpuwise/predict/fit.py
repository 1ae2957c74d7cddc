"""Fitting the efficiency constants on published measurements, and holding out GPUs to check them.

Only the shipped published files are fitted on: the kernel constants on the NVIDIA
DeepLearningExamples rows (single-GPU, not SUSPECT), then how much a GPU's step varies, per workload
family, on their multi-GPU rows (``fit_step_spread``: the wait for the slowest GPU), then how fast each GPU
generation's kernels run against those shared constants, on every shipped file's rows of it, shrunk toward
them (``fit_generation_scale``), then a fused attention kernel's efficiency on the published LLM runs, pooled,
as a scale of each generation's published kernel share, and per GPU generation (``fit_attention``), the others
held fixed. `gpuwise validate` reports the error of predictions on GPU generations the fit did not see (each
generation held out in turn); ``benchmarks/llm_runs.py`` does the same for the LLM runs.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from gpuwise.config import OptimizerName, Precision
from gpuwise.hardware.catalog import GPU, Catalog
from gpuwise.predict import parallel
from gpuwise.predict.constants import FITTED_FILE, shipped_file
from gpuwise.predict.constants import save as save
from gpuwise.predict.constants import shipped_efficiency as shipped_efficiency
from gpuwise.predict.published import LlmRun, MappedRow
from gpuwise.predict.roofline import Efficiency, Pipeline, tuned_pipeline
from gpuwise.predict.step import ProfileCache, gpu_step, throughput
from gpuwise.profile import Profile, ops
from gpuwise.workloads import get_workload

if TYPE_CHECKING:
    from gpuwise.predict.option import Option

_NAMES = (
    "matmul", "conv", "grouped_conv", "rnn", "simt", "bandwidth", "kernel_latency_s", "host_op_s",
)
# Physically plausible ranges: no real kernel sustains more than ~90% of a datasheet peak
# (clock throttling under load, tails, tile quantization), nor of the memory bandwidth.
# A kernel's fixed cost (launch, ramp-up, tail) is a few microseconds on the GPUs of the file; the
# ceiling is 10 us. Left to 50 us, the fit put it at 38 us to stand in for effects the model does not
# have (GNMT's small per-timestep GEMMs), which would slow every small model in `plan` (tried
# 2026-11-25: held-out p90 37.6% at 38 us vs 40.8% at 10 us; the plausible one is kept).
_BOUNDS = (
    (0.05, 0.9), (0.05, 0.9), (0.005, 0.9), (0.02, 0.9), (0.05, 0.9), (0.2, 0.9), (0.0, 1e-5), (0.0, 1e-4),
)
# A fused attention kernel (flash, NVIDIA's FMHA, Transformer Engine's) is fitted on the LLM runs, not here: no
# DeepLearningExamples row runs one (its BERT writes attention out). Its plausible range, not fitted: at least
# ~20% of the tensor peak in training, at most the best share FlashAttention-2 reports, 73% (its forward pass on
# A100; backward reaches less: Dao 2023, arXiv:2307.08691). Left to 90% (tried 2026-12-07: this fit with the
# bound at 0.9), the A100's LLM runs put it at 86%, standing in for their large GEMMs' higher matmul share than
# BERT-large's, which one ``matmul`` cannot give both.
_ATTENTION_BOUNDS = (0.2, 0.73)


def row_profile(m: MappedRow, profiles: ProfileCache) -> Profile:
    """The GPU profile a published row's setting reads, made once by ``profiles`` (the rows name zoo workloads,
    timm models or Hugging Face configs: looking one up imports no code of the user's)."""
    return profiles.get(get_workload(m.workload), batch_size=m.batch_size, precision=m.precision,
                        optimizer=OptimizerName.parse(m.optimizer), seq_len=m.seq_len, image_size=m.image_size,
                        low_precision_params=m.half_model, attention_written_out=m.attention_written_out)


def row_pipeline(m: MappedRow, p: Profile) -> Pipeline:
    """The published rows ran NVIDIA's tuned containers, not eager PyTorch: model what they ran."""
    has_convs = any(g.kind == ops.CONV for g in p.ops)
    return tuned_pipeline(m.precision, has_convs=has_convs, fused_optimizer=m.fused_optimizer,
                          fp8_layers=m.fp8_layers, fused_elementwise=m.fused_elementwise,
                          sync_after_backward=m.sync_after_backward, channels_first=m.channels_first,
                          channels_last=m.channels_last)


def row_gpus_per_node(m: MappedRow, gpu: GPU) -> int:
    """The GPUs a row's ring runs among before it takes the network: a PCIe card's node, as the row's notes give
    it (2 A100 PCIe per host in Clemson's MLPerf runs); else 8, an HGX board's NVLink domain (a GB200 NVL72's
    spans its rack, not its 4-GPU trays, which the catalog does not say)."""
    n = m.row.num_gpus
    return min(n, m.gpus_per_node) if m.gpus_per_node and not gpu.nvlink_gbps else min(n, parallel.GPUS_PER_NODE)


def predict_row(m: MappedRow, catalog: Catalog, eff: Efficiency, profiles: ProfileCache) -> float:
    p = row_profile(m, profiles)
    gpu = catalog.get(m.row.gpu)
    step = gpu_step(p, gpu, eff, num_gpus=m.row.num_gpus, gpus_per_node=row_gpus_per_node(m, gpu),
                    network_gbits=m.network_gbits, pipeline=row_pipeline(m, p), busbw_gbs=m.busbw_gbs)
    return throughput(p, step, tokens=m.counts_tokens)


def log_error(m: MappedRow, catalog: Catalog, eff: Efficiency, profiles: ProfileCache) -> float:
    """log(predicted / measured) of a published row: what every fit here minimises."""
    return math.log(predict_row(m, catalog, eff, profiles) / m.row.throughput)


def fit(rows: Iterable[MappedRow], catalog: Catalog, profiles: ProfileCache, source: str) -> Efficiency:
    """Least squares on log(predicted / measured) over single-GPU, non-suspect rows. An SM's streaming rate
    is measured, not fitted (``Catalog.sm_stream_gbps``): the V100 and A100 rows barely tell it apart from
    the DRAM's share (their DRAM bandwidth per SM differs by 1.5×), and left free the fit drifts to either
    end of its range."""
    train = [m for m in rows if m.row.num_gpus == 1 and not m.row.suspect]
    if not train:
        raise ValueError("nothing to fit on")
    eff = least_squares(
        Efficiency(sm_stream_gbps=catalog.sm_stream_gbps()), dict(zip(_NAMES, _BOUNDS, strict=True)),
        lambda eff: [log_error(m, catalog, eff, profiles) for m in train],
    )
    return replace(eff, source=f"{source} ({len(train)} rows)")


def least_squares(
    start: Efficiency, bounds: Mapping[str, tuple[float, float]], log_errors: Callable[[Efficiency], list[float]],
    source: str | None = None,
) -> Efficiency:
    """The constants named in ``bounds`` (the others kept from ``start``), each within its bounds, that
    minimise the mean square of ``log_errors`` (log(predicted / measured) per row). The search runs in
    units of ``start``'s values, so microseconds and fractions move alike. Shared by the GPU fit here
    and the CPU fit (``gpuwise.predict.cpu_fit``)."""
    from scipy.optimize import minimize

    names = list(bounds)
    scale = [abs(getattr(start, n)) or 1.0 for n in names]

    def to_eff(x: Sequence[float]) -> Efficiency:
        values: dict[str, Any] = {
            n: min(max(v * s, bounds[n][0]), bounds[n][1]) for n, v, s in zip(names, x, scale, strict=True)
        }
        if source is not None:
            values["source"] = source
        return replace(start, **values)

    def loss(x: Sequence[float]) -> float:
        errors = log_errors(to_eff(x))
        return sum(e * e for e in errors) / len(errors)

    limits = [(bounds[n][0] / s, bounds[n][1] / s) for n, s in zip(names, scale, strict=True)]
    result = minimize(loss, [1.0] * len(names), method="L-BFGS-B", bounds=limits)
    return to_eff(list(result.x))


def _fit_in_log(loss: Callable[[float], float], bounds: tuple[float, float], *, xatol: float = 1e-3) -> float:
    """The one constant within ``bounds`` that minimises ``loss`` of its logarithm (a bounded scalar search in
    log space: a factor of 2 weighs the same up or down). Shared by the step spread and attention fits."""
    from scipy.optimize import minimize_scalar

    low, high = (math.log(b) for b in bounds)
    return math.exp(float(minimize_scalar(loss, bounds=(low, high), method="bounded", options={"xatol": xatol}).x))


# ------------------------------------------------------------------ multi-GPU scaling: the slowest GPU

# How strongly a family's step spread is pulled toward the global one: a ridge penalty on its log ratio,
# the MAP weight of a log-normal prior that a family lies within a factor of 3 of the global spread
# (sigma = ln 3) against the scatter of published scaling efficiencies around the model (sigma ~ 0.05
# in log): (0.05 / ln 3)^2. A family with a few pairs stays near the global value.
SPREAD_SHRINKAGE = (0.05 / math.log(3)) ** 2
_SPREAD_BOUNDS = (1e-3, 0.5)


@dataclass(frozen=True)
class ScalingPair:
    """A published multi-GPU row and its single-GPU partner (same workload, GPU, precision, batch)."""

    family: str
    num_gpus: int
    compute_s: float  # the model's one-GPU step at that batch
    communication_s: float  # the model's exposed communication on ``num_gpus``
    measured: float  # the published scaling efficiency: throughput on n / (n × throughput on one)

    def predicted(self, spread: float) -> float:
        """The model's scaling efficiency with a step spread of ``spread``."""
        wait = parallel.sync_wait_s(self.compute_s, spread, self.num_gpus)
        return self.compute_s / (self.compute_s + self.communication_s + wait)


def scaling_pairs(rows: Iterable[MappedRow], catalog: Catalog, eff: Efficiency, profiles: ProfileCache
                  ) -> list[ScalingPair]:
    """Every non-suspect multi-GPU row with a single-GPU partner, as the model with ``eff`` sees it."""
    usable = [m for m in rows if not m.row.suspect]
    singles = {(m.workload, m.row.gpu, m.precision, m.batch_size): m for m in usable if m.row.num_gpus == 1}
    pairs = []
    for m in usable:
        one = singles.get((m.workload, m.row.gpu, m.precision, m.batch_size))
        if m.row.num_gpus == 1 or one is None:
            continue
        p = row_profile(m, profiles)
        gpu = catalog.get(m.row.gpu)
        step = gpu_step(p, gpu, replace(eff, step_spread={}, step_spread_global=0.0), num_gpus=m.row.num_gpus,
                        gpus_per_node=row_gpus_per_node(m, gpu), network_gbits=m.network_gbits,
                        pipeline=row_pipeline(m, p), busbw_gbs=m.busbw_gbs)
        measured = m.row.throughput / (m.row.num_gpus * one.row.throughput)
        pairs.append(ScalingPair(p.family, m.row.num_gpus, step.compute.step_s, step.communication_s, measured))
    return pairs


def fit_step_spread(rows: Iterable[MappedRow], eff: Efficiency, catalog: Catalog, profiles: ProfileCache
                    ) -> Efficiency:
    """``eff`` with the step spread that makes the model's multi-GPU scaling match the published pairs
    (``scaling_pairs``): one global spread by least squares on the log scaling efficiencies, then one per
    workload family, shrunk toward it (``SPREAD_SHRINKAGE``). No pairs: ``eff`` unchanged."""
    pairs = scaling_pairs(rows, catalog, eff, profiles)
    if not pairs:
        return eff

    def fitted(members: list[ScalingPair], prior: float | None) -> float:
        def loss(log_spread: float) -> float:
            spread = math.exp(log_spread)
            misfit = sum(math.log(m.predicted(spread) / m.measured) ** 2 for m in members)
            return misfit if prior is None else misfit + SPREAD_SHRINKAGE * (log_spread - math.log(prior)) ** 2

        return _fit_in_log(loss, _SPREAD_BOUNDS, xatol=1e-4)

    overall = fitted(pairs, None)
    by_family: dict[str, list[ScalingPair]] = {}
    for pair in pairs:
        by_family.setdefault(pair.family, []).append(pair)
    spreads = {family: fitted(members, overall) for family, members in sorted(by_family.items())}
    counts = ", ".join(f"{f} {len(m)}" for f, m in sorted(by_family.items()))
    return replace(eff, step_spread=spreads, step_spread_global=overall,
                   step_spread_source=f"fitted on {len(pairs)} published multi-GPU rows against their single-GPU "
                                      f"rows ({counts}), each family shrunk toward the global spread")


# ------------------------------------------------------------------ per generation: how fast its kernels run

# How a generation's scale (``Efficiency.generation_scale``) weighs its sources against the prior that it is 1, the
# constants shared by every generation. A random-effects model of the log errors (predicted / measured) at the
# shared constants: a row's error is its generation's (what the scale takes out) + its source's + its own. A source
# is one workload in one published file (one README's tables, MLPerf's submissions of one benchmark, which run one
# reference implementation), whose rows share a software stack and a data pipeline, so their errors move together:
# its mean error has variance ROW_SPREAD^2 / n + SOURCE_SPREAD^2, so a source of many rows weighs more than one of
# a single row, but never more than one source's setting can say. Both measured on the shipped rows of at most one
# node at the constants the kernel fit gives, before any scale (``source_spreads``; `python -m
# gpuwise.predict.fit` prints them): rows about their source's mean 0.106 (145 rows in sources of 2 or more);
# sources about their generation's, beyond what their rows' spread explains (DerSimonian-Laird), 0.076 over every
# generation of 2 or more sources.
# The prior: a generation's kernels run within 25% of the shared constants (a log-normal, sigma = ln 1.25).
ROW_SPREAD = 0.1
SOURCE_SPREAD = 0.08
GENERATION_SPREAD = math.log(1.25)
_GENERATION_SCALE_BOUNDS = (0.5, 2.0)


def _usable_by_generation(rows: Iterable[MappedRow], catalog: Catalog, exclude: str | None = None
                          ) -> dict[str, dict[str, list[MappedRow]]]:
    """The rows the generation scales are fitted on, by generation, then by source (a workload in a file)."""
    by_generation: dict[str, dict[str, list[MappedRow]]] = {}
    for m in rows:
        if m.row.suspect or m.row.num_gpus > parallel.GPUS_PER_NODE or (gen := generation(m, catalog)) == exclude:
            continue
        by_generation.setdefault(gen, {}).setdefault(f"{m.workload} in {m.row.file}", []).append(m)
    return by_generation


def fit_generation_scale(rows: Iterable[MappedRow], eff: Efficiency, catalog: Catalog, profiles: ProfileCache,
                         *, exclude: str | None = None) -> Efficiency:
    """``eff`` with a scale per GPU generation (but ``exclude``) of how fast its kernels run against ``eff``'s
    shared constants: each is the most probable under the random-effects model above, minimising over the sources
    of its rows (a workload in a published file) the squared mean log error of a source's rows over its variance
    (``ROW_SPREAD``^2 / rows + ``SOURCE_SPREAD``^2), summed, plus its squared log over ``GENERATION_SPREAD``^2.
    Every non-suspect row of at most one node counts, multi-GPU ones too (Hopper's and Blackwell's published rows
    are all of 4 or 8 GPUs): within a node the step is mostly the GPU's kernels, beyond it the network's. A
    hierarchical fit: the shared constants are fitted on the generations the kernel fit reads (``fit``), each
    generation's deviation from them here, shrunk toward none, so a generation with little data borrows the
    others'."""
    by_generation = _usable_by_generation(rows, catalog, exclude)
    shared = replace(eff, generation_scale={})
    scales: dict[str, float] = {}
    for gen, sources in sorted(by_generation.items()):

        def loss(log_scale: float, gen: str = gen, sources: dict[str, list[MappedRow]] = sources) -> float:
            trial = replace(shared, generation_scale={gen: math.exp(log_scale)})
            misfit = sum(statistics.fmean(log_error(m, catalog, trial, profiles) for m in members) ** 2
                         / (ROW_SPREAD ** 2 / len(members) + SOURCE_SPREAD ** 2) for members in sources.values())
            return misfit + (log_scale / GENERATION_SPREAD) ** 2

        scales[gen] = _fit_in_log(loss, _GENERATION_SCALE_BOUNDS, xatol=1e-4)
    counts = ", ".join(f"{g} {sum(map(len, s.values()))} rows of {len(s)} source{'s' if len(s) > 1 else ''}"
                       for g, s in sorted(by_generation.items()))
    return replace(eff, generation_scale=scales,
                   generation_scale_source=f"fitted on the published rows of at most one node ({counts}), each "
                                           "source weighed by its rows, each generation shrunk toward the shared "
                                           "constants")


def source_spreads(rows: Iterable[MappedRow], eff: Efficiency, catalog: Catalog, profiles: ProfileCache
                   ) -> tuple[float, float]:
    """The two spreads of the random-effects model above, measured at ``eff``'s shared constants (no generation
    scale) on the rows ``fit_generation_scale`` reads: the rows' log errors about their source's mean (pooled over
    sources of 2 or more rows), and the sources' means about their generation's beyond what that explains
    (DerSimonian and Laird's moment estimate, pooled over generations of 2 or more sources)."""
    shared = replace(eff, generation_scale={})
    errors = {gen: [[log_error(m, catalog, shared, profiles) for m in members] for members in sources.values()]
              for gen, sources in _usable_by_generation(rows, catalog).items()}
    squares = [(e - statistics.fmean(source)) ** 2 for gen in errors.values() for source in gen if len(source) > 1
               for e in source]
    degrees = sum(len(source) - 1 for gen in errors.values() for source in gen if len(source) > 1)
    if not degrees or not any(squares):
        raise ValueError("the row spread needs a source of two or more rows that differ")
    row_var = sum(squares) / degrees
    q = df = c = 0.0
    for gen in errors.values():
        if len(gen) < 2:
            continue
        weights = [len(source) / row_var for source in gen]
        means = [statistics.fmean(source) for source in gen]
        pooled = sum(w * y for w, y in zip(weights, means, strict=True)) / sum(weights)
        q += sum(w * (y - pooled) ** 2 for w, y in zip(weights, means, strict=True))
        df += len(gen) - 1
        c += sum(weights) - sum(w * w for w in weights) / sum(weights)
    return math.sqrt(row_var), math.sqrt(max(0.0, (q - df) / c))


# ------------------------------------------------------------------ flash attention, from LLM runs

# How strongly a generation's flash-attention efficiency is pulled toward its prior (below): a ridge penalty on
# its log ratio, the MAP weight of a log-normal prior that a generation lies within a factor of 2 of it (sigma =
# ln 2) against the scatter of published runs around the model (sigma ~ 0.15 in log): (0.15 / ln 2)^2. A
# generation with one or two runs stays near its prior, one with many is told by its own.
FLASH_SHRINKAGE = (0.15 / math.log(2)) ** 2

# The best share of the 16-bit tensor peak published for FlashAttention-2, by GPU generation: the kernel
# PyTorch's SDPA runs (its flash backend) in the published runs on both. It does not carry
# over between generations: written for Ampere's synchronous tensor-core instructions, it leaves Hopper's
# asynchronous ones (wgmma, TMA) unused.
# - Ampere: "reaching 50-73% of the theoretical maximum FLOPs/s on A100" (Dao 2023, FlashAttention-2,
#   arXiv:2307.08691, abstract): 0.73, reached by its forward pass.
# - Hopper: "FlashAttention-2 achieving only 35% utilization on H100 GPUs" (Shah et al. 2024, FlashAttention-3,
#   arXiv:2407.08608, abstract): 0.35.
# A generation listed here is priced at its share × one scale fitted over the runs of every listed generation
# (how much of the best quoted share a training step's forward and backward reach), then shrunk toward
# that; so a generation with no runs (held out) takes its own kernel's share × the scale the others give, not
# their fitted value. A generation not listed takes the pooled ``attention``.
FLASH_KERNEL_SHARE = {"Ampere": 0.73, "Hopper": 0.35}
# The scale's plausible range: a training step's forward and backward reach at most the best quoted share
# (FlashAttention-2's backward runs slower than its forward, Dao 2023), and at least a quarter of it.
_FLASH_SCALE_BOUNDS = (0.25, 1.0)


def predict_llm_run(run: LlmRun, eff: Efficiency, profiles: ProfileCache, catalog: Catalog | None = None) -> Option:
    """A published LLM run as ``gpuwise predict`` predicts it, with the constants ``eff`` (on ``catalog``'s GPUs:
    the shipped catalog where None)."""
    from gpuwise.config import ActivationCheckpointing, RunSettings, Strategy
    from gpuwise.predict.single import PredictConfig, predict

    row = run.row
    config = PredictConfig.of(
        workload=run.workload, gpu=row.gpu, num_gpus=row.num_gpus, batch_size=row.batch_per_gpu,
        precision=Precision.AMP_BF16, seq_len=run.seq_len,
        settings=RunSettings(strategy=Strategy.parse(run.strategy),
                             activation_checkpointing=ActivationCheckpointing.parse(run.activation_checkpointing),
                             compile=run.compile, fp8=run.fp8),
    )
    return predict(config, catalog, profiles=profiles, efficiency=eff)


def llm_run_error(run: LlmRun, eff: Efficiency, profiles: ProfileCache) -> float | None:
    """log(predicted / published tokens/s) of a published LLM run, predicted as ``gpuwise predict``
    does with ``eff``; None when the prediction says it does not fit at the published batch."""
    option = predict_llm_run(run, eff, profiles)
    if option.step is None or option.step.tokens_per_s is None or option.batch_reduced:
        return None
    return math.log(option.step.tokens_per_s / run.row.throughput)


def _llm_loss(members: Sequence[LlmRun], eff: Efficiency, profiles: ProfileCache) -> float:
    """The squared log errors of ``members`` with ``eff``; a run predicted not to fit counts as a 2x error."""
    errors = [e for m in members if (e := llm_run_error(m, eff, profiles)) is not None]
    return sum(e * e for e in errors) + (len(members) - len(errors)) * math.log(2) ** 2


def fit_attention(runs: Sequence[LlmRun], eff: Efficiency, catalog: Catalog, profiles: ProfileCache,
                  *, exclude: str | None = None) -> Efficiency:
    """``eff`` with a fused attention kernel's efficiency fitted on the published LLM runs (but those of the GPU
    generation ``exclude``): ``attention``, one value for every generation pooled; the scale of the published
    kernel shares (``FLASH_KERNEL_SHARE``) over the runs of the generations that have one; then one value per
    generation with runs, shrunk toward its prior (``fit_flash_attention``). No DeepLearningExamples row runs a
    fused attention kernel (NVIDIA's BERT writes attention out), so the kernel fit cannot tell it. Without runs,
    ``eff`` is returned as it is."""
    kept = [r for r in runs if catalog.get(r.row.gpu).generation != exclude]
    if not kept:
        return eff
    pooled = replace(eff, attention=_fit_in_log(
        lambda v: _llm_loss(kept, replace(eff, attention=math.exp(v), flash_attention={}), profiles),
        _ATTENTION_BOUNDS))
    shared = [r for r in kept if catalog.get(r.row.gpu).generation in FLASH_KERNEL_SHARE]
    scale = None
    if shared:
        scale = _fit_in_log(lambda v: _llm_loss(shared, replace(pooled, flash_attention=_scaled(math.exp(v))),
                                                profiles), _FLASH_SCALE_BOUNDS)
    return fit_flash_attention(kept, pooled, catalog, profiles, exclude=exclude, scale=scale)


def _scaled(scale: float) -> dict[str, float]:
    """Every listed generation's published kernel share × ``scale``, within the attention bounds."""
    low, high = _ATTENTION_BOUNDS
    return {g: min(max(share * scale, low), high) for g, share in FLASH_KERNEL_SHARE.items()}


def fit_flash_attention(runs: Sequence[LlmRun], eff: Efficiency, catalog: Catalog, profiles: ProfileCache,
                        *, exclude: str | None = None, scale: float | None = None) -> Efficiency:
    """``eff`` with a flash-attention efficiency per GPU generation that has runs (but ``exclude``): each
    minimises the squared log errors of its generation's runs plus ``FLASH_SHRINKAGE`` × the squared log ratio to
    its prior, within the attention bounds. The prior: with ``scale``, a listed generation's kernel share × it
    (``FLASH_KERNEL_SHARE``); else ``eff.attention``. With ``scale``, a listed generation without runs (``exclude``)
    takes its prior. The other constants stay."""
    priors = _scaled(scale) if scale is not None else {}
    by_generation: dict[str, list[LlmRun]] = {}
    for run in runs:
        by_generation.setdefault(catalog.get(run.row.gpu).generation, []).append(run)
    fitted: dict[str, float] = {}
    for family, members in sorted(by_generation.items()):
        if family == exclude:
            continue
        prior = priors.get(family, eff.attention)

        def loss(log_value: float, family: str = family, members: list[LlmRun] = members,
                 prior: float = prior) -> float:
            trial = replace(eff, flash_attention={**fitted, family: math.exp(log_value)})
            return _llm_loss(members, trial, profiles) + FLASH_SHRINKAGE * (log_value - math.log(prior)) ** 2

        fitted[family] = _fit_in_log(loss, _ATTENTION_BOUNDS)
    counts = ", ".join(f"{f} {len(m)}" for f, m in sorted(by_generation.items()) if f != exclude)
    kernel = "" if scale is None else (
        f"; the generations with a published FlashAttention-2 share ({', '.join(FLASH_KERNEL_SHARE)}) at it × "
        f"{scale:.3f}, fitted over their runs")
    return replace(eff, flash_attention={**priors, **fitted},
                   flash_attention_source=f"fitted on the published LLM runs ({counts}): attention pooled over "
                                          f"them{kernel}; each generation with runs shrunk toward that")


def usable_llm_runs(catalog: Catalog) -> list[LlmRun]:
    """The shipped LLM runs the attention fit reads: those gpuwise can predict (``map_llm_run``) on catalog GPUs,
    but the FP8 runs, which check the FP8 layers' pricing (it has no constant of its own) and are fitted on by
    nothing."""
    from gpuwise.predict.published import load_llm_runs, map_llm_run

    return [r for row in load_llm_runs() if not isinstance(r := map_llm_run(row), str) and catalog.has(row.gpu)
            and not r.fp8]


def held_out(mapped: list[MappedRow], catalog: Catalog, profiles: ProfileCache, others: Sequence[MappedRow] = ()
             ) -> dict[str, Efficiency]:
    """For each GPU generation of ``mapped`` (the rows the kernel fit reads) and ``others`` (the other shipped
    files' rows), the constants fitted without it: the kernel constants and step spread on ``mapped``'s other
    generations (for a generation ``mapped`` has none of: the shipped ones), then every other generation's scale on
    the rows of both (``fit_generation_scale``); the held-out generation runs at 1."""
    everything = [*mapped, *others]
    shipped = shipped_efficiency()
    fits = {}
    for g in sorted({generation(m, catalog) for m in everything}):
        fitted = [m for m in mapped if generation(m, catalog) != g]
        if len(fitted) == len(mapped):
            shared = replace(shipped, source=f"the shipped constants ({g} not among their rows)")
        else:
            try:
                shared = fit_step_spread(fitted, fit(fitted, catalog, profiles, source=f"fitted without {g}"),
                                         catalog, profiles)
            except ValueError:  # every single-GPU row is of this generation: nothing else to fit on
                shared = replace(Efficiency(), source=f"defaults (no single-GPU row outside {g} to fit on)")
        fits[g] = fit_generation_scale(everything, shared, catalog, profiles, exclude=g)
    return fits


def generation(m: MappedRow, catalog: Catalog | None = None) -> str:
    """The GPU generation a row is held out by: the catalog's architecture family ("Volta",
    "Ampere", "Hopper"), so that two cards of one generation (H100 and GH200, A100 and RTX 3090)
    are never fitted on each other; the name's first part ("V100") for a GPU without one."""
    if catalog is not None and catalog.has(m.row.gpu):
        return catalog.get(m.row.gpu).generation
    return m.row.gpu.split("-")[0]


def main() -> None:
    """Fit on all usable published rows and write the shipped constants."""
    from gpuwise.hardware.catalog import load_catalog
    from gpuwise.predict.published import load_published
    from gpuwise.validate import mapped_rows, other_shipped_rows  # validate builds on this module: imported here

    catalog = load_catalog()
    profiles = ProfileCache()
    mapped, _ = mapped_rows(load_published(), catalog, profiles)  # read as validate reads them (FP32 as they ran)
    others = [m for *_, rows in other_shipped_rows(catalog, profiles) for m in rows]
    eff = fit(mapped, catalog, profiles, source="fitted on the published NVIDIA DeepLearningExamples rows")
    eff = fit_step_spread(mapped, eff, catalog, profiles)
    eff = fit_generation_scale([*mapped, *others], eff, catalog, profiles)
    row_spread, source_spread = source_spreads([*mapped, *others], eff, catalog, profiles)
    print(f"generation scales' spreads, measured (fit_generation_scale takes {ROW_SPREAD} and {SOURCE_SPREAD}): "
          f"rows about their source {row_spread:.3f}, sources about their generation {source_spread:.3f}")
    eff = fit_attention(usable_llm_runs(catalog), eff, catalog, profiles)
    save(eff, shipped_file(FITTED_FILE))
    print(json.dumps(asdict(eff), indent=2))


if __name__ == "__main__":
    main()
