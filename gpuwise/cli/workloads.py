"""``gpuwise workloads``: the zoo."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from gpuwise.cli.app import app, user_errors
from gpuwise.cli.format import count
from gpuwise.workloads import list_workloads
from gpuwise.workloads.params import count_parameters


@app.command("workloads")
@user_errors
def workloads_command(
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List the workloads gpuwise knows: family, parameters, sample unit, default batch and shape."""
    rows: list[dict[str, Any]] = []
    for w in list_workloads():
        shape = w.default_shape
        rows.append(
            {
                "name": w.name,
                "family": w.family,
                "params": count_parameters(w),
                "sample_unit": w.sample_unit,
                "default_batch_size": w.default_batch_size,
                "seq_len": shape.seq_len,
                "image_size": shape.image_size,
                "summary": w.summary,
                "reference": w.reference,
            }
        )
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title="gpuwise workloads (name your own as path/to/file.py:factory)")
    for col in ("name", "family", "parameters", "unit", "batch", "shape", "what"):
        table.add_column(col, justify="right" if col in ("parameters", "batch") else "left")
    for r in rows:
        shape_text = f"seq {r['seq_len']}" if r["seq_len"] else f"{r['image_size']}px" if r["image_size"] else ""
        table.add_row(
            r["name"], r["family"], count(r["params"]), r["sample_unit"], str(r["default_batch_size"]),
            shape_text, r["summary"],
        )
    Console(width=160).print(table)
