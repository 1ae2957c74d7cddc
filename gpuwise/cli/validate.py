"""``gpuwise validate``: predictions against published measurements, held out by GPU generation."""

from __future__ import annotations

import json
import math
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from gpuwise.cli.app import DB_OPTION, app, user_errors
from gpuwise.cli.plan import CATALOG_OPTION
from gpuwise.validate import ErrorStats, Validation, validate


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:.1f}%"


@app.command("validate")
@user_errors
def validate_command(
    rows: bool = typer.Option(False, "--rows", help="Also list every row and every skipped row."),
    published: list[Path] = typer.Option(
        [], "--published", metavar="CSV",
        help="More published measurements, in the shipped file's columns (repeatable); fitted on and validated "
        "like the shipped rows, each GPU generation held out.",
    ),
    catalog: Path | None = CATALOG_OPTION,
    db: Path | None = DB_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Compare predictions with published measurements (held-out error) and with your stored measurements."""
    from gpuwise.hardware.catalog import load_catalog

    result = validate(load_catalog(catalog), published=published, store_path=db)
    if as_json:
        print(json.dumps(_to_dict(result), indent=2))
    else:
        render(result, Console(width=140), rows)


def _stats_dict(s: ErrorStats) -> dict[str, float | int]:
    return {"count": s.count, "median_abs_error": s.median, "p90_abs_error": s.p90}


def _to_dict(v: Validation) -> dict[str, object]:
    return {
        "overall": _stats_dict(v.overall),
        "by_gpu": {k: _stats_dict(s) for k, s in v.by_gpu.items()},
        "by_workload": {k: _stats_dict(s) for k, s in v.by_workload.items()},
        "by_family": {k: _stats_dict(s) for k, s in v.by_family.items()},
        "by_gpu_count": {k: _stats_dict(s) for k, s in v.by_gpu_count.items()},
        "cross_gpu": {k: _stats_dict(s) for k, s in v.cross_gpu.items()},
        "rows": [
            {"line": c.row.line, "model": c.row.model, "workload": c.workload, "gpu": c.row.gpu,
             "num_gpus": c.row.num_gpus, "precision": c.row.precision, "batch": c.row.batch_per_gpu,
             "measured": c.row.throughput, "predicted": c.predicted, "unit": c.row.unit, "error": c.error,
             "fitted_without": c.fitted_without}
            for c in v.rows
        ],
        "skipped": [{"line": r.line, "model": r.model, "gpu": r.gpu, "reason": why} for r, why in v.skipped],
        "fits": {k: vars(e) for k, e in v.fits.items()},
        "published_files": list(v.files),
        "local": {
            "store": v.store,
            "by_device": {k: _stats_dict(s) for k, s in v.by_device.items()},
            "rows": [
                {"id": c.result.id, "origin": c.result.origin, "workload": c.result.workload,
                 "device": c.device, "batch": c.result.batch_size, "precision": c.result.precision,
                 "measured_step_s": c.result.timing.median_s, "predicted_step_s": c.predicted_step_s,
                 "error": c.error}
                for c in v.local
            ],
            "skipped": [{"id": r.id, "workload": r.workload, "device": r.device_name, "reason": why}
                        for r, why in v.local_skipped],
        },
    }


def render(v: Validation, console: Console, show_rows: bool) -> None:
    extra = f" and {', '.join(v.files)}" if v.files else ""
    console.print(
        f"[bold]held-out validation[/bold] on {v.overall.count} published rows (NVIDIA DeepLearningExamples{extra}; "
        f"{len(v.skipped)} rows skipped and {sum(c.row.suspect for c in v.rows)} marked SUSPECT kept out of the "
        "statistics, see --rows): each GPU generation is predicted by constants fitted without it. The "
        "published runs used tuned containers (DALI, channels-last, fused optimizers but for GNMT)."
    )
    table = Table(title="|predicted - measured| / measured, absolute throughput", title_justify="left")
    for col in ("group", "rows", "median", "p90"):
        table.add_column(col, justify="left" if col == "group" else "right")
    table.add_row("[bold]all[/bold]", str(v.overall.count), _pct(v.overall.median), _pct(v.overall.p90))
    for name, s in v.by_gpu.items():
        table.add_row(f"GPU {name}", str(s.count), _pct(s.median), _pct(s.p90))
    for name, s in v.by_family.items():
        table.add_row(f"family {name}", str(s.count), _pct(s.median), _pct(s.p90))
    for name, s in v.by_workload.items():
        table.add_row(f"workload {name}", str(s.count), _pct(s.median), _pct(s.p90))
    for name, s in v.by_gpu_count.items():
        table.add_row(name, str(s.count), _pct(s.median), _pct(s.p90))
    console.print(table)
    cross = Table(title="cross-GPU: predict one GPU from a measurement on the other", title_justify="left")
    for col in ("method", "pairs", "median error", "p90 error"):
        cross.add_column(col, justify="left" if col == "method" else "right")
    for name, s in v.cross_gpu.items():
        cross.add_row(name, str(s.count), _pct(s.median), _pct(s.p90))
    console.print(cross)
    if show_rows:
        rows = Table(title="rows")
        for col in ("line", "model", "GPU", "n", "precision", "batch", "measured", "predicted", "error"):
            rows.add_column(col)
        for c in v.rows:
            rows.add_row(c.row.line, c.row.model, c.row.gpu, str(c.row.num_gpus), c.row.precision,
                         str(c.row.batch_per_gpu), f"{c.row.throughput:g} {c.row.unit}", f"{c.predicted:.4g}",
                         _pct(c.error))
        console.print(rows)
        for r, why in v.skipped:
            console.print(f"skipped line {r.line}: {r.model} on {r.gpu}: {why}")
    if v.store is not None:
        render_local(v, console, show_rows)


def render_local(v: Validation, console: Console, show_rows: bool) -> None:
    if not v.local and not v.local_skipped:
        console.print(f"local results store ({v.store}): no measurements yet; `gpuwise bench WORKLOAD` adds one.")
        return
    table = Table(
        title=f"your measurements (results store {v.store}): measured vs predicted step, error on throughput",
        title_justify="left",
    )
    for col in ("device", "measurements", "median", "p90"):
        table.add_column(col, justify="left" if col == "device" else "right")
    for name, s in v.by_device.items():
        table.add_row(name, str(s.count), _pct(s.median), _pct(s.p90))
    console.print(table)
    console.print(f"{len(v.local)} measurements predicted, {len(v.local_skipped)} not (see --rows). The CPU "
                  "model's constants were fitted on the development machine's benches, the GPU model's on the "
                  "published rows; a prediction for the CPU those benches ran on is not held out.")
    if show_rows:
        rows = Table(title="your measurements")
        for col in ("id", "origin", "workload", "device", "batch", "precision", "measured", "predicted", "error"):
            rows.add_column(col)
        for c in v.local:
            r = c.result
            rows.add_row(str(r.id), r.origin, r.workload, c.device, str(r.batch_size), r.precision,
                         f"{1e3 * r.timing.median_s:.1f} ms", f"{1e3 * c.predicted_step_s:.1f} ms", _pct(c.error))
        console.print(rows)
        for r, why in v.local_skipped:
            console.print(f"not predicted: result {r.id} ({r.workload} on {r.device_name}): {why}")
