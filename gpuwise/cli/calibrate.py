"""``gpuwise calibrate``: measure and store the ceilings of this machine's devices."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from gpuwise.cli.app import DB_OPTION, QUIET_OPTION, app, user_errors
from gpuwise.cli.format import console
from gpuwise.cli.progress import working
from gpuwise.records import Ceilings


@app.command("calibrate")
@user_errors
def calibrate_command(
    device: str = typer.Option(
        None, "--device", "--devices", "-d", help="cpu, cuda or cuda:N [default: every local device]."
    ),
    quick: bool = typer.Option(False, "--quick", help="Smaller sizes, fewer repetitions: seconds, less exact."),
    db: Path | None = DB_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output, units in field names."),
    quiet: bool = QUIET_OPTION,
) -> None:
    """Measure each device's dense matmul rate per dtype and its memory bandwidth; store them.

    bench reads the stored ceilings for MFU (measuring them on first use if this was never run).
    """
    with working("loading torch", quiet=quiet):
        from gpuwise.bench.calibrate import calibrate
        from gpuwise.hardware.local import available_devices, check_device, device_name, machine_key
        from gpuwise.store import open_store

        devices = [check_device(device)] if device is not None else available_devices()
        machine = machine_key()
        measured = []
    with open_store(db) as store, working("measuring", quiet=quiet) as say:
        for d in devices:
            say(f"measuring {d} ({device_name(d)}): dense matmul per dtype, then memory bandwidth")
            ceilings = calibrate(d, quick=quick)
            store.put_ceilings(ceilings, machine)
            measured.append(ceilings)
        path = store.path
    if as_json:
        print(json.dumps([{**asdict(c), "machine": machine} for c in measured], indent=2))
    else:
        render(measured, console())
        print(f"stored in {path}")


def render(measured: list[Ceilings], console: Console) -> None:
    from gpuwise.bench.calibrate import CUDA_DTYPES

    dtypes = [d for d in CUDA_DTYPES if any(d in c.matmul_tflops for c in measured)]
    table = Table(title="measured device ceilings: dense matmul TFLOP/s per dtype (2 FLOPs per multiply-add) and "
                        "memory GB/s (copy = read + write)", title_justify="left")
    table.add_column("device")
    for dtype in dtypes:
        table.add_column(dtype, justify="right")
    table.add_column("GB/s", justify="right")
    table.add_column("measured (UTC)")
    for c in measured:
        rates = [f"{c.matmul_tflops[d]:.3g}" if d in c.matmul_tflops else "" for d in dtypes]
        when = c.measured_at.replace("T", " ").removesuffix("+00:00")
        table.add_row(f"{c.device} ({c.device_name})", *rates, f"{c.memory_gbps:.1f}", when)
    console.print(table)
