"""Rent or buy: the plan's options priced as a box you own, beside the best rental for the same work.

For every option a buyer could own (1 to 8 GPUs of one kind in one box, the step fits, the catalog
has a purchase price), from the catalog (``gpuwise/hardware/data/gpus.toml``) and the plan's
predicted run time:

- purchase = GPUs in the box × the price of one GPU slot: a server's list price per GPU slot where
  the catalog has one (GPUs, host and networking included), else one card's street price, else its
  launch MSRP (then the host is not counted, and the result says so);
- energy of this run = board power (measured under training load where the catalog has it, else
  the TDP) × GPUs × predicted time × PUE (datacenter parts only) × the electricity price;
- the cost of this run when the box is written off over ``lifetime_years`` at ``utilization``
  (the share of the time it is busy): purchase × run time / (lifetime × utilization), plus energy;
- break-even against renting the best rental option for the same run: owning k runs costs
  purchase + k × energy, renting them k × rent, so k = purchase / (rent − energy); never when rent
  per run is not above energy per run. In months: k / ``runs_per_month``, or without it, k runs at
  ``utilization`` of the box's time.

The verdict says "buy" only when the box pays back within its lifetime, and says why. Pure
arithmetic on a ``Plan``; nothing here prints or profiles.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from gpuwise.errors import GpuwiseError
from gpuwise.hardware.catalog import GPU, USER_FILE_NAME, Catalog
from gpuwise.predict.parallel import GPUS_PER_NODE
from gpuwise.units import HOUR_S, YEAR_S, duration, money

if TYPE_CHECKING:  # gpuwise.predict.option imports torch; the CLI reads this module's defaults without it
    from gpuwise.predict.option import Option

MONTH_S = YEAR_S / 12
# The U.S. average retail price of electricity, all customers, January 2024 (EIA). A data center's
# commercial or industrial tariff is usually lower, a home's may be higher: pass --electricity.
DEFAULT_ELECTRICITY_USD_PER_KWH = 0.1545
ELECTRICITY_SOURCE = (
    "EIA Electricity Monthly Update, data for January 2024 (released 2024-03-26): U.S. residential average "
    "revenue 15.45 cents/kWh, https://www.eia.gov/electricity/monthly/update/end-use.php (read 2026-12-06)"
)
# Power usage effectiveness of the site a datacenter part runs in: the industry average.
DATACENTER_PUE = 1.58
PUE_SOURCE = (
    "Uptime Institute, 'Large data centers are mostly more efficient, analysis confirms' (UII Update 221, "
    "2023-11-23): 'In 2023, industry average PUE stood at 1.58', https://intelligence.uptimeinstitute.com/"
    "resource/large-data-centers-are-mostly-more-efficient-analysis-confirms (read 2026-12-06)"
)
DEFAULT_LIFETIME_YEARS = 3.0
DEFAULT_UTILIZATION = 0.5


@dataclass(frozen=True)
class OwnConfig:
    """How owning is priced; every default defined here once."""

    electricity_usd_per_kwh: float = DEFAULT_ELECTRICITY_USD_PER_KWH
    lifetime_years: float = DEFAULT_LIFETIME_YEARS
    utilization: float = DEFAULT_UTILIZATION  # the share of its lifetime the box is busy, (0, 1]
    runs_per_month: float | None = None  # None: as many runs as `utilization` allows

    def __post_init__(self) -> None:
        _check_number(self.electricity_usd_per_kwh, "--electricity", "US dollars per kWh, 0 or more, e.g. 0.30",
                      allow_zero=True)
        _check_number(self.lifetime_years, "--lifetime-years", "a number of years above zero, e.g. 3")
        _check_number(self.utilization, "--utilization", "a share of the time in (0, 1], e.g. 0.5")
        if self.utilization > 1:
            raise GpuwiseError(f"--utilization must be a share of the time in (0, 1], e.g. 0.5 for 50%, "
                               f"got {self.utilization:g}")
        if self.runs_per_month is not None:
            _check_number(self.runs_per_month, "--runs-per-month", "a number of runs above zero, e.g. 4")


def _check_number(value: float, flag: str, what: str, *, allow_zero: bool = False) -> None:
    ok = (not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
          and (value >= 0 if allow_zero else value > 0))
    if not ok:
        shown = f"{value:g}" if isinstance(value, float | int) and not isinstance(value, bool) else repr(value)
        raise GpuwiseError(f"{flag} must be {what}, got {shown}")


# ------------------------------------------------------------------ one GPU slot


@dataclass(frozen=True)
class SlotPrice:
    """What one GPU slot of a box costs and draws, and what each number rests on."""

    usd: float
    basis: str  # "server price per GPU slot (2024-08-22)", "street price (2026-03-20)", "launch MSRP (2022-09-20)"
    includes_host: bool  # a server price includes the host; a card's price does not
    power_w: float | None  # None: the catalog gives neither a training-load power nor a TDP
    power_basis: str
    pue: float
    pue_basis: str


def slot_price(gpu: GPU) -> SlotPrice | None:
    """The price of one GPU slot of ``gpu`` (None if the catalog has no purchase price for it)."""
    if gpu.server_usd_per_gpu is not None:
        usd, basis, host = gpu.server_usd_per_gpu, f"server price per GPU slot ({gpu.server_price_date})", True
    elif gpu.street_price_usd is not None:
        usd, basis, host = gpu.street_price_usd, f"street price ({gpu.street_price_date})", False
    elif gpu.launch_msrp_usd is not None:
        usd, basis, host = gpu.launch_msrp_usd, f"launch MSRP ({gpu.launch_msrp_date})", False
    else:
        return None
    if gpu.training_power_w is not None:
        power, power_basis = gpu.training_power_w, f"{gpu.training_power_w:g} W measured under training load"
    elif gpu.tdp_w is not None:
        power, power_basis = gpu.tdp_w, f"{gpu.tdp_w:g} W TDP (no training-load measurement in the catalog)"
    else:
        power, power_basis = None, "no power in the catalog: energy not counted"
    datacenter = gpu.segment == "datacenter"
    pue = DATACENTER_PUE if datacenter else 1.0
    pue_basis = f"PUE {DATACENTER_PUE:g} (datacenter part)" if datacenter else "no PUE (a desk-side box)"
    return SlotPrice(usd, basis, host, power, power_basis, pue, pue_basis)


def unpriced_message(names: Sequence[str]) -> str:
    """The one line for --own when none of the planned GPUs has a purchase price."""
    example = names[0] if names else "RTX-4090"
    return (f"--own: no purchase price in the catalog for {', '.join(names) or 'the GPUs planned'}; add one to your "
            f"catalog file (--catalog PATH or {USER_FILE_NAME} in the gpuwise config directory): under [{example}] "
            f"street_price_usd = <US dollars> and street_price_date = \"YYYY-MM\", its source under "
            f"[{example}.sources]; or plan GPUs that have one (gpuwise gpus: the 'buy $' column)")


def check_purchasable(gpus: Sequence[GPU]) -> None:
    """Fail before any profiling when --own has nothing it could price."""
    if not any(slot_price(g) is not None for g in gpus):
        raise GpuwiseError(unpriced_message([g.name for g in gpus]))


# ------------------------------------------------------------------ one box


@dataclass(frozen=True)
class Ownership:
    """One option as a box you own: its price, this run's energy and cost, and its break-even."""

    label: str
    device: str
    num_gpus: int
    run_s: float  # the predicted time of this run on the box
    purchase_usd: float
    purchase_basis: str  # "2 × $1,599 launch MSRP (2022-09-20)"
    slot_basis: str  # what one GPU slot is priced at: "launch MSRP (2022-09-20)"
    includes_host: bool
    power_w: float  # all GPUs of the box, board power
    power_basis: str
    pue: float
    pue_basis: str
    energy_kwh: float  # this run, PUE included
    energy_usd: float
    write_off_usd: float  # this run's share of the purchase: purchase × run / (lifetime × utilization)
    run_cost_usd: float  # write-off + energy
    breakeven_runs: float | None  # runs after which owning has cost less than renting; None: never
    breakeven_months: float | None
    lifetime_runs: float  # runs the box does within its lifetime: runs_per_month × months, or at `utilization`
    runs_per_month: float  # as given, or what `utilization` allows
    pays_back: bool
    why_not: str  # "" when it pays back, else the reason in words
    short_why: str  # the same in a table's few words: "after its life", "never", "too slow for 4 a month"
    misses_deadline: bool = False


@dataclass(frozen=True)
class Rental:
    """The rental option an owned box is compared with."""

    label: str
    run_s: float
    cost_usd: float
    why: str  # "the plan's recommendation", or why another one


@dataclass(frozen=True)
class OwnVerdict:
    buy: bool
    label: str | None  # the box to buy, or the closest to paying back
    headline: str
    reason: str


@dataclass(frozen=True)
class OwnPlan:
    config: OwnConfig
    rental: Rental | None
    options: tuple[Ownership, ...]  # cheapest run first
    verdict: OwnVerdict
    electricity_source: str
    pue_source: str
    notes: tuple[str, ...]

    def per_gpu(self) -> list[Ownership]:
        """The short list, one box per GPU kind, cheapest run first: of each kind the cheapest box that
        pays back (and meets the deadline), else its cheapest box; the verdict's box always."""
        chosen: dict[str, Ownership] = {}
        for b in self.options:  # cheapest run first
            mine = chosen.get(b.device)
            if mine is None or (_good(b) and not _good(mine)):
                chosen[b.device] = b
        keep = {id(b) for b in chosen.values()}
        return [b for b in self.options if id(b) in keep or b.label == self.verdict.label]

    @property
    def best(self) -> Ownership | None:
        """The option the verdict names (to buy, or the closest to paying back)."""
        return next((o for o in self.options if o.label == self.verdict.label), None)

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["defaults"] = {"electricity_usd_per_kwh": DEFAULT_ELECTRICITY_USD_PER_KWH,
                            "lifetime_years": DEFAULT_LIFETIME_YEARS, "utilization": DEFAULT_UTILIZATION,
                            "datacenter_pue": DATACENTER_PUE}
        return data


def _good(b: Ownership) -> bool:
    return b.pays_back and not b.misses_deadline


def ownable(option: Option) -> bool:
    """Could a buyer own this option: GPUs of one kind in one box (at most 8), and the run fits."""
    return (option.is_gpu and option.fits and option.run is not None and option.num_nodes == 1
            and option.num_gpus <= GPUS_PER_NODE)


def ownership(option: Option, slot: SlotPrice, rental: Rental | None, config: OwnConfig,
              deadline_s: float | None = None) -> Ownership:
    """``option`` as a box you own (see the module docstring for every formula)."""
    assert option.run is not None
    run_s, n = option.run.total_s, option.num_gpus
    purchase = slot.usd * n
    power_w = (slot.power_w or 0.0) * n
    energy_kwh = power_w * slot.pue * run_s / HOUR_S / 1000
    energy_usd = energy_kwh * config.electricity_usd_per_kwh
    lifetime_s = config.lifetime_years * YEAR_S
    write_off = purchase * run_s / (lifetime_s * config.utilization)
    capacity_per_month = MONTH_S / run_s  # runs a month if the box never idles
    runs_per_month = config.runs_per_month if config.runs_per_month is not None else (
        capacity_per_month * config.utilization)
    lifetime_runs = runs_per_month * config.lifetime_years * 12
    breakeven = None
    if rental is not None and rental.cost_usd > energy_usd:
        breakeven = purchase / (rental.cost_usd - energy_usd)
    breakeven_months = None if breakeven is None else breakeven / runs_per_month
    short, why_not = _why_not(rental, energy_usd, breakeven, breakeven_months, run_s, capacity_per_month,
                              lifetime_runs, runs_per_month, config)
    return Ownership(
        label=option.label, device=option.device, num_gpus=n, run_s=run_s, purchase_usd=purchase,
        purchase_basis=f"{n} × {money(slot.usd)} {slot.basis}", slot_basis=slot.basis, includes_host=slot.includes_host,
        power_w=power_w, power_basis=slot.power_basis, pue=slot.pue, pue_basis=slot.pue_basis,
        energy_kwh=energy_kwh, energy_usd=energy_usd, write_off_usd=write_off, run_cost_usd=write_off + energy_usd,
        breakeven_runs=breakeven, breakeven_months=breakeven_months, lifetime_runs=lifetime_runs,
        runs_per_month=runs_per_month, pays_back=not why_not, why_not=why_not, short_why=short,
        misses_deadline=deadline_s is not None and run_s > deadline_s,
    )


def _why_not(rental: Rental | None, energy_usd: float, breakeven: float | None, breakeven_months: float | None,
             run_s: float, capacity_per_month: float, lifetime_runs: float, runs_per_month: float,
             config: OwnConfig) -> tuple[str, str]:
    """Why a box does not pay back within its lifetime, in a table's few words and in a sentence;
    ("", "") when it does."""
    if config.runs_per_month is not None and config.runs_per_month > capacity_per_month:
        return (f"too slow for {config.runs_per_month:g}/month",
                f"it cannot do {config.runs_per_month:g} runs a month: each takes {duration(run_s)}, "
                f"so at most {_count(capacity_per_month)} fit in a month")
    if rental is None:
        return "no rental to compare", "there is no rental option to compare with"
    if breakeven is None:
        return ("never", f"its electricity per run ({money(energy_usd)}) is not below the rent per run "
                f"({money(rental.cost_usd)}), so it never pays back")
    if breakeven > lifetime_runs:
        return ("after its life", f"it pays back only after {math.ceil(breakeven):,} runs "
                f"({_months(breakeven_months)}), beyond its {config.lifetime_years:g}-year life "
                f"({lifetime_runs:,.0f} runs at {_pace(config, runs_per_month)})")
    return "", ""


def _months(months: float | None) -> str:
    if months is None:
        return "never"
    return f"{months:.1f} months" if months < 24 else f"{months / 12:.1f} years"


def _pace(config: OwnConfig, runs_per_month: float) -> str:
    if config.runs_per_month is not None:
        return f"{config.runs_per_month:g} a month"
    return f"{config.utilization:.0%} use, {_count(runs_per_month)} a month"


def _count(x: float) -> str:
    """A number of runs as the tables write one: 1,660 rather than 1.66e+03."""
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


# ------------------------------------------------------------------ the plan


def rental_reference(options: Sequence[Option], recommended: Option | None) -> Rental | None:
    """The best rental for the same work: the plan's recommendation when it is a priced GPU option,
    else the cheapest priced GPU option that fits (None if there is none)."""
    if recommended is not None and recommended.is_gpu and recommended.run and recommended.run.cost_usd is not None:
        return Rental(recommended.label, recommended.run.total_s, recommended.run.cost_usd,
                      "the plan's recommendation")
    priced = [o for o in options if o.is_gpu and o.run is not None and o.run.cost_usd is not None]
    if not priced:
        return None
    cheapest = min(priced, key=_rent)
    assert cheapest.run is not None and cheapest.run.cost_usd is not None
    return Rental(cheapest.label, cheapest.run.total_s, cheapest.run.cost_usd, "the cheapest rental that fits")


def _rent(o: Option) -> float:
    assert o.run is not None and o.run.cost_usd is not None
    return o.run.cost_usd


def own_plan(options: Sequence[Option], recommended: Option | None, catalog: Catalog, config: OwnConfig, *,
             deadline_s: float | None = None, cpu_is_enough: bool = False) -> OwnPlan:
    """Every ownable option of a plan, the rental it is compared with, and the verdict.

    ``recommended`` is the plan's recommended option; ``cpu_is_enough`` when that is your own CPU.
    """
    rental = rental_reference(options, recommended)
    yours = config.electricity_usd_per_kwh != DEFAULT_ELECTRICITY_USD_PER_KWH
    electricity_source = "yours (--electricity)" if yours else ELECTRICITY_SOURCE
    boxes: list[Ownership] = []
    unpriced: set[str] = set()
    for o in options:
        if not ownable(o):
            continue
        slot = slot_price(catalog.get(o.device))
        if slot is None:
            unpriced.add(o.device)
            continue
        boxes.append(ownership(o, slot, rental, config, deadline_s))
    boxes.sort(key=lambda b: (b.run_cost_usd, b.num_gpus))
    notes = []
    if unpriced:
        notes.append(f"no purchase price in the catalog, so not priced as owned: {', '.join(sorted(unpriced))}")
    if any(not b.includes_host for b in boxes):
        notes.append("a card's price does not include the host (CPU, board, memory, power supply): add "
                     "server_usd_per_gpu to your catalog file to count it")
    notes.append("energy counts the GPUs' board power only, not the host's")
    verdict = _verdict(boxes, rental, config, cpu_is_enough)
    named = next((b for b in boxes if b.label == verdict.label), None)
    if named is not None and config.runs_per_month is not None:
        busy = config.runs_per_month * named.run_s / MONTH_S
        if abs(busy - config.utilization) > 0.05:
            notes.append(f"at {config.runs_per_month:g} runs a month {named.label} is busy {busy:.0%} of the time; "
                         f"the write-off assumes --utilization {config.utilization:g}")
    return OwnPlan(config, rental, tuple(boxes), verdict, electricity_source, PUE_SOURCE, tuple(notes))


def _verdict(boxes: list[Ownership], rental: Rental | None, config: OwnConfig, cpu_is_enough: bool) -> OwnVerdict:
    """Buy the box with the cheapest run among those that pay back within their lifetime (and meet the
    deadline); else rent, naming the box that comes closest and why it does not pay back."""
    if cpu_is_enough:
        return OwnVerdict(False, None, "Neither buy nor rent: your CPU does this run.",
                          "the plan needs no GPU for it")
    if not boxes:
        return OwnVerdict(False, None, "Nothing to buy: no GPU option that fits has a purchase price.",
                          "add purchase prices to your catalog file, or plan other GPUs")
    if rental is None:
        return OwnVerdict(False, None, "Nothing to compare with: no rental option that fits has a price.",
                          "add rental prices (price_usd_per_hour) to your catalog file")
    paying = [b for b in boxes if _good(b)]
    if paying:
        best = paying[0]  # boxes are sorted by cost per run
        host = "" if best.includes_host else ", GPUs only"
        return OwnVerdict(
            True, best.label,
            f"Buy {best.label} ({money(best.purchase_usd)}{host}): it pays back after "
            f"{math.ceil(best.breakeven_runs or 0):,} runs ({_months(best.breakeven_months)} at "
            f"{_pace(config, best.runs_per_month)}).",
            f"of the boxes that pay back within their {config.lifetime_years:g}-year life ({best.label}: "
            f"{best.lifetime_runs:,.0f} such runs), it has the cheapest run: {money(best.run_cost_usd)} owned "
            f"(write-off {money(best.write_off_usd)} + electricity {money(best.energy_usd)}) against "
            f"{money(rental.cost_usd)} rented on {rental.label} ({rental.why})",
        )
    closest = min(boxes, key=lambda b: (b.breakeven_runs is None, b.breakeven_runs or 0.0))
    reason = closest.why_not or f"it takes {duration(closest.run_s)}, past your deadline"
    return OwnVerdict(
        False, closest.label,
        f"Keep renting {rental.label} ({money(rental.cost_usd)} a run): no box pays back within "
        f"{config.lifetime_years:g} years.",
        f"the closest, {closest.label} ({money(closest.purchase_usd)}): {reason}",
    )
