"""``--own`` on ``gpuwise plan`` and ``gpuwise report``: the flags, their parsing, and the rent-or-buy table."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from gpuwise.cli.format import NARROW_BELOW_COLUMNS, is_narrow
from gpuwise.errors import GpuwiseError
from gpuwise.predict.own import (
    DATACENTER_PUE,
    DEFAULT_ELECTRICITY_USD_PER_KWH,
    DEFAULT_LIFETIME_YEARS,
    DEFAULT_UTILIZATION,
    OwnConfig,
    OwnPlan,
    check_purchasable,
    own_plan,
)
from gpuwise.units import duration, money

if TYPE_CHECKING:  # gpuwise.plan imports torch; `gpuwise --help` must not
    from gpuwise.hardware.catalog import Catalog
    from gpuwise.plan import Plan, PlanConfig

OWN_OPTION: Any = typer.Option(
    False, "--own", help="Also price each option of 1-8 GPUs as a box you buy: purchase, electricity, break-even "
    "against renting.")
ELECTRICITY_OPTION: Any = typer.Option(
    None, "--electricity", metavar="USD_PER_KWH",
    help=f"Electricity price with --own [default: {DEFAULT_ELECTRICITY_USD_PER_KWH:g}, the EIA U.S. average].")
LIFETIME_OPTION: Any = typer.Option(
    None, "--lifetime-years", help=f"Write the box off over this many years [default: {DEFAULT_LIFETIME_YEARS:g}].")
UTILIZATION_OPTION: Any = typer.Option(
    None, "--utilization",
    help=f"Share of its lifetime the box is busy, in (0, 1] [default: {DEFAULT_UTILIZATION:g}].")
RUNS_PER_MONTH_OPTION: Any = typer.Option(
    None, "--runs-per-month", help="How often you run this training; break-even in months [default: as many as "
    "--utilization allows].")


def own_config(own: bool, *, electricity: str | None, lifetime_years: str | None, utilization: str | None,
               runs_per_month: str | None) -> OwnConfig | None:
    """The --own flags, as typed, onto an ``OwnConfig``; None without --own (then the others are a mistake)."""
    given = {"--electricity": electricity, "--lifetime-years": lifetime_years, "--utilization": utilization,
             "--runs-per-month": runs_per_month}
    if not own:
        stray = [flag for flag, value in given.items() if value is not None]
        if stray:
            raise GpuwiseError(f"{stray[0]} prices owning a box: add --own")
        return None
    defaults = OwnConfig()
    return OwnConfig(
        electricity_usd_per_kwh=_number(electricity, "--electricity", "US dollars per kWh, 0 or more, e.g. 0.30",
                                        defaults.electricity_usd_per_kwh),
        lifetime_years=_number(lifetime_years, "--lifetime-years", "a number of years above zero, e.g. 3",
                               defaults.lifetime_years),
        utilization=_number(utilization, "--utilization", "a share of the time in (0, 1], e.g. 0.5",
                            defaults.utilization),
        runs_per_month=_number(runs_per_month, "--runs-per-month", "a number of runs above zero, e.g. 4", None),
    )


def _number(text: str | None, flag: str, what: str, default: float | None) -> Any:
    if text is None:
        return default
    try:
        return float(text.strip())
    except ValueError:
        raise GpuwiseError(f"{flag} must be {what}, got '{text}'") from None


def check_before_planning(config: PlanConfig, catalog: Catalog) -> None:
    """--own with only GPUs that have no purchase price: say so before minutes of profiling."""
    chosen = [catalog.get(n) for n in config.gpus] if config.gpus is not None else catalog.all()
    check_purchasable(list({g.name: g for g in chosen}.values()))


def plan_ownership(p: Plan, catalog: Catalog, config: OwnConfig) -> OwnPlan:
    """The plan's options priced as owned boxes (``gpuwise.predict.own``)."""
    rec = p.recommendation.option
    return own_plan(p.options, rec, catalog, config, deadline_s=p.config.deadline_s,
                    cpu_is_enough=rec is not None and not rec.is_gpu)


def render_own(o: OwnPlan, console: Console, *, show_all: bool = False) -> None:
    c = o.config
    console.print()
    console.print(f"[bold]Rent or buy[/bold] · electricity ${c.electricity_usd_per_kwh:g}/kWh · written off over "
                  f"{c.lifetime_years:g} years at {c.utilization:.0%} use"
                  + (f" · {c.runs_per_month:g} runs a month" if c.runs_per_month is not None else ""))
    console.print(f"[bold]{o.verdict.headline}[/bold]", highlight=False)
    console.print(f"  why: {o.verdict.reason}", highlight=False)
    if o.options:
        console.print(_own_table(o, show_all=show_all, narrow=is_narrow(console)))
        if is_narrow(console):
            console.print(f"where each price comes from, power, electricity and write-off show from "
                          f"{NARROW_BELOW_COLUMNS} columns, and in --json", highlight=False)
    for note in o.notes:
        console.print(f"note: {note}", highlight=False)
    console.print(f"electricity: {o.electricity_source}", highlight=False)
    console.print(f"power: TDP unless the catalog has a training-load figure; ×{DATACENTER_PUE:g} = datacenter PUE, "
                  f"{o.pue_source}", highlight=False)


def _own_table(o: OwnPlan, *, show_all: bool, narrow: bool) -> Table:
    """Every box's purchase, run, cost a run and break-even. Narrow (for 80 columns): the price's basis, power,
    electricity and write-off left out, and whether it pays back under the break-even."""
    which = "every box" if show_all else "the cheapest box of each GPU (--all: every count)"
    table = Table(title=f"owning {which}, cheapest run first; rented: "
                  + (f"{o.rental.label}, {money(o.rental.cost_usd)} a run" if o.rental else "none"),
                  title_justify="left", box=box.SIMPLE_HEAD if narrow else box.HEAVY_HEAD, pad_edge=not narrow)
    columns = ("box", "purchase", "run", "owned/run", "break-even\npays back") if narrow else (
        "box", "purchase", "priced at", "power", "run", "electricity", "write-off", "owned/run", "break-even",
        "pays back")
    for col in columns:
        table.add_column(col, justify="left" if col in ("box", "priced at", "pays back") else "right", no_wrap=True)
    for b in (o.options if show_all else o.per_gpu()):
        breakeven = _breakeven(b.breakeven_runs, b.breakeven_months)
        pays = "yes" if b.pays_back and not b.misses_deadline else b.short_why or "misses the deadline"
        cells = {
            "box": b.label, "purchase": money(b.purchase_usd),
            "priced at": b.slot_basis + ("" if b.includes_host else ", GPUs only"),
            "power": f"{b.power_w:,.0f} W" + (f" ×{b.pue:g}" if b.pue != 1 else ""), "run": duration(b.run_s),
            "electricity": money(b.energy_usd), "write-off": money(b.write_off_usd), "owned/run": money(b.run_cost_usd),
            "break-even": breakeven, "pays back": pays, "break-even\npays back": f"{breakeven}\n{pays}",
        }
        table.add_row(*(cells[c] for c in columns))
    return table


def _breakeven(runs: float | None, months: float | None) -> str:
    if runs is None or months is None:
        return "never"
    span = f"{months:.1f} mo" if months < 24 else f"{months / 12:.1f} y"
    return f"{math.ceil(runs):,} runs, {span}"  # a whole run: the one after which owning has cost less
