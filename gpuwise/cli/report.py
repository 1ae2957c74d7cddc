"""``gpuwise report``: the plan as one self-contained HTML page (charts, provenance, the machine it was made on)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

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
    run_settings,
    user_errors,
)
from gpuwise.cli.own import (
    ELECTRICITY_OPTION,
    LIFETIME_OPTION,
    OWN_OPTION,
    RUNS_PER_MONTH_OPTION,
    UTILIZATION_OPTION,
    own_config,
)
from gpuwise.cli.plan import (
    AUTO_PRECISION_OPTION,
    BATCH_SIZE_OPTION,
    BUDGET_OPTION,
    CATALOG_OPTION,
    DATASET_SIZE_OPTION,
    DEADLINE_OPTION,
    EPOCHS_OPTION,
    GLOBAL_BATCH_OPTION,
    GPUS_OPTION,
    MAX_GPUS_OPTION,
    NETWORK_OPTION,
    UNIT_OPTION,
    plan_and_own,
    plan_config,
)
from gpuwise.cli.progress import working


@app.command("report")
@user_errors
def report_command(
    workload: str = WORKLOAD_ARGUMENT,
    dataset_size: str = DATASET_SIZE_OPTION,
    epochs: str = EPOCHS_OPTION,
    unit: str = UNIT_OPTION,
    deadline: str = DEADLINE_OPTION,
    budget: str = BUDGET_OPTION,
    gpus: str = GPUS_OPTION,
    max_gpus: int | None = MAX_GPUS_OPTION,
    global_batch: int | None = GLOBAL_BATCH_OPTION,
    batch_size: int | None = BATCH_SIZE_OPTION,
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
    network: str = NETWORK_OPTION,
    catalog: Path | None = CATALOG_OPTION,
    db: Path | None = DB_OPTION,
    output: Path = typer.Option(Path("gpuwise-report.html"), "--output", "-o", metavar="PATH",
                                help="The HTML file to write."),
    own: bool = OWN_OPTION,
    electricity: str = ELECTRICITY_OPTION,
    lifetime_years: str = LIFETIME_OPTION,
    utilization: str = UTILIZATION_OPTION,
    runs_per_month: str = RUNS_PER_MONTH_OPTION,
    quiet: bool = QUIET_OPTION,
) -> None:
    """Write the plan as one HTML page: recommendation, time vs cost, roofline, memory, measurements."""
    owning = own_config(own, electricity=electricity, lifetime_years=lifetime_years, utilization=utilization,
                        runs_per_month=runs_per_month)
    with working("loading torch and the workload", quiet=quiet) as say:
        config = plan_config(
            workload, dataset_size=dataset_size, epochs=epochs, unit=unit, deadline=deadline, budget=budget,
            gpus=gpus, max_gpus=max_gpus, batch_size=batch_size, precision=precision, optimizer=optimizer,
            seq_len=seq_len, image_size=image_size, network=network, catalog=catalog,
            settings=run_settings(strategy, checkpointing, grad_accum, compile, fp8), cpu_threads=cpu_threads,
            global_batch=global_batch, gpus_per_node=gpus_per_node,
        )
        result, _owned = plan_and_own(config, owning, db, say, html=output)
    print(result.recommendation.headline)
    print(f"wrote {output} ({output.stat().st_size / 2**20:.1f} MiB)", file=sys.stderr)
