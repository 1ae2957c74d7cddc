"""``gpuwise results``: what has been measured, from the results database."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from gpuwise.cli.app import DB_OPTION, app, user_errors
from gpuwise.cli.format import ABOVE_CEILING, NARROW_BELOW_COLUMNS, above_ceiling, console, gib, is_narrow, mfu_text
from gpuwise.records import BenchResult
from gpuwise.store import ENV_VAR, default_db_path, export_format, export_results, open_store


@app.command("results")
@user_errors
def results_command(
    workload: str = typer.Option(None, "--workload", "-w", metavar="NAME", help="Only this workload."),
    device: str = typer.Option(
        None, "--device", "--devices", "-d", metavar="DEVICE",
        help="Only this device: cpu, cuda:0, cuda (any GPU), or part of its name (h100).",
    ),
    db: Path | None = DB_OPTION,
    export: Path | None = typer.Option(None, "--export", metavar="FILE", help="Write FILE.csv or FILE.json."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output, as the export writes it."),
) -> None:
    """List stored benchmark results, newest first."""
    if export is not None:
        export_format(export)  # a bad suffix fails before anything is read
    if db is None and not os.environ.get(ENV_VAR) and not default_db_path().exists():
        print(f"no results yet in {default_db_path()}: run gpuwise bench WORKLOAD")  # a new user: nothing measured
        return
    with open_store(db, read_only=True) as store:
        results = store.results(workload=workload, device=device)
        num_stored = len(results) if workload is None and device is None else len(store.results())
        path = store.path
    if export is not None:
        export_results(results, export)
        print(f"wrote {len(results)} result{'s' if len(results) != 1 else ''} to {export}")
    if as_json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
    elif export is None:
        if results:
            render(results, console())
        elif num_stored == 0:
            print(f"no results yet in {path}: run gpuwise bench WORKLOAD")
        else:
            print(f"no results match the filters ({num_stored} stored in {path}): run gpuwise results to list them")


def render(results: list[BenchResult], console: Console) -> None:
    plural = "s" if len(results) != 1 else ""
    narrow = is_narrow(console)
    table = Table(title=f"{len(results)} benchmark result{plural}, newest first (times UTC, step time median)",
                  title_justify="left", box=box.SIMPLE_HEAD if narrow else box.HEAVY_HEAD, pad_edge=not narrow)
    columns = (
        "id", "when", "workload", "batch", "precision", "device", "median", "p10–p90",
        "samples/s", "TFLOP/s", "MFU", "peak mem", "torch",
    )
    shown = [c for c in columns if not narrow or c not in _WIDE_ONLY]
    for col in shown:
        left = col in ("when", "workload", "precision", "device", "torch")
        # workload and device names fold when the table is wider than the console
        wrap = col in ("workload", "device")
        table.add_column(col, justify="left" if left else "right", no_wrap=not wrap, overflow="fold",
                         min_width=_MIN_WIDTH.get(col))
    # how train ran the step where it was not one eager micro batch (fp8, compiled, checkpointing, ...), and train
    # runs that kept per-step metrics: a column each, or (narrow) a line each under the table
    settings = not narrow and any(_settings(r) for r in results)
    if settings:
        table.add_column("settings", justify="left", overflow="fold")
    logs = not narrow and any(r.log_path for r in results)
    if logs:
        table.add_column("logs", justify="left", overflow="fold")
    for r in results:
        t = r.timing
        link = ([_settings(r)] if settings else []) + ([_log_link(r.log_path)] if logs else [])
        cells = dict(zip(columns, (
            str(r.id),
            _when(r.created_at),
            r.workload,
            f"{r.batch_size}{' auto' if r.batch_size_auto else ''}",
            r.precision,
            r.device_name,
            _seconds(t.median_s),
            _seconds_range(t.p10_s, t.p90_s),
            f"{r.samples_per_s:,.1f}",
            f"{r.achieved_tflops:.2f}",
            mfu_text(r.mfu),
            gib(r.peak_memory_bytes),
            r.software.torch,
        ), strict=True))
        table.add_row(*(cells[c] for c in shown), *link)
    console.print(table)
    if not narrow and any(above_ceiling(r.mfu) for r in results):
        console.print(ABOVE_CEILING)
    if narrow:
        for r in results:
            if how := _settings(r):
                console.print(f"result {r.id} ran {how}")
            if r.log_path:
                console.print(Text.assemble(f"logs of result {r.id}: ", _log_link(r.log_path)))
        console.print(f"when, the spread, TFLOP/s, MFU, peak memory and torch version show from "
                      f"{NARROW_BELOW_COLUMNS} columns, and in --json")


# Left out of the narrow layout: the step's median and samples/s say how fast it ran.
_WIDE_ONLY = ("when", "p10–p90", "TFLOP/s", "MFU", "peak mem", "torch")
_MIN_WIDTH = {"workload": 10, "device": 14}


def _settings(r: BenchResult) -> str:
    """How a step ran beyond its precision and batch (train's run settings), "" for one eager micro batch."""
    parts = [f"{r.num_devices} processes"] if r.num_devices > 1 else []
    parts += ["fp8"] if r.fp8 else []
    parts += ["compiled"] if r.compiled else []
    parts += [f"{r.activation_checkpointing} checkpointing"] if r.activation_checkpointing != "none" else []
    parts += [f"accum {r.grad_accum}"] if r.grad_accum > 1 else []
    return ", ".join(parts)


def _log_link(path: str | None) -> Text | str:
    """The metrics file, as a link a terminal can open."""
    if not path:
        return ""
    return Text(path, style=f"link {Path(path).absolute().as_uri()}")


def _when(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return iso


def _seconds(value_s: float) -> str:
    return f"{value_s:.3f} s" if value_s >= 1 else f"{value_s * 1e3:.1f} ms"


def _seconds_range(low_s: float, high_s: float) -> str:
    if high_s >= 1:
        return f"{low_s:.3f}–{high_s:.3f} s"
    return f"{low_s * 1e3:.1f}–{high_s * 1e3:.1f} ms"
