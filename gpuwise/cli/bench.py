"""``gpuwise bench``: real training steps on the CPU and each GPU here, stored."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from gpuwise.cli.app import (
    CHECKPOINTING_OPTION,
    COMPILE_OPTION,
    DB_OPTION,
    FP8_OPTION,
    IMAGE_SIZE_OPTION,
    OPTIMIZER_OPTION,
    PRECISION_OPTION,
    QUIET_OPTION,
    SEQ_LEN_OPTION,
    WORKLOAD_ARGUMENT,
    app,
    count_option,
    optimizer_option,
    positive_int,
    user_errors,
)
from gpuwise.cli.format import ABOVE_CEILING, NARROW_BELOW_COLUMNS, above_ceiling, console, gib, is_narrow, mfu_text, si
from gpuwise.cli.progress import working
from gpuwise.config import ActivationCheckpointing, Precision
from gpuwise.errors import GpuwiseError

if TYPE_CHECKING:
    from gpuwise.bench.run import BenchReport


@app.command("bench")
@user_errors
def bench_command(
    workload: str = WORKLOAD_ARGUMENT,
    device: list[str] = typer.Option(
        None, "--device", "--devices", "-d", help="cpu, cuda, cuda:N; repeat for several [default: all]."
    ),
    batch_size: str = typer.Option(
        None, "--batch-size", "-b", metavar="<int|auto>", help="N, or 'auto' for the largest that fits."
    ),
    precision: str = PRECISION_OPTION,
    optimizer: str = OPTIMIZER_OPTION,
    seq_len: int | None = SEQ_LEN_OPTION,
    image_size: int | None = IMAGE_SIZE_OPTION,
    steps: int = count_option(10, "--steps", help="Timed steps."),
    warmup: int = count_option(3, "--warmup", help="Untimed warm-up steps, discarded."),
    checkpointing: str = CHECKPOINTING_OPTION,
    compile: bool = COMPILE_OPTION,
    fp8: bool = FP8_OPTION,
    db: Path | None = DB_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    quiet: bool = QUIET_OPTION,
) -> None:
    """Time real training steps (warm-up discarded, device synchronised) and store the results."""
    with working("loading torch and the workload", quiet=quiet) as say:
        from gpuwise.bench.run import BenchConfig, bench_all, cpu_precision_note
        from gpuwise.hardware.local import available_devices, check_device
        from gpuwise.workloads import get_workload

        auto = batch_size is not None and batch_size.strip().lower() == "auto"
        w = get_workload(workload)  # once: a user's file runs once for the command
        config = BenchConfig.of(
            workload=w,
            batch_size=None if auto else positive_int(batch_size, "--batch-size"),
            auto_batch=auto,
            precision=Precision.parse(precision),
            optimizer=optimizer_option(optimizer, w),
            seq_len=seq_len,
            image_size=image_size,
            steps=steps,
            warmup=warmup,
            activation_checkpointing=ActivationCheckpointing.parse(checkpointing),
            compile=compile,
            fp8=fp8,
        )
        devices = [check_device(d) for d in device] if device else available_devices()
        if fp8 and not device:  # FP8 runs on GPUs only: the CPU is left out unless named (and then refused)
            devices = [d for d in devices if d != "cpu"]
            if not devices:
                raise GpuwiseError("--fp8: no GPU here; FP8 layers run on GPUs with FP8 tensor cores (Ada, Hopper, "
                                   "Blackwell)")
        if "cpu" in devices and config.precision is Precision.AMP_BF16:
            say("reading this CPU's measured matmul rates (measured once, about a minute, where none are stored)")
        if "cpu" in devices and (slow := cpu_precision_note(config.precision, db)):
            print(f"gpuwise: note: {slow}", file=sys.stderr)
        say(f"timing {workload} on {', '.join(devices)}: {warmup} warm-up and {steps} timed steps each")
        report = bench_all(config, devices, store_path=db)
    if as_json:
        print(json.dumps(
            {"results": [r.to_dict() for r in report.results], "speedup_over_cpu": report.speedup_over_cpu},
            indent=2,
        ))
    else:
        render(report, console())


def render(report: BenchReport, console: Console) -> None:
    first = report.results[0]
    shape = f"seq {first.seq_len}" if first.seq_len else f"{first.image_size}px" if first.image_size else ""
    mixed = len({r.precision for r in report.results}) > 1  # --precision auto chose per device
    reasons = report.precision_reasons
    precision = "precision auto" if mixed else first.precision + (
        f" (auto: {reasons[first.device]})" if first.device in reasons else "")
    console.print(
        f"[bold]{first.workload}[/bold] · {precision} · {first.optimizer}{' · ' + shape if shape else ''}"
        f" · {first.timing.num_steps} timed steps after {first.timing.num_warmup} warm-up"
    )
    if mixed:
        console.print("precision auto: " + "; ".join(
            f"{r.precision} on {r.device} ({reasons.get(r.device, 'asked')})" for r in report.results))
    narrow = is_narrow(console)
    columns = ("device", "precision", "batch", "step median", "p10–p90", "samples/s", "tokens/s", "TFLOP/s", "MFU",
               "peak memory", "stored as")
    hidden = set(_WIDE_ONLY if narrow else ())
    if not any(r.tokens_per_s for r in report.results):
        hidden.add("tokens/s")
    if not mixed:
        hidden.add("precision")  # said once in the header
    shown = [c for c in columns if c not in hidden]
    table = Table(box=box.SIMPLE_HEAD if narrow else box.HEAVY_HEAD, pad_edge=not narrow)
    for col in shown:
        table.add_column(col, justify="left" if col == "device" else "right", no_wrap=col != "device")
    for r in report.results:
        t = r.timing
        cells = dict(zip(columns, (
            f"{r.device} ({r.device_name})",
            r.precision,
            f"{r.batch_size}{' (auto)' if r.batch_size_auto else ''}",
            f"{t.median_s * 1e3:.1f} ms",
            f"{t.p10_s * 1e3:.1f}–{t.p90_s * 1e3:.1f} ms",
            f"{r.samples_per_s:.1f}",
            si(r.tokens_per_s) if r.tokens_per_s else "",
            f"{r.achieved_tflops:.3f}",
            mfu_text(r.mfu, "n/a"),
            gib(r.peak_memory_bytes),
            f"#{r.id}" if r.id is not None else "",
        ), strict=True))
        table.add_row(*(cells[c] for c in shown))
    console.print(table)
    console.print(
        "TFLOP/s = training FLOPs of the step (the profile's matrix products, fwd + bwd) / median step time; "
        "MFU = that / the device's measured matmul ceiling (gpuwise calibrate)."
    )
    if any(above_ceiling(r.mfu) for r in report.results):
        console.print(ABOVE_CEILING)
    precisions = {r.device: r.precision for r in report.results}
    for device, speedup in report.speedup_over_cpu.items():
        each = f" ({precisions[device]} there, {precisions['cpu']} on the CPU)" if mixed else ""
        console.print(f"speed-up over the CPU on {device}: {speedup:.1f}x{each}")
    if len(report.results) == 1 and report.results[0].device == "cpu":
        console.print("no GPU here: the CPU is the only device measured")
    if narrow:
        console.print(f"the spread and the result's id show from {NARROW_BELOW_COLUMNS} columns, and in --json")


_WIDE_ONLY = ("p10–p90", "stored as")  # left out of the narrow layout

