"""``gpuwise workloads``: the zoo, read from the shipped index (no torch, no model built)."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import typer
from rich import box
from rich.table import Table

from gpuwise.cli.app import app, user_errors
from gpuwise.cli.format import console, count, is_narrow, params_short

# Written from the registry by `python -m gpuwise.workloads.index`; a test keeps the two equal.
INDEX_PACKAGE, INDEX_FILE = "gpuwise.data", "workloads.json"


@app.command("workloads")
@user_errors
def workloads_command(
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List the workloads gpuwise knows: family, parameters, sample unit, default batch and shape."""
    rows = zoo()
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    out = console()
    narrow = is_narrow(out)
    table = Table(title="gpuwise workloads (name your own as path/to/file.py:factory)", title_justify="left",
                  box=box.SIMPLE_HEAD if narrow else box.HEAVY_HEAD, pad_edge=not narrow)
    columns = ("name", "family", "parameters", "batch", "shape") if narrow else (
        "name", "family", "parameters", "unit", "batch", "shape", "what")
    for col in columns:
        table.add_column(col, justify="right" if col in ("parameters", "batch") else "left",
                         no_wrap=col in ("name", "parameters", "shape"))
    for r in rows:
        shape_text = f"seq {r['seq_len']}" if r["seq_len"] else f"{r['image_size']}px" if r["image_size"] else ""
        params = params_short(r["params"]) if narrow else count(r["params"])
        cells = {"name": r["name"], "family": r["family"], "parameters": params, "unit": r["sample_unit"],
                 "batch": str(r["default_batch_size"]), "shape": shape_text, "what": r["summary"]}
        table.add_row(*(cells[c] for c in columns))
    out.print(table)
    if narrow:
        out.print("each one's sample unit, exact parameters and what it is: a wider terminal, or --json")


def zoo() -> list[dict[str, Any]]:
    """The shipped index of the registry's workloads."""
    rows: list[dict[str, Any]] = json.loads(resources.files(INDEX_PACKAGE).joinpath(INDEX_FILE).read_text())
    return rows
