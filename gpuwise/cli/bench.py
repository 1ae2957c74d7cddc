"""``gpuwise bench``: real training steps on the CPU and each GPU here, stored."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from gpuwise.bench.run import BenchConfig, BenchReport, bench_all
from gpuwise.cli.app import (
    CHECKPOINTING_OPTION,
    COMPILE_OPTION,
    DB_OPTION,
    IMAGE_SIZE_OPTION,
    OPTIMIZER_OPTION,
    PRECISION_OPTION,
    SEQ_LEN_OPTION,
    WORKLOAD_ARGUMENT,
    app,
    optimizer_option,
    positive_int,
    user_errors,
)
from gpuwise.cli.format import gib, si
from gpuwise.config import ActivationCheckpointing, Precision


@app.command("bench")
@user_errors
def bench_command(
    workload: str = WORKLOAD_ARGUMENT,
    device: list[str] = typer.Option(None, "--device", help="cpu, cuda, cuda:N; repeat for several [default: all]."),
    batch_size: str = typer.Option(None, "--batch-size", "-b", help="N, or 'auto' for the largest that fits."),
    precision: str = PRECISION_OPTION,
    optimizer: str = OPTIMIZER_OPTION,
    seq_len: str = SEQ_LEN_OPTION,
    image_size: str = IMAGE_SIZE_OPTION,
    steps: str = typer.Option("10", "--steps", help="Timed steps."),
    warmup: str = typer.Option("3", "--warmup", help="Untimed warm-up steps, discarded."),
    checkpointing: str = CHECKPOINTING_OPTION,
    compile: bool = COMPILE_OPTION,
    db: Path | None = DB_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Time real training steps (warm-up discarded, device synchronised) and store the results."""
    from gpuwise.hardware.local import available_devices, check_device

    auto = batch_size is not None and batch_size.strip().lower() == "auto"
    config = BenchConfig(
        workload=workload,
        batch_size=None if auto else positive_int(batch_size, "--batch-size"),
        auto_batch=auto,
        precision=Precision.parse(precision),
        optimizer=optimizer_option(optimizer, workload),
        seq_len=positive_int(seq_len, "--seq-len"),
        image_size=positive_int(image_size, "--image-size"),
        steps=_required_count(steps, "--steps"),
        warmup=_required_count(warmup, "--warmup"),
        activation_checkpointing=ActivationCheckpointing.parse(checkpointing),
        compile=compile,
    )
    devices = [check_device(d) for d in device] if device else available_devices()
    report = bench_all(config, devices, store_path=db)
    if as_json:
        print(json.dumps(
            {"results": [r.to_dict() for r in report.results], "speedup_over_cpu": report.speedup_over_cpu},
            indent=2,
        ))
    else:
        render(report, Console(width=140))


def render(report: BenchReport, console: Console) -> None:
    first = report.results[0]
    shape = f"seq {first.seq_len}" if first.seq_len else f"{first.image_size}px" if first.image_size else ""
    console.print(
        f"[bold]{first.workload}[/bold] · {first.precision} · {first.optimizer}{' · ' + shape if shape else ''}"
        f" · {first.timing.num_steps} timed steps after {first.timing.num_warmup} warm-up"
    )
    table = Table()
    for col in ("device", "batch", "step median", "p10–p90", "samples/s", "tokens/s",
                "TFLOP/s", "MFU", "peak memory", "stored as"):
        table.add_column(col, justify="left" if col == "device" else "right")
    for r in report.results:
        t = r.timing
        table.add_row(
            f"{r.device} ({r.device_name})",
            f"{r.batch_size}{' (auto)' if r.batch_size_auto else ''}",
            f"{t.median_s * 1e3:.1f} ms",
            f"{t.p10_s * 1e3:.1f}–{t.p90_s * 1e3:.1f} ms",
            f"{r.samples_per_s:.1f}",
            si(r.tokens_per_s) if r.tokens_per_s else "",
            f"{r.achieved_tflops:.3f}",
            f"{100 * r.mfu:.1f}%" if r.mfu is not None else "n/a",
            gib(r.peak_memory_bytes),
            f"#{r.id}" if r.id is not None else "",
        )
    console.print(table)
    console.print(
        "TFLOP/s = training FLOPs of the step (the profile's matrix products, fwd + bwd) / median step time; "
        "MFU = that / the device's measured matmul ceiling (gpuwise calibrate)."
    )
    for device, speedup in report.speedup_over_cpu.items():
        console.print(f"speed-up over the CPU on {device}: {speedup:.1f}x")
    if len(report.results) == 1 and report.results[0].device == "cpu":
        console.print("no GPU here: the CPU is the only device measured")


def _required_count(value: str, flag: str) -> int:
    number = positive_int(value, flag)
    assert number is not None
    return number
