"""``gpuwise validate``: predictions against published measurements, held out by GPU generation."""

from __future__ import annotations

import json
import math

import typer
from rich.console import Console
from rich.table import Table

from gpuwise.cli.app import app, user_errors
from gpuwise.validate import ErrorStats, Validation, validate


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:.1f}%"


@app.command("validate")
@user_errors
def validate_command(
    rows: bool = typer.Option(False, "--rows", help="Also list every row and every skipped row."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Compare predictions with the published measurements shipped with gpuwise (held-out error)."""
    from gpuwise.hardware.catalog import load_catalog

    result = validate(load_catalog())
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
        "by_gpu_count": {k: _stats_dict(s) for k, s in v.by_gpu_count.items()},
        "cross_gpu": {k: _stats_dict(s) for k, s in v.cross_gpu.items()},
        "rows": [
            {"line": c.row.index, "model": c.row.model, "workload": c.workload, "gpu": c.row.gpu,
             "num_gpus": c.row.num_gpus, "precision": c.row.precision, "batch": c.row.batch_per_gpu,
             "measured": c.row.throughput, "predicted": c.predicted, "unit": c.row.unit, "error": c.error,
             "fitted_without": c.fitted_without}
            for c in v.rows
        ],
        "skipped": [{"line": r.index, "model": r.model, "gpu": r.gpu, "reason": why} for r, why in v.skipped],
        "fits": {k: vars(e) for k, e in v.fits.items()},
    }


def render(v: Validation, console: Console, show_rows: bool) -> None:
    console.print(
        f"[bold]held-out validation[/bold] on {v.overall.count} published rows (NVIDIA DeepLearningExamples; "
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
            rows.add_row(str(c.row.index), c.row.model, c.row.gpu, str(c.row.num_gpus), c.row.precision,
                         str(c.row.batch_per_gpu), f"{c.row.throughput:g} {c.row.unit}", f"{c.predicted:.4g}",
                         _pct(c.error))
        console.print(rows)
        for r, why in v.skipped:
            console.print(f"skipped line {r.index}: {r.model} on {r.gpu}: {why}")
