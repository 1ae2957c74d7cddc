"""The report's rent-vs-own chart and section (``gpuwise plan --own --html``, ``gpuwise report --own``).

Cumulative cost against the number of runs: renting costs rent × runs, owning costs the purchase
plus electricity × runs; the lines cross at the break-even, which is marked, and the end of the
box's lifetime (the runs it does in ``lifetime_years``) is a dashed line. Straight lines, so each
is drawn through its two ends and the break-even: no arithmetic here beyond those points.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any

from gpuwise.predict.own import Ownership, OwnPlan
from gpuwise.units import money

Figure = dict[str, Any]
_RENT, _OWN, _MARK = "#1f6fb2", "#e8772e", "#c8413b"
_FONT = {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 13}


def _runs_axis_end(box: Ownership) -> float:
    """Show the lifetime, and the break-even with room after it."""
    ends = [box.lifetime_runs]
    if box.breakeven_runs is not None:
        ends.append(box.breakeven_runs * 1.5)
    return max(1.0, min(max(ends), 10 * min(ends)))


def rent_vs_own(own: OwnPlan | None) -> Figure | None:
    """The chart, or None when there is no box or no rental to compare."""
    if own is None or own.rental is None or own.best is None:
        return None
    box, rent = own.best, own.rental
    end = _runs_axis_end(box)
    xs = [0.0, end]
    traces: list[dict[str, Any]] = [
        {"type": "scatter", "mode": "lines", "name": f"rent {escape(rent.label)} ({money(rent.cost_usd)} a run)",
         "x": xs, "y": [0.0, rent.cost_usd * end], "line": {"color": _RENT, "width": 3},
         "hovertemplate": "%{x:,.0f} runs rented: $%{y:,.0f}<extra></extra>"},
        {"type": "scatter", "mode": "lines",
         "name": f"own {escape(box.label)} ({money(box.purchase_usd)} + {money(box.energy_usd)} electricity a run)",
         "x": xs, "y": [box.purchase_usd, box.purchase_usd + box.energy_usd * end],
         "line": {"color": _OWN, "width": 3}, "hovertemplate": "%{x:,.0f} runs owned: $%{y:,.0f}<extra></extra>"},
    ]
    shapes: list[dict[str, Any]] = [{
        "type": "line", "xref": "x", "yref": "paper", "x0": box.lifetime_runs, "x1": box.lifetime_runs, "y0": 0,
        "y1": 1, "line": {"color": "#555", "dash": "dash", "width": 1}}]
    notes: list[dict[str, Any]] = [{
        "x": box.lifetime_runs, "xref": "x", "y": 0.02, "yref": "paper", "xanchor": "right", "yanchor": "bottom",
        "showarrow": False,
        "text": f"end of its {own.config.lifetime_years:g}-year life ", "font": {"color": "#555"}}]
    if box.breakeven_runs is not None and box.breakeven_runs <= end:
        y = rent.cost_usd * box.breakeven_runs
        traces.append({"type": "scatter", "mode": "markers",
                       "name": f"break-even: {math.ceil(box.breakeven_runs):,} runs",
                       "x": [box.breakeven_runs], "y": [y],
                       "marker": {"size": 14, "color": _MARK, "symbol": "x", "line": {"width": 1}},
                       "hovertemplate": "break-even after %{x:,.1f} runs ($%{y:,.0f})<extra></extra>"})
    layout = {
        "font": _FONT, "margin": {"l": 64, "r": 16, "t": 16, "b": 56}, "height": 420, "hovermode": "closest",
        "xaxis": {"title": {"text": "runs of this training"}, "rangemode": "tozero", "automargin": True},
        "yaxis": {"title": {"text": "cumulative cost (US$)"}, "rangemode": "tozero", "automargin": True},
        "legend": {"orientation": "h", "y": -0.2, "yanchor": "top"}, "paper_bgcolor": "white",
        "plot_bgcolor": "white", "shapes": shapes, "annotations": notes,
    }
    return {"data": traces, "layout": layout}


def _pays_back(b: Ownership) -> str:
    return "yes" if b.pays_back and not b.misses_deadline else escape(b.why_not or "misses the deadline")


def own_section(own: OwnPlan | None, figs: dict[str, Any]) -> str:
    """The page's "Rent or buy" section; empty without --own."""
    if own is None:
        return ""
    v, c = own.verdict, own.config
    chart = ('<div class="chart" id="chart-rent-own"></div>' if "chart-rent-own" in figs
             else '<p class="empty" id="chart-rent-own-empty">No box to compare with a rental.</p>')
    rows = "".join(
        f"<tr><td>{escape(b.label)}</td><td class=\"num\">{money(b.purchase_usd)}</td><td>{escape(b.slot_basis)}"
        f"{'' if b.includes_host else ', GPUs only'}</td><td class=\"num\">{money(b.energy_usd)}</td>"
        f"<td class=\"num\">{money(b.run_cost_usd)}</td><td class=\"num\">"
        f"{'never' if b.breakeven_runs is None else f'{math.ceil(b.breakeven_runs):,}'}</td>"
        f"<td>{_pays_back(b)}</td></tr>" for b in own.per_gpu())  # the short list, as the text says
    table = ("<div class=\"table-wrap\"><table><thead><tr><th>box</th><th class=\"num\">purchase</th><th>priced at"
             "</th><th class=\"num\">electricity a run</th><th class=\"num\">owned, a run</th><th class=\"num\">"
             f"break-even runs</th><th>pays back</th></tr></thead><tbody>{rows}</tbody></table></div>") if rows else ""
    notes = "".join(f"<li>{escape(n)}</li>" for n in (*own.notes, f"electricity: {own.electricity_source}",
                                                         f"PUE: {own.pue_source}"))
    return (
        '<section id="rent-own">\n<h2>Rent or buy</h2>\n'
        f'<p class="headline">{escape(v.headline)}</p><p>Why: {escape(v.reason)}.</p>'
        f'<p class="muted">Electricity ${c.electricity_usd_per_kwh:g}/kWh; written off over {c.lifetime_years:g} years '
        f'at {c.utilization:.0%} use. The chart: cumulative cost of renting against owning the box named above; '
        'the lines cross at the break-even. The table: the cheapest box of each GPU (every count: gpuwise plan '
        '--own --all).</p>'
        f'{chart}{table}<ul class="note">{notes}</ul>\n</section>'
    )
