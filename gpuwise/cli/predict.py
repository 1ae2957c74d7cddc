"""``gpuwise predict``: one option of a plan in full — a workload on n GPUs of one kind."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from gpuwise.cli.app import (
    CHECKPOINTING_OPTION,
    COMPILE_OPTION,
    CPU_THREADS_OPTION,
    DB_OPTION,
    FP8_OPTION,
    GPUS_PER_NODE_OPTION,
    GRAD_ACCUM_OPTION,
    IMAGE_SIZE_OPTION,
    OPTIMIZER_OPTION,
    QUIET_OPTION,
    SEQ_LEN_OPTION,
    STRATEGY_OPTION,
    WORKLOAD_ARGUMENT,
    app,
    count_option,
    optimizer_option,
    run_settings,
    user_errors,
)
from gpuwise.cli.format import console, gib
from gpuwise.cli.plan import AUTO_PRECISION_OPTION, CATALOG_HELP, NETWORK_HELP, network_gbits
from gpuwise.cli.progress import working
from gpuwise.config import Precision
from gpuwise.predict.parallel import LINK_EFFICIENCY, PCIE_RING_EFFICIENCY
from gpuwise.units import parse_positive, step_time

if TYPE_CHECKING:
    from gpuwise.plan import Option


BUSBW_HELP = ("Your node's all-reduce bus bandwidth in GB/s, as nccl-tests' all_reduce_perf prints busbw at "
              f"large sizes: the ring within a node runs at it [default: the catalog link × its share: "
              f"{LINK_EFFICIENCY:g} of NVLink, {PCIE_RING_EFFICIENCY:g} of PCIe, the median of published PCIe runs].")


@app.command("predict")
@user_errors
def predict_command(
    workload: str = WORKLOAD_ARGUMENT,
    gpu: str = typer.Option(..., "--gpu", "--gpus", help="A catalog GPU (see 'gpuwise gpus')."),
    num_gpus: int = count_option(1, "--num-gpus", "-n", help="How many (beyond one node: nodes of --gpus-per-node)."),
    batch_size: int | None = count_option(None, "--batch-size", "-b", help="Per GPU [default: the workload's]."),
    precision: str = AUTO_PRECISION_OPTION,
    optimizer: str = OPTIMIZER_OPTION,
    seq_len: int | None = SEQ_LEN_OPTION,
    image_size: int | None = IMAGE_SIZE_OPTION,
    strategy: str = STRATEGY_OPTION,
    checkpointing: str = CHECKPOINTING_OPTION,
    grad_accum: int | None = GRAD_ACCUM_OPTION,
    compile: bool = COMPILE_OPTION,
    fp8: bool = FP8_OPTION,
    cpu_threads: int | None = CPU_THREADS_OPTION,
    gpus_per_node: int | None = GPUS_PER_NODE_OPTION,
    network: str = typer.Option(None, "--network-gbits", "--network-gbps", help=NETWORK_HELP),
    busbw: str = typer.Option(None, "--busbw", metavar="GB/s", help=BUSBW_HELP),
    catalog: Path | None = typer.Option(None, "--catalog", metavar="PATH", help=CATALOG_HELP),
    db: Path | None = DB_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Everything, machine-readable, units in field names."),
    quiet: bool = QUIET_OPTION,
) -> None:
    """Predict one training step on n GPUs of one kind: its time and parts, throughput, memory, provenance."""
    with working("loading torch and the workload", quiet=quiet) as say:
        from gpuwise.plan import option_dict
        from gpuwise.predict.single import PredictConfig, predict
        from gpuwise.workloads import get_workload

        w = get_workload(workload)  # once: a user's file runs once for the command
        config = PredictConfig.of(
            workload=w,
            gpu=gpu,
            num_gpus=num_gpus,
            batch_size=batch_size,
            precision=Precision.parse(precision),
            optimizer=optimizer_option(optimizer, w),
            seq_len=seq_len,
            image_size=image_size,
            network_gbits=network_gbits(network),
            catalog_path=catalog,
            settings=run_settings(strategy, checkpointing, grad_accum, compile, fp8),
            cpu_threads_per_gpu=cpu_threads,
            gpus_per_node=gpus_per_node,
            busbw_gbs=None if busbw is None else parse_positive(busbw, "--busbw", "GB/s above zero, e.g. 12.5"),
        )
        say(f"profiling a training step of {workload} on fake tensors and predicting it on {gpu}")
        option = predict(config, store_path=db)
        without = None
        if fp8 and option.step is not None:  # what FP8 buys: the same step with bf16 linear layers
            say("predicting the same step without --fp8")
            without = predict(replace(config, settings=replace(config.settings, fp8=False)), store_path=db)
    if as_json:
        extra = {"without_fp8": option_dict(without)} if without is not None else {}
        print(json.dumps(dict(option_dict(option), workload=workload, **extra), indent=2))
    else:
        render(option, workload, console(), without_fp8=without)


def render(o: Option, workload: str, console: Console, *, without_fp8: Option | None = None) -> None:
    settings = o.settings.describe()
    precision = f"{o.precision} (auto: {o.precision_reason})" if o.precision_reason else o.precision
    console.print(f"[bold]{workload}[/bold] on {o.label} · batch {o.requested_batch_size} per GPU requested · "
                  f"{precision}" + (f" · {settings}" if settings else ""))
    memory = f"{gib(o.memory_per_gpu_bytes)} per GPU of {gib(o.capacity_bytes)}"
    if o.step is None:
        console.print(f"does not fit: needs {memory}, even at batch 1"
                      + (" sharded with FSDP" if o.strategy == "FSDP" else ""))
        return
    how = {"single": "one GPU", "DDP": "data parallel (DDP)", "FSDP": "sharded (FSDP2)"}[o.strategy]
    batch = (f"at batch {o.batch_size} per GPU, the largest that fits ({o.requested_batch_size} does not)"
             if o.batch_reduced else f"at batch {o.batch_size} per GPU")
    console.print(f"fits: {memory} (CUDA context and allocator included), {how}, {batch}; global batch "
                  f"{o.global_batch_size:,}")
    s = o.step
    console.print(f"step: {step_time(s.step_s)} ({step_time(s.step_low_s)}–{step_time(s.step_high_s)}, "
                  f"±{o.band:.0%}) · "
                  f"{o.provenance} · bound: {o.bound}")
    console.print("what makes up the step (the roofline model's parts, one GPU)")  # a title would wrap to the table
    table = Table()
    table.add_column("part")
    table.add_column("time", justify="right")
    rows = [
        ("ops bound by compute", s.compute_bound_s),
        ("ops bound by memory bandwidth", s.memory_bound_s),
        ("kernel launch latency", s.latency_s),
        ("host dispatch (overlaps the device)" if o.is_gpu else "host dispatch", s.host_s),
        ("one GPU's step, model", s.model_compute_s),
    ]
    if s.compute_s != s.model_compute_s:
        rows.append((f"one GPU's step, {o.provenance}", s.compute_s))
    rows.append((f"exposed communication{' over ' + s.link if s.link else ''}", s.communication_s))
    if o.num_gpus > 1:
        rows.append((f"waiting for the slowest of {o.num_gpus} GPUs", s.sync_s))
    rows.append(("step", s.step_s))
    for name, seconds in rows:
        table.add_row(name, step_time(seconds))
    console.print(table)
    if s.input_ceiling_samples_per_s is not None:
        binds = "it binds: the GPUs wait for images" if o.bound == "input pipeline" else "it does not bind"
        console.print(f"input pipeline: the CPU threads decode and augment {s.input_ceiling_samples_per_s:,.0f} "
                      f"images/s for {o.num_gpus} GPU{'s' if o.num_gpus > 1 else ''} (--cpu-cores-per-gpu); "
                      f"{binds}")
    if o.ring:
        console.print(f"ring within a node: {o.ring}")
    if o.network:
        console.print(f"network between nodes: {o.network}")
    rate = f"{s.samples_per_s:,.1f} samples/s" + (f", {s.tokens_per_s:,.0f} tokens/s" if s.tokens_per_s else "")
    console.print(f"throughput over {o.num_gpus} GPU{'s' if o.num_gpus > 1 else ''}: {rate}")
    if without_fp8 is not None and without_fp8.step is not None:
        plain = without_fp8.step
        console.print(f"without --fp8 (bf16 linear layers): {plain.samples_per_s:,.1f} samples/s at batch "
                      f"{without_fp8.batch_size} per GPU ({step_time(plain.step_s)} a step): FP8 gives "
                      f"{s.samples_per_s / plain.samples_per_s:.2f}×")
    elif without_fp8 is not None:
        console.print("without --fp8 (bf16 linear layers) the step does not fit")
    for note in o.notes:
        console.print(f"note: {note}")
