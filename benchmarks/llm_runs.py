"""Predicted against published LLM training runs (gpuwise/data/published_llm_runs.csv).

Each run that gpuwise can express (a zoo decoder, bf16 or FP8 linear layers, FSDP or DDP, activation
checkpointing none, op-level selective or full, torch.compile on or off) is predicted with ``gpuwise
predict``'s own code path and the shipped constants: tokens/s per GPU, and the peak memory per GPU where
the source publishes it. Every other row is listed with the reason it is skipped.

The shipped constants include a fused attention kernel's efficiency, pooled and per GPU generation,
fitted on these same runs (``gpuwise.predict.fit.fit_attention``), so the shipped errors are in-sample.
The held-out column predicts each run with them refitted without its generation's runs (its generation
then takes its own kernel's published share of the tensor peak × the scale the others' runs give,
``FLASH_KERNEL_SHARE``), and without its generation's scale (``Efficiency.generation_scale``, fitted on the other
published files' rows of it): the error on a generation nothing of which was fitted on. The FP8 runs
(torchtitan's float8 converter) are fitted on by nothing: the attention fit reads the bf16 runs only
(``gpuwise.predict.fit.usable_llm_runs``), so their errors are out of sample.

    python benchmarks/llm_runs.py [--json benchmarks/results/llm_runs.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

from gpuwise.hardware.catalog import load_catalog
from gpuwise.plan import ProfileCache
from gpuwise.predict.fit import fit_attention, predict_llm_run, shipped_efficiency
from gpuwise.predict.published import LlmRun, load_llm_runs, map_llm_run
from gpuwise.predict.roofline import Efficiency


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write every row's numbers here")
    parser.add_argument("--csv", type=Path, help="a file of published runs with the same columns [default: shipped]")
    parser.add_argument("--attention-sweep", metavar="A,B,...",
                        help="instead: the errors with one attention efficiency for every generation, per value")
    parser.add_argument("--fp8-casts", choices=("fused", "written-out"), default="fused",
                        help="written-out: profile torchao's FP8 casts as eager PyTorch writes them (the trial "
                             "gpuwise.profile.float8 replaced) [default: fused, as gpuwise predicts]")
    args = parser.parse_args()
    if args.fp8_casts == "written-out":
        import contextlib

        import gpuwise.profile.float8

        gpuwise.profile.float8.fused_fp8_casts = contextlib.nullcontext  # type: ignore[assignment]
    if args.attention_sweep:
        sweep([float(v) for v in args.attention_sweep.split(",")], args.csv)
        return
    rows = load_llm_runs(args.csv)
    profiles = ProfileCache()
    catalog, shipped = load_catalog(), shipped_efficiency()
    results, skipped = [], []
    started = time.perf_counter()
    usable = [r for r in (map_llm_run(row) for row in rows)  # what the attention fit reads: the bf16 runs
              if not isinstance(r, str) and catalog.has(r.row.gpu) and not r.fp8]
    held_out_fits: dict[str, Efficiency] = {}
    for row in rows:
        run = map_llm_run(row)
        if isinstance(run, str):
            skipped.append({"line": row.line, "model": row.model, "gpu": row.gpu, "why": run})
            continue
        family = catalog.get(row.gpu).generation
        if family not in held_out_fits:
            scales = {g: s for g, s in shipped.generation_scale.items() if g != family}
            unseen = replace(shipped, generation_scale=scales)
            held_out_fits[family] = fit_attention(usable, unseen, catalog, profiles, exclude=family)
        held_out = held_out_fits[family]
        results.append(_predict(run, profiles, shipped) | {
            "generation": family, "held_out_error": _predict(run, profiles, held_out)["error"]})
        r = results[-1]
        print(f"line {r['line']:>3} {r['model']:<15} {r['num_gpus']:>4}× {r['gpu']:<15} "
              f"{'fp8 ' if r['fp8'] else 'bf16'} b{r['batch']} s{r['seq_len']} "
              f"{r['strategy']:<4} ac={r['activation_checkpointing']:<9} compile={'yes' if r['compile'] else 'no ':<3} "
              f"published {r['published_tokens_per_gpu_s']:>7,.0f} tok/s/GPU, predicted "
              f"{r['predicted_tokens_per_gpu_s'] or 0:>7,.0f} ({_pct(r['error'])}; "
              f"held out {_pct(r['held_out_error'])})"
              + (f"; memory {r['published_memory_gib']} GiB published, {r['predicted_memory_gib']:.1f} predicted"
                 if r["published_memory_gib"] else ""), flush=True)
    fp8 = [abs(r["error"]) for r in results if r["error"] is not None and r["fp8"]]
    results_bf16 = [r for r in results if not r["fp8"]]
    errors = [abs(r["error"]) for r in results_bf16 if r["error"] is not None]
    held = [abs(r["held_out_error"]) for r in results_bf16 if r["held_out_error"] is not None]
    unfit = [r for r in results if not r["fits"]]
    summary = {
        "rows_predicted": len(results), "rows_skipped": len(skipped), "not_fitting": len(unfit),
        "median_abs_error": statistics.median(errors) if errors else None, "worst_abs_error": max(errors, default=None),
        "signed_median_error": statistics.median(r["error"] for r in results_bf16 if r["error"] is not None)
        if errors else None,
        "memory_errors": [r["memory_error"] for r in results if r["memory_error"] is not None],
        "held_out_median_abs_error": statistics.median(held) if held else None,
        "held_out_worst_abs_error": max(held, default=None),
        "fp8_runs": len(fp8), "fp8_median_abs_error": statistics.median(fp8) if fp8 else None,
        "fp8_worst_abs_error": max(fp8, default=None),
        "fp8_signed_errors": [r["error"] for r in results if r["error"] is not None and r["fp8"]],
        "flash_attention": shipped.flash_attention, "attention": shipped.attention,
    }
    by_generation: dict[str, list[float]] = {}
    for r in results_bf16:
        if r["error"] is not None:
            by_generation.setdefault(str(r["generation"]), []).append(float(r["error"]))
    print(f"\n{len(results)} runs predicted, {len(skipped)} skipped, {len(unfit)} predicted not to fit")
    print(f"bf16 ({len(results_bf16)} runs): |error| median {_pct(summary['median_abs_error'])}, worst "
          f"{_pct(summary['worst_abs_error'])}, signed median {_pct(summary['signed_median_error'])}")
    print(f"held out by generation (attention refitted without its runs, no scale of its own): |error| median "
          f"{_pct(summary['held_out_median_abs_error'])}, worst {_pct(summary['held_out_worst_abs_error'])}")
    for family, errs in sorted(by_generation.items()):
        print(f"  {family}: {len(errs)} runs, signed median {_pct(statistics.median(errs))}, flash attention "
              f"{shipped.flash_attention.get(family, shipped.attention):.3f}")
    if fp8:
        print(f"FP8 linear layers ({len(fp8)} runs, fitted on by nothing): |error| median "
              f"{_pct(summary['fp8_median_abs_error'])}, worst {_pct(summary['fp8_worst_abs_error'])}")
    if summary["memory_errors"]:
        print("memory, predicted vs published: " + ", ".join(_pct(e) for e in summary["memory_errors"]))
    for s in skipped:
        print(f"skipped line {s['line']} ({s['model']}, {s['gpu']}): {s['why']}")
    elapsed = time.perf_counter() - started
    print(f"\n{date.today()} · {platform.processor() or platform.machine()} · {elapsed:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "rows": results, "skipped": skipped,
                                         "date": str(date.today()), "seconds": round(elapsed)}, indent=2) + "\n")


def sweep(values: list[float], csv: Path | None) -> None:
    """How the runs' errors move with one flash-attention efficiency for all generations (the per-generation
    values removed): what showed that the A100 and H100 runs want different values."""
    runs = [r for r in (map_llm_run(row) for row in load_llm_runs(csv)) if not isinstance(r, str)]
    catalog, shipped, profiles = load_catalog(), shipped_efficiency(), ProfileCache()
    for value in values:
        eff = replace(shipped, attention=value, flash_attention={})
        results = [_predict(run, profiles, eff) | {"generation": catalog.get(run.row.gpu).generation}
                   for run in runs]
        errors = [float(r["error"]) for r in results if r["error"] is not None]  # type: ignore[arg-type]
        by: dict[str, list[float]] = {}
        for r in results:
            if r["error"] is not None:
                by.setdefault(str(r["generation"]), []).append(float(r["error"]))  # type: ignore[arg-type]
        print(f"attention {value:.2f}: |error| median {_pct(statistics.median(abs(e) for e in errors))}, worst "
              f"{_pct(max(abs(e) for e in errors))}; signed median by generation: "
              + ", ".join(f"{g} {_pct(statistics.median(v))}" for g, v in sorted(by.items())), flush=True)


def _predict(run: LlmRun, profiles: ProfileCache, eff: Efficiency) -> dict[str, object]:
    row = run.row
    option = predict_llm_run(run, eff, profiles)
    fits = option.fits and not option.batch_reduced
    tokens = option.step.tokens_per_s / row.num_gpus if option.step and option.step.tokens_per_s else None
    memory_gib = option.memory_per_gpu_bytes / 2**30
    return {
        "line": row.line, "model": row.model, "gpu": row.gpu, "num_gpus": row.num_gpus, "batch": row.batch_per_gpu,
        "seq_len": run.seq_len, "strategy": run.strategy, "activation_checkpointing": run.activation_checkpointing,
        "compile": run.compile, "fp8": run.fp8, "fits": fits, "planned_strategy": option.strategy,
        "published_tokens_per_gpu_s": run.tokens_per_gpu_s, "predicted_tokens_per_gpu_s": tokens,
        "error": tokens / run.tokens_per_gpu_s - 1 if tokens and fits else None,
        "published_memory_gib": run.memory_gib, "predicted_memory_gib": memory_gib,
        "memory_error": memory_gib / run.memory_gib - 1 if run.memory_gib else None,
        "source": row.source,
    }


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:+.0%}" if x < 0 else f"{x:.0%}"


if __name__ == "__main__":
    main()
