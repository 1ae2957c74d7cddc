"""``gpuwise validate``: predictions against published measurements, held out by GPU generation, or
(``--frozen``) your own measurements predicted by the shipped constants."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from gpuwise.cli.app import DB_OPTION, QUIET_OPTION, app, user_errors
from gpuwise.cli.format import console, is_narrow
from gpuwise.cli.plan import CATALOG_OPTION
from gpuwise.cli.progress import working
from gpuwise.units import number

if TYPE_CHECKING:
    from gpuwise.validate import ErrorStats, Validation


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:.1f}%"


_SHORT = ("model", "peak", "bandwidth", "blend")  # the cross-GPU methods' narrow column heads


@app.command("validate")
@user_errors
def validate_command(
    rows: bool = typer.Option(False, "--rows", help="Also list every row and every skipped row."),
    published: list[Path] = typer.Option(
        [], "--published", metavar="CSV",
        help="More published measurements, in the shipped file's columns (repeatable); fitted on and validated "
        "like the shipped rows, each GPU generation held out (with --frozen: the only rows predicted).",
    ),
    frozen: bool = typer.Option(
        False, "--frozen",
        help="Predict the --published rows with the shipped constants, fitting nothing: every row, its error, "
        "and the baselines on the cross-GPU pairs among them. The results store is read only if --db is given.",
    ),
    include_shipped: bool = typer.Option(
        False, "--include-shipped", help="With --frozen, predict the shipped published rows too."
    ),
    catalog: Path | None = CATALOG_OPTION,
    db: Path | None = DB_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    quiet: bool = QUIET_OPTION,
) -> None:
    """Compare predictions with published measurements (held-out error by GPU generation, over every shipped
    file, against three rules of thumb) and with your stored measurements."""
    from gpuwise.errors import GpuwiseError
    if include_shipped and not frozen:
        raise GpuwiseError("--include-shipped goes with --frozen (without it the shipped rows are always used)")
    if db is not None and db.exists():  # a bad --db fails now, not after minutes of fitting (read only)
        from gpuwise.store import open_store

        open_store(db, read_only=True).close()
    with working("loading torch and the published measurements", quiet=quiet) as say:
        from gpuwise.hardware.catalog import load_catalog
        from gpuwise.validate import validate, validate_frozen

        if frozen:
            say("predicting each row with the shipped constants")
            result = validate_frozen(load_catalog(catalog), published=published, include_shipped=include_shipped,
                                     store_path=db, local=db is not None)
        else:
            say("fitting the constants with each GPU generation held out, then predicting its rows (minutes)")
            result = validate(load_catalog(catalog), published=published, store_path=db)
    if as_json:
        print(json.dumps(_to_dict(result), indent=2))
    else:
        render(result, console(), rows)


def _stats_dict(s: ErrorStats) -> dict[str, float | int | None]:
    """None, not NaN, where there is nothing to take a median of: NaN is not JSON."""
    def value(x: float) -> float | None:
        return None if math.isnan(x) else x

    return {"count": s.count, "median_abs_error": value(s.median), "p90_abs_error": value(s.p90)}


def _to_dict(v: Validation) -> dict[str, object]:
    return {
        "mode": "frozen" if v.frozen else "held-out",
        "constants": {k: e.source for k, e in v.fits.items()},
        "shipped_rows_included": v.include_shipped,
        "overall": _stats_dict(v.overall),
        "by_gpu": {k: _stats_dict(s) for k, s in v.by_gpu.items()},
        "by_workload": {k: _stats_dict(s) for k, s in v.by_workload.items()},
        "by_family": {k: _stats_dict(s) for k, s in v.by_family.items()},
        "by_gpu_count": {k: _stats_dict(s) for k, s in v.by_gpu_count.items()},
        "by_generation": {k: _stats_dict(s) for k, s in v.by_generation.items()},
        "cross_gpu": {k: _stats_dict(s) for k, s in v.cross_gpu.items()},
        "cross_gpu_by_generation": {
            g: {k: _stats_dict(s) for k, s in methods.items()} for g, methods in v.cross_gpu_by_generation.items()
        },
        "rows": [
            {"line": c.row.line, "model": c.row.model, "workload": c.workload, "gpu": c.row.gpu,
             "generation": c.generation, "num_gpus": c.row.num_gpus, "precision": c.row.precision,
             "batch": c.row.batch_per_gpu, "measured": c.row.throughput, "predicted": c.predicted,
             "unit": c.row.unit, "error": c.error, "suspect": c.row.suspect, "fitted_without": c.fitted_without}
            for c in v.rows
        ],
        "skipped": [{"line": r.line, "model": r.model, "gpu": r.gpu, "precision": r.precision, "unit": r.unit,
                     "reason": why} for r, why in v.skipped],
        "pairs": [
            {"workload": p.workload, "settings": p.settings, "from_gpu": p.from_gpu, "to_gpu": p.to_gpu,
             "generation": p.generation, "measured": p.measured, "predicted": p.predictions(), "error": p.errors()}
            for p in v.pairs
        ],
        "fits": {k: vars(e) for k, e in v.fits.items()},
        "other_files": [
            {"generation": n.generation, "source": n.source, "file": n.file, "fitted_without": n.fitted_without,
             "absolute": _stats_dict(n.absolute), "cross_gpu": {k: _stats_dict(s) for k, s in n.cross_gpu.items()}}
            for n in v.other_files
        ],
        "every_generation": {
            g: {"sources": list(c.sources), "absolute": _stats_dict(c.absolute),
                "cross_gpu": {k: _stats_dict(s) for k, s in c.cross_gpu.items()}}
            for g, c in v.every_generation.items()
        },
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


def _table(console: Console, title: str, *, stacked: bool = False) -> Table:
    """A table in the other commands' style: heavy head when wide; a simple head without edge padding when narrow
    (below ``NARROW_BELOW_COLUMNS``), where the wide tables' long labels are stacked or shortened to fit 80.
    ``stacked``: its narrow rows are two lines each, kept apart by a rule."""
    narrow = is_narrow(console)
    return Table(title=title, title_justify="left", box=box.SIMPLE_HEAD if narrow else box.HEAVY_HEAD,
                 pad_edge=not narrow, show_lines=narrow and stacked)


def render(v: Validation, console: Console, show_rows: bool) -> None:
    from gpuwise.validate import DLE_SOURCE

    suspect = sum(c.row.suspect for c in v.rows)
    if v.frozen:
        files = ", ".join([*v.files, *(["the shipped rows"] if v.include_shipped else [])])
        console.print(
            f"[bold]frozen validation[/bold] of {files}: {len(v.rows)} rows predicted with the shipped constants "
            f"({v.fits['shipped'].source}), nothing fitted; {len(v.skipped)} rows skipped (listed below), "
            f"{suspect} marked SUSPECT listed but kept out of the statistics."
        )
    else:
        extra = f" and {', '.join(v.files)}" if v.files else ""
        others = sum(o.absolute.count for o in v.other_files)
        also = f", and {others} rows of the other shipped files" if others else ""
        console.print(
            f"[bold]held-out validation[/bold] on {v.overall.count} published rows ({DLE_SOURCE}"
            f"{extra}; {len(v.skipped)} rows skipped and {suspect} marked SUSPECT kept out of the "
            f"statistics, see --rows){also}: each GPU generation is predicted by constants fitted without it. "
            f"The {DLE_SOURCE} runs used tuned containers (DALI, channels-last, fused optimizers but for GNMT "
            "and SQuAD's FP32/TF32 runs)."
        )
    if v.every_generation:
        render_every_generation(v, console)
    table = _table(console, "|predicted - measured| / measured, absolute throughput (the model)"
                   + ("" if v.frozen else f", {DLE_SOURCE}"))
    for col in ("group", "rows", "median", "p90"):
        table.add_column(col, justify="left" if col == "group" else "right")
    table.add_row("[bold]all[/bold]", str(v.overall.count), _pct(v.overall.median), _pct(v.overall.p90))
    groups = (("generation ", v.by_generation), ("GPU ", v.by_gpu), ("family ", v.by_family),
              ("workload ", v.by_workload), ("", v.by_gpu_count))
    for prefix, by in groups:
        for name, s in by.items():
            table.add_row(f"{prefix}{name}", str(s.count), _pct(s.median), _pct(s.p90))
    console.print(table)
    render_cross(v, console)
    if v.other_files:
        render_other_files(v, console)
    if show_rows or v.frozen:
        render_rows(v, console)
    if v.store is not None:
        render_local(v, console, show_rows)


def render_cross(v: Validation, console: Console) -> None:
    """Every method on the same pairs, overall and by the generation predicted: median / p90 of |error|. Narrow:
    the methods by short names (spelt out below the table), the median above the p90 in each cell."""
    from gpuwise.validate import METHODS

    narrow = is_narrow(console)
    held = "" if v.frozen else ", the model fitted without B's generation"
    cross = _table(console, f"cross-GPU: predict GPU B from a measurement on GPU A (median / p90 of |error|{held})",
                   stacked=True)
    short = dict(zip(METHODS, _SHORT, strict=True))
    cross.add_column("generation\nof B" if narrow else "generation of B")
    cross.add_column("pairs", justify="right")
    if narrow:
        cross.add_column("")
    for name in METHODS:
        cross.add_column(short[name] if narrow else name, justify="right")

    cross.add_row("[bold]all[/bold]", *_cross_cells(v.cross_gpu, narrow))
    for generation, by_method in v.cross_gpu_by_generation.items():
        cross.add_row(generation, *_cross_cells(by_method, narrow))
    console.print(cross)
    if narrow:
        console.print("; ".join(f"{head}: {name}" for name, head in short.items() if head != name))


def _cross_cells(by_method: dict[str, ErrorStats], narrow: bool) -> list[str]:
    """The pair count, then median / p90 of each method (narrow: the median above the p90)."""
    from gpuwise.validate import METHODS

    count = next(iter(by_method.values())).count if by_method else 0
    sep = "\n" if narrow else " / "
    stats = [f"{_pct(by_method[m].median)}{sep}{_pct(by_method[m].p90)}" if m in by_method else "n/a"
             for m in METHODS]
    return [str(count), *(["median\np90"] if narrow else []), *stats]


def render_every_generation(v: Validation, console: Console) -> None:
    """Every generation over every shipped file, each row and pair predicted by constants fitted without the
    generation predicted: absolute error, then every cross-GPU method on the same pairs; the last line all of
    them."""
    from gpuwise.validate import ALL

    _generation_table(console, "every GPU generation held out, over every shipped file (median / p90 of |error|; "
                               "each row and pair predicted by constants fitted without its generation)",
                      [(f"[bold]{g}[/bold]" if g == ALL else g, None, c.absolute, c.cross_gpu)
                       for g, c in v.every_generation.items()])
    files = "; ".join(f"{g}: {', '.join(c.sources)}" for g, c in v.every_generation.items() if g != ALL)
    console.print(f"rows from {files}.")


def render_other_files(v: Validation, console: Console) -> None:
    """The other shipped files' rows by generation, each predicted by the constants fitted without its generation:
    absolute error and every cross-GPU method on the pairs predicting it."""
    _generation_table(console, "the other shipped files, by generation: constants fitted without it (median / p90 "
                               "of |error|; each file's rows with the shipped constants: validate --frozen "
                               "--published FILE)",
                      [(n.generation, n.source, n.absolute, n.cross_gpu) for n in v.other_files])


def _generation_table(console: Console, title: str,
                      lines: list[tuple[str, str | None, ErrorStats, dict[str, ErrorStats]]]) -> None:
    """One line per generation (and source, where the lines give one): its rows' absolute error, then every
    cross-GPU method on the pairs predicting it. Narrow: the rows above the pairs, the generation above the
    source, the median above the p90."""
    from gpuwise.validate import METHODS

    narrow = is_narrow(console)
    sources = any(source is not None for _, source, _, _ in lines)
    table = _table(console, title, stacked=True)
    table.add_column("generation\nsource" if narrow and sources else "generation",
                     min_width=10 if narrow and sources else None)
    if sources and not narrow:
        table.add_column("source")
    table.add_column("rows\npairs" if narrow else "rows", justify="right")
    table.add_column("absolute", justify="right")
    table.add_column("" if narrow else "pairs", justify="right" if not narrow else "left")
    for name, head in zip(METHODS, _SHORT, strict=True):
        table.add_column(head if narrow else name, justify="right", min_width=len(head) if narrow else None)
    for label, source, absolute, cross in lines:
        pairs, *cells = _cross_cells(cross, narrow)
        if narrow:
            table.add_row(label if source is None else f"{label}\n{source}", f"{absolute.count}\n{pairs}",
                          f"{_pct(absolute.median)}\n{_pct(absolute.p90)}", *cells)
        else:
            table.add_row(label, *([] if source is None else [source]), str(absolute.count),
                          f"{_pct(absolute.median)} / {_pct(absolute.p90)}", pairs, *cells)
    console.print(table)


def render_rows(v: Validation, console: Console) -> None:
    """Every predicted row. Narrow: the GPU under the model, the batch under the precision, the prediction
    under the measurement, each pair in one column."""
    narrow = is_narrow(console)
    rows = _table(console, "rows (error = predicted / measured - 1)", stacked=True)
    columns = ("line", "model\nGPUs", "precision\nbatch", "measured\npredicted", "error") if narrow else (
        "line", "model", "GPU", "n", "precision", "batch", "measured", "predicted", "error")
    for col in columns:
        rows.add_column(col, overflow="fold")
    for c in v.rows:
        r = c.row
        mark = " SUSPECT" if r.suspect else ""
        error = f"{100 * c.error:+.1f}%{mark}"
        if narrow:
            rows.add_row(r.line, f"{r.model}\n{r.num_gpus}× {r.gpu}", f"{r.precision}\nbatch {r.batch_per_gpu}",
                         f"{number(r.throughput)} {r.unit}\n{number(c.predicted)}", error)
        else:
            rows.add_row(r.line, r.model, r.gpu, str(r.num_gpus), r.precision, str(r.batch_per_gpu),
                         f"{number(r.throughput)} {r.unit}", number(c.predicted), error)
    console.print(rows)
    for r, why in v.skipped:
        console.print(f"skipped line {r.line}: {r.model} on {r.gpu}: {why}")


def render_local(v: Validation, console: Console, show_rows: bool) -> None:
    if not v.local and not v.local_skipped:
        console.print(f"local results store ({v.store}): no measurements yet; `gpuwise bench WORKLOAD` adds one.")
        return
    table = _table(console,
                   f"your measurements (results store {v.store}): measured vs predicted step, error on throughput")
    for col in ("device", "measurements", "median", "p90"):
        table.add_column(col, justify="left" if col == "device" else "right")
    for name, s in v.by_device.items():
        table.add_row(name, str(s.count), _pct(s.median), _pct(s.p90))
    console.print(table)
    console.print(f"{len(v.local)} measurements predicted, {len(v.local_skipped)} not (see --rows). The CPU "
                  "model's constants were fitted on the development machine's benches, the GPU model's on the "
                  "published rows; a prediction for the CPU those benches ran on is not held out.")
    if show_rows:
        narrow = is_narrow(console)
        rows = _table(console, "your measurements", stacked=True)
        columns = ("result", "workload\ndevice", "batch\nprecision", "step measured\npredicted", "error") \
            if narrow else ("id", "origin", "workload", "device", "batch", "precision", "measured", "predicted",
                            "error")
        for col in columns:
            rows.add_column(col, overflow="fold")
        for c in v.local:
            r = c.result
            measured, predicted = f"{1e3 * r.timing.median_s:.1f} ms", f"{1e3 * c.predicted_step_s:.1f} ms"
            if narrow:
                rows.add_row(f"#{r.id}\n{r.origin}", f"{r.workload}\n{c.device}", f"{r.batch_size}\n{r.precision}",
                             f"{measured}\n{predicted}", _pct(c.error))
            else:
                rows.add_row(str(r.id), r.origin, r.workload, c.device, str(r.batch_size), r.precision, measured,
                             predicted, _pct(c.error))
        console.print(rows)
        for r, why in v.local_skipped:
            console.print(f"not predicted: result {r.id} ({r.workload} on {r.device_name}): {why}")
