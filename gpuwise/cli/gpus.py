"""``gpuwise gpus``: the hardware catalog and this machine."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from gpuwise.cli.app import app, user_errors
from gpuwise.cli.format import NARROW_BELOW_COLUMNS, is_narrow
from gpuwise.cli.format import console as cli_console
from gpuwise.errors import GpuwiseError
from gpuwise.hardware.catalog import GPU, PACKAGED_LABEL, load_catalog
from gpuwise.hardware.local import DetectedGPU, LocalCPU, detect_gpus, local_cpu_entry


@app.command("gpus")
@user_errors
def gpus_command(
    min_memory: str = typer.Option(None, "--min-memory", metavar="GB", help="Only GPUs with at least this memory."),
    vendor: str = typer.Option(None, "--vendor", help="nvidia | amd"),
    catalog_file: Path = typer.Option(
        None, "--catalog", metavar="PATH",
        help="Your own catalog TOML (adds GPUs, overrides fields) [default: gpus.toml in the config directory].",
    ),
    as_json: bool = typer.Option(False, "--json", help="Every field with its source, machine-readable."),
) -> None:
    """The GPU catalog (peak dense TFLOP/s, memory, interconnect, power, price) and this machine."""
    catalog = load_catalog(catalog_file)
    gpus = catalog.filter(min_memory_gb=_gigabytes(min_memory), vendor=vendor)
    cpu = local_cpu_entry()
    detected = detect_gpus(catalog)
    if as_json:
        local = {"cpu": cpu.to_dict(), "gpus": [vars(d) for d in detected]}
        print(json.dumps({"catalog_files": list(catalog.files), "gpus": [g.to_dict() for g in gpus],
                          "local": local}, indent=2))
        return
    console = cli_console()
    render(gpus, console)
    if len(catalog.files) > 1:
        console.print(f"catalog: {PACKAGED_LABEL} + {', '.join(catalog.files[1:])}")
    console.print(local_line(cpu, detected))


def _gigabytes(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        raise GpuwiseError(f"--min-memory must be a number of GB, got '{value}'") from None
    if number < 0:
        raise GpuwiseError(f"--min-memory must be a number of GB >= 0, got {value}")
    return number


def _num(value: float | None, fmt: str = "g") -> str:
    return "-" if value is None else format(value, fmt)


def render(gpus: list[GPU], console: Console) -> None:
    narrow = is_narrow(console)
    table = Table(title="gpuwise GPU catalog: peak dense TFLOP/s (no sparsity)", title_justify="left",
                  box=box.SIMPLE_HEAD if narrow else box.HEAVY_HEAD, pad_edge=not narrow)
    heads = ("name", "memory GB", "GB/s", "FP32", "TF32", "BF16", "FP16", "FP8", "SMs", "NVLink GB/s", "TDP W",
             "year", "$/h", "buy $")
    shown = [h for h in heads if not narrow or h not in _WIDE_ONLY]
    for head in shown:
        label = "GB" if narrow and head == "memory GB" else head
        table.add_column(label, justify="left" if head == "name" else "right")
    for g in gpus:
        cells = dict(zip(heads, (
            g.name, _num(g.memory_gb), _num(g.memory_bandwidth_gbps), _num(g.fp32_tflops), _num(g.tf32_tflops),
            _num(g.bf16_tflops), _num(g.fp16_tflops), _num(g.fp8_tflops), _num(g.sm_count), _num(g.nvlink_gbps),
            _num(g.tdp_w), _num(g.launch_year), _num(g.price_usd_per_hour, ".2f"), _purchase(g),
        ), strict=True))
        table.add_row(*(cells[h] for h in shown))
    if gpus:
        console.print(table)
    else:
        console.print("no catalog GPU matches these filters")
    console.print("FP32: non-tensor rate. TF32, BF16, FP16, FP8: tensor rates; BF16/FP16/FP8 with FP32 accumulate, "
                  "what PyTorch AMP gets. '-': not supported or not published.")
    console.print("NVLink: total bidirectional GB/s per GPU across an NVLink node (MI300X: Infinity Fabric). "
                  "$/h: median on-demand price of dated 2026 offers.")
    if not narrow:
        console.print("buy $: per GPU, s = a server's list price per GPU slot (host included), m = launch MSRP, "
                      "otherwise a dated street price; dates and sources in --json.")
    if narrow:
        console.print(f"TF32, SMs, NVLink, TDP, year and buy $ show from {NARROW_BELOW_COLUMNS} columns, "
                      "and in --json.")
    console.print("Every number's source and the notes: gpuwise gpus --json")


# Left out of the narrow layout: what a choice of GPU for training rarely turns on (TF32: about half of BF16 on
# every GPU that has both).
_WIDE_ONLY = ("TF32", "SMs", "NVLink GB/s", "TDP W", "year", "buy $")


def _purchase(g: GPU) -> str:
    """The price ``gpuwise plan --own`` uses for one GPU slot, marked with what it is."""
    if g.server_usd_per_gpu is not None:
        return f"{g.server_usd_per_gpu:,.0f} s"
    if g.street_price_usd is not None:
        return f"{g.street_price_usd:,.0f}"
    if g.launch_msrp_usd is not None:
        return f"{g.launch_msrp_usd:,.0f} m"
    return "-"


def local_line(cpu: LocalCPU, detected: list[DetectedGPU]) -> str:
    head = (f"this machine: {cpu.model}, {cpu.num_cores} cores ({cpu.num_threads} logical CPUs), "
            f"{cpu.memory_gb:.1f} GB RAM; ")
    if not detected:
        return head + "GPUs: none detected"
    listed = ", ".join(
        f"{d.device} {d.device_name} ({d.memory_bytes / 1e9:.0f} GB, "
        + (f"catalog: {d.catalog_name})" if d.catalog_name else "not in the catalog)")
        for d in detected
    )
    return head + f"GPUs: {listed}"
