"""``gpuwise plan``: every way to run the training, the time-vs-cost front, and one recommendation."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich import box
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
    PRECISION_OPTION,
    QUIET_OPTION,
    SEQ_LEN_OPTION,
    STRATEGY_OPTION,
    WORKLOAD_ARGUMENT,
    app,
    count_option,
    optimizer_option,
    positive_int,
    run_settings,
    user_errors,
)
from gpuwise.cli.format import NARROW_BELOW_COLUMNS, console, is_narrow
from gpuwise.cli.own import (
    ELECTRICITY_OPTION,
    LIFETIME_OPTION,
    OWN_OPTION,
    RUNS_PER_MONTH_OPTION,
    UTILIZATION_OPTION,
    check_before_planning,
    own_config,
    plan_ownership,
    render_own,
)
from gpuwise.cli.progress import working
from gpuwise.config import Precision, RunSettings
from gpuwise.errors import GpuwiseError
from gpuwise.predict import parallel
from gpuwise.units import duration, duration_span, money, parse_duration, parse_money, parse_positive, step_time

if TYPE_CHECKING:
    from gpuwise.plan import Option, Plan, PlanConfig
    from gpuwise.predict.own import OwnConfig, OwnPlan
    from gpuwise.workloads import Workload

_BY_CLASS = parallel.NETWORK_GBITS_BY_CLASS
NETWORK_HELP = (
    "Network bandwidth per GPU between nodes, in gigaBITS per second [default: by the GPU's class: "
    f"{_BY_CLASS['hopper+']:g} Hopper/Blackwell boards, {_BY_CLASS['nvlink']:g} older NVLink boards, "
    f"{_BY_CLASS['pcie']:g} PCIe data-center cards, {_BY_CLASS['workstation']:g} GeForce/workstation cards "
    "(100 Gb/s Ethernet per node of 8)]."
)
CATALOG_HELP = "Your own GPU catalog file (TOML), on top of the shipped one."


# Plan's flags, defined once: ``gpuwise report`` takes the same ones (typer copies them per command).
DATASET_SIZE_OPTION: Any = typer.Option(..., "--dataset-size", help="Samples per epoch (tokens with --unit token).")
EPOCHS_OPTION: Any = typer.Option(..., "--epochs", help="Passes over the data set (may be fractional).")
UNIT_OPTION: Any = typer.Option(
    None, "--unit", help="What --dataset-size counts: sample | token [default: token for language models]."
)
DEADLINE_OPTION: Any = typer.Option(None, "--deadline", help="Finish within: 90m, 48h, 2d, 3600s.")
BUDGET_OPTION: Any = typer.Option(None, "--budget", help="Spend at most this many US dollars: 5000, 5k.")
GPUS_OPTION: Any = typer.Option(
    None, "--gpus", "--gpu", help="Only these catalog GPUs, comma-separated [default: all]."
)
MAX_GPUS_OPTION: Any = count_option(None, "--max-gpus", help="The most GPUs to consider [default: 64].")
BATCH_SIZE_OPTION: Any = count_option(
    None, "--batch-size", "-b", help="Per GPU, kept for every option (the global batch then grows with the GPUs).")
GLOBAL_BATCH_OPTION: Any = count_option(
    None, "--global-batch", help="Samples per optimizer step over all GPUs, kept for every option: "
    "split over the GPUs, with gradient accumulation where a GPU's share does not fit [default: a language "
    "model's published recipe (GPT-2: 512 × 1024 tokens; Llama 2: 4M tokens), else the workload's batch, one GPU's].")
AUTO_PRECISION_OPTION: Any = PRECISION_OPTION  # the default is auto everywhere a device is known (cli.app)
NETWORK_OPTION: Any = typer.Option(None, "--network-gbits", "--network-gbps", help=NETWORK_HELP)
CATALOG_OPTION: Any = typer.Option(None, "--catalog", metavar="PATH", help=CATALOG_HELP)
JSON_OPTION: Any = typer.Option(False, "--json", help="Everything, machine-readable, units in field names.")
ALL_OPTION: Any = typer.Option(False, "--all", help="Also list every option, including those that do not fit.")


@app.command("plan")
@user_errors
def plan_command(
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
    as_json: bool = JSON_OPTION,
    show_all: bool = ALL_OPTION,
    html: Path | None = typer.Option(
        None, "--html", metavar="PATH", help="Also write the plan as one HTML page (what gpuwise report writes)."
    ),
    own: bool = OWN_OPTION,
    electricity: str = ELECTRICITY_OPTION,
    lifetime_years: str = LIFETIME_OPTION,
    utilization: str = UTILIZATION_OPTION,
    runs_per_month: str = RUNS_PER_MONTH_OPTION,
    quiet: bool = QUIET_OPTION,
) -> None:
    """Plan a training run on your CPU and on every catalog GPU × count: time, cost, and what to pick."""
    owning = own_config(own, electricity=electricity, lifetime_years=lifetime_years, utilization=utilization,
                        runs_per_month=runs_per_month)
    with working("loading torch and the workload", quiet=quiet) as say:
        config = plan_config(
            workload, dataset_size=dataset_size, epochs=epochs, unit=unit, deadline=deadline, budget=budget,
            gpus=gpus, max_gpus=max_gpus, batch_size=batch_size, precision=precision, optimizer=optimizer,
            seq_len=seq_len, image_size=image_size, network=network, catalog=catalog,
            settings=run_settings(strategy, checkpointing, grad_accum, compile, fp8), cpu_threads=cpu_threads,
            gpus_per_node=gpus_per_node,
            global_batch=global_batch,
        )
        result, owned = plan_and_own(config, owning, db, say, html=html, html_flag="--html")
    if as_json:
        data = result.to_dict()
        if owned is not None:
            data["own"] = owned.to_dict()
        print(json.dumps(data, indent=2))
    else:
        out = console()
        render(result, out, show_all=show_all)
        if owned is not None:
            render_own(owned, out, show_all=show_all)
    if html is not None:
        print(f"wrote {html}", file=sys.stderr)
    from gpuwise.train.recommended import save_recommendation

    save_recommendation(result, db)  # for `gpuwise train --plan`
    if not result.recommendation.met:
        print(f"gpuwise: error: {result.recommendation.headline}", file=sys.stderr)
        raise typer.Exit(2)


def plan_and_own(
    config: PlanConfig, owning: OwnConfig | None, db: Path | None, say: Callable[[str], None], *,
    html: Path | None = None, html_flag: str = "--output",
) -> tuple[Plan, OwnPlan | None]:
    """What ``plan`` and ``report`` both do: the plan, owning priced when asked (``owning``), and with ``html``
    the page written. The output path and the --own prices are checked before the slow work."""
    from gpuwise.hardware.catalog import load_catalog
    from gpuwise.plan import plan

    if html is not None:
        from gpuwise.report import check_writable

        check_writable(html, html_flag)
    cat = load_catalog(config.catalog_path)
    if owning is not None:
        check_before_planning(config, cat)
    say(f"planning {_name(config.workload)}: profiling the step, then every device and count")
    result = plan(config, cat, store_path=db)
    owned = plan_ownership(result, cat, owning) if owning is not None else None
    if html is not None:
        from gpuwise.report import write_report

        say(f"writing the report to {html}")
        write_report(result, html, store_path=db, own=owned)
    return result, owned


def plan_config(
    workload: str, *, dataset_size: str, epochs: str, unit: str | None, deadline: str | None, budget: str | None,
    gpus: str | None, max_gpus: int | None, batch_size: int | None, precision: str, optimizer: str | None,
    seq_len: int | None, image_size: int | None, network: str | None, catalog: Path | None,
    settings: RunSettings | None = None, cpu_threads: int | None = None, global_batch: int | None = None,
    gpus_per_node: int | None = None,
) -> PlanConfig:
    """Plan's flags, as typed, onto a ``PlanConfig`` (shared with ``gpuwise report``); the workload resolved here,
    once: a user's file is run once for the whole command."""
    from gpuwise.plan import UNITS, PlanConfig
    from gpuwise.workloads import get_workload

    if unit is not None and unit not in UNITS:
        raise GpuwiseError(f"unknown unit '{unit}': use --unit {' | '.join(UNITS)}")
    w = get_workload(workload)
    return PlanConfig.of(
        workload=w,
        dataset_size=parse_positive(dataset_size, "--dataset-size", "a number of samples above zero, e.g. 2e9"),
        epochs=parse_positive(epochs, "--epochs", "a number of passes above zero, e.g. 90 or 0.5"),
        unit=unit,
        global_batch=positive_int(global_batch, "--global-batch"),
        batch_size=positive_int(batch_size, "--batch-size"),
        precision=Precision.parse(precision),
        optimizer=optimizer_option(optimizer, w),
        seq_len=positive_int(seq_len, "--seq-len"),
        image_size=positive_int(image_size, "--image-size"),
        deadline_s=parse_duration(deadline, "--deadline") if deadline is not None else None,
        budget_usd=parse_money(budget, "--budget") if budget is not None else None,
        gpus=gpu_names(gpus) if gpus is not None else None,
        max_gpus=max_gpus or PlanConfig.max_gpus,
        network_gbits=network_gbits(network),
        catalog_path=catalog,
        settings=settings or RunSettings(),
        cpu_threads_per_gpu=cpu_threads,
        gpus_per_node=gpus_per_node,
    )


def _name(workload: str | Workload) -> str:
    return workload if isinstance(workload, str) else workload.name


def gpu_names(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise GpuwiseError("--gpus names no GPU: give catalog names separated by commas, e.g. --gpus T4,L4")
    return names


def network_gbits(text: str | None) -> float | None:
    if text is None:
        return None
    return parse_positive(text, "--network-gbits", "gigabits per second above zero, e.g. 200")


def render(p: Plan, console: Console, *, show_all: bool = False) -> None:
    c = p.config
    shape = f" · seq {c.seq_len}" if c.seq_len else f" · {c.image_size}px" if c.image_size else ""
    constraints = [f"deadline {duration(c.deadline_s)}" if c.deadline_s is not None else "",
                   f"budget {money(c.budget_usd)}" if c.budget_usd is not None else ""]
    epochs = f"{c.epochs:g} epoch{'' if c.epochs == 1 else 's'}"
    precision = "precision auto" if p.precision_choice else c.precision.value
    console.print(
        f"[bold]{p.workload}[/bold] ({p.family}) · {_data(p)} × {epochs} · {_batch(p)}{shape} · {precision} · "
        f"{c.optimizer.value}" + "".join(f" · {x}" for x in (c.settings.describe(), *constraints) if x)
    )
    if p.precision_choice:
        console.print(f"precision auto: {p.precision_choice}", highlight=False)
    r = p.recommendation
    console.print(f"[bold]{r.headline}[/bold]")
    console.print(f"  why: {r.reason}")
    for other in r.also:
        assert other.run is not None and other.run.cost_usd is not None
        console.print(f"  fastest within the budget: {other.label}, {duration(other.run.total_s)} for "
                      f"{money(other.run.cost_usd)}")
    tokens = p.sample_unit == "token"
    narrow = is_narrow(console)
    if p.pareto:
        title = "time vs cost: the Pareto front (nothing else is both faster and cheaper), fastest first"
        console.print(options_table(p.pareto, title, p.sample_unit, tokens=tokens, narrow=narrow))
    if show_all:
        console.print(options_table(p.options, "every option", p.sample_unit, tokens=tokens, narrow=narrow))
    for note in p.notes:
        console.print(f"note: {note}")
    from gpuwise.predict.bands import bands_text

    console.print(
        f"bands (the held-out error gpuwise validate measures): {bands_text()}; cost has the band of time · "
        f"↓ = the largest batch that fits (the requested one does not) · efficiency constants: {p.efficiency_source}"
    )
    if narrow and (p.pareto or show_all):
        console.print(f"narrow terminal ({console.width} columns): batch is micro batch×accumulation×GPUs; the step, "
                      f"rate, epoch, global batch, bound and source of each option show from {NARROW_BELOW_COLUMNS} "
                      "columns, and in --json")


def _batch(p: Plan) -> str:
    """The batch the plan keeps: global (the same for every option), or per GPU (the global grows)."""
    if p.global_batch is not None and p.global_batch_recipe:  # a language model's: say whose it is
        tokens = f" = {p.global_batch * p.tokens_per_sample:,} tokens" if p.tokens_per_sample else ""
        return (f"global batch {p.global_batch:,} sequences{tokens} ({p.global_batch_recipe} recipe, by default; "
                "--global-batch N for another) in every option (micro batch × accumulation × GPUs)")
    if p.global_batch is not None:
        return f"global batch {p.global_batch:,} in every option (micro batch × accumulation × GPUs)"
    return f"batch {p.requested_batch_size} per GPU in every option (the global batch grows with the GPUs)"


def _data(p: Plan) -> str:
    size = p.config.dataset_size
    if p.unit == "token":
        return f"{size:,.0f} tokens = {p.samples_per_epoch:,.0f} sequences of {p.tokens_per_sample:,}"
    noun = "sequence" if p.sample_unit == "token" else p.sample_unit
    return f"{size:,.0f} {noun}s"


# The columns of the options table; the narrow layout (under NARROW_BELOW_COLUMNS) keeps the marked ones.
_COLUMNS = (  # (name, right-aligned, kept when narrow, may wrap)
    ("option", False, True, True), ("precision", False, False, False), ("batch", True, True, False),
    ("global", True, False, False),
    ("memory/GPU", True, True, False), ("step", True, False, False), ("rate", True, False, False),
    ("epoch", True, False, False), ("total (band)", True, True, True), ("cost", True, True, False),
    ("bound", False, False, True), ("source", False, False, False),
)
_OPTION_MIN_WIDTH = len("64× H200-SXM-141GB")  # a count and a catalog name on one line; "(8 nodes)" below


def options_table(
    options: Sequence[Option], title: str, sample_unit: str, *, tokens: bool, narrow: bool = False
) -> Table:
    from gpuwise.predict.memory import GIB

    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD if narrow else box.HEAVY_HEAD,
                  pad_edge=not narrow, show_lines=narrow)
    mixed = len({o.precision for o in options}) > 1  # --precision auto chose per device
    columns = [(name, right, wraps) for name, right, keep, wraps in _COLUMNS
               if (keep or not narrow) and (name != "precision" or mixed)]
    for name, right, wraps in columns:
        head = {"rate": "tokens/s" if tokens else f"{sample_unit}s/s",
                "batch": "batch" if narrow else "batch (micro × acc. × GPUs)"}.get(name, name)
        table.add_column(head, justify="right" if right else "left", no_wrap=not wraps, overflow="fold",
                         min_width=_OPTION_MIN_WIDTH if narrow and name == "option" else None)
    for o in options:
        memory = f"{o.memory_per_gpu_bytes / GIB:.1f} / {o.capacity_bytes / GIB:.0f} GiB"
        label = o.label.replace(" (", "\n(", 1) if narrow else o.label  # "(8 nodes)" on a line of its own
        cells = {"option": label, "precision": o.precision, "memory/GPU": memory, "bound": o.bound}
        if o.step is None or o.run is None:
            cells["batch"] = "does not fit"
        else:
            run = o.run
            speed = o.step.tokens_per_s if tokens and o.step.tokens_per_s else o.step.samples_per_s
            cells |= {
                "batch": (" × " if not narrow else "×").join(
                    str(n) for n in (o.batch_size, o.settings.grad_accum, o.num_gpus))
                + (" FSDP" if o.strategy == "FSDP" else "") + (" ↓" if o.batch_reduced else ""),
                "global": f"{o.global_batch_size:,}", "step": step_time(o.step.step_s, duration_from_s=10),
                "rate": f"{speed:,.0f}" if speed >= 100 else f"{speed:.3g}", "epoch": duration(run.epoch_s),
                "total (band)": _total(run.total_s, run.total_low_s, run.total_high_s, narrow=narrow),
                "cost": _cost(o),
                "source": _SOURCE[o.provenance_kind],
            }
        table.add_row(*(cells.get(name, "") for name, _right, _wraps in columns))
    return table


def _total(total_s: float, low_s: float, high_s: float, *, narrow: bool) -> str:
    """The total time and its band; in the narrow layout the band goes on a second line."""
    if not narrow:
        return duration_span(total_s, low_s, high_s)
    return f"{duration(total_s)}\n{duration_span(total_s, low_s, high_s).removeprefix(duration(total_s)).strip()}"


_SOURCE = {"measured": "measured here", "extrapolated": "extrapolated", "analytical": "model"}


def _cost(o: Option) -> str:
    """The central cost; its band is the total time's (cost is proportional to time)."""
    assert o.run is not None
    if not o.is_gpu:
        return "$0 (yours)"
    return "no price" if o.run.cost_usd is None else money(o.run.cost_usd)
