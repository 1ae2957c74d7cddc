"""The page's charts as plotly figures (JSON-able dicts), drawn from ``ReportData`` only.

No arithmetic beyond unit changes for display (seconds to hours, bytes to GiB). Plotly reads a
few HTML tags inside its strings (``<b>``, ``<br>``), so every name that can come from the user
(the workload, catalog GPU names, device names) is HTML-escaped before it goes into a figure.
Charts are SVG (``scatter``, ``bar``), never WebGL, so a headless browser draws them too.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any

from gpuwise.predict.memory import GIB
from gpuwise.report.data import GPU_OVERHEAD_LABEL, OptionPoint, ReportData, hours
from gpuwise.units import DAY_S, HOUR_S, YEAR_S, duration, duration_span, money, number

Figure = dict[str, Any]

BLUE, LIGHT, GREY, ORANGE, GREEN, RED = "#1f6fb2", "#8fb8de", "#b8b8b8", "#e8772e", "#2e9d5b", "#c8413b"
# Memory parts: no red or green, which mark the devices that do not / do fit.
PARTS = ("#1f6fb2", "#6a51a3", "#e8772e", "#8c6d31", "#17becf", "#d4a017", "#7f7f7f")
PALETTE = ("#1f6fb2", "#e8772e", "#2e9d5b", "#9b59b6", "#c8413b", "#8c6d31", "#17becf", "#7f7f7f")
_FONT = {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 13}
# Tick labels as the CLI prints numbers: 0.0001 and 1,000, never 100μ or 1e+03.
_PLAIN_NUMBERS = {"exponentformat": "none", "separatethousands": True}
# Hover numbers: three significant digits, thousands separated, no exponent (d3-format).
_HOVER_NUMBER = ",.3~r"


def _layout(
    x_title: str, y_title: str, *, x_log: bool = True, y_log: bool = True, x_type: str = "", y_type: str = "",
    **extra: Any,
) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "font": _FONT, "margin": {"l": 64, "r": 16, "t": 16, "b": 56}, "height": 460,
        "xaxis": {"title": {"text": x_title}, "type": x_type or ("log" if x_log else "linear"), "automargin": True,
                  **_PLAIN_NUMBERS},
        "yaxis": {"title": {"text": y_title}, "type": y_type or ("log" if y_log else "linear"), "automargin": True,
                  **_PLAIN_NUMBERS},
        "legend": {"orientation": "h", "y": -0.18, "yanchor": "top"}, "hovermode": "closest",
        "paper_bgcolor": "white", "plot_bgcolor": "white",
    }
    layout.update(extra)
    return layout


# ------------------------------------------------------------------ time vs cost


def _hover(o: OptionPoint) -> str:
    assert o.total_s is not None and o.total_low_s is not None and o.total_high_s is not None
    cost = "no rental cost" if not o.is_gpu else money(o.cost_usd or 0.0)
    lines = [
        f"<b>{escape(o.label)}</b>", f"total {duration_span(o.total_s, o.total_low_s, o.total_high_s)}",
        f"cost {cost}" + (f" ({money(o.cost_low_usd or 0)}–{money(o.cost_high_usd or 0)})" if o.is_gpu else ""),
        f"batch {o.batch_size} per device, {escape(o.strategy)} · bound: {escape(o.bound)}",
        f"source: {escape(o.provenance)}",
    ]
    if o.misses:
        lines.append("misses the " + " and the ".join(o.misses))
    return "<br>".join(lines)


def _scatter(name: str, points: list[OptionPoint], **style: Any) -> dict[str, Any]:
    return {
        "type": "scatter", "name": name,
        "x": [hours(o.total_s or 0.0) for o in points], "y": [o.cost_usd for o in points],
        "text": [_hover(o) for o in points], "hovertemplate": "%{text}<extra></extra>", **style,
    }


def _short(o: OptionPoint) -> str:
    """The point's name on the chart: count and GPU ("8× RTX-3090"); the nodes are in its hover."""
    return escape(f"{o.num_gpus}× {o.device}")


# Tick marks of the time axis, in the units people plan in.
_TIME_TICKS_S = (
    (60, "1 min"), (180, "3 min"), (600, "10 min"), (1800, "30 min"), (3600, "1 h"), (3 * 3600, "3 h"),
    (10 * 3600, "10 h"), (DAY_S, "1 day"), (3 * DAY_S, "3 days"), (7 * DAY_S, "1 week"), (30 * DAY_S, "1 month"),
    (91 * DAY_S, "3 months"), (YEAR_S, "1 year"), (3 * YEAR_S, "3 years"), (10 * YEAR_S, "10 years"),
)


def _log_range(low: float, high: float, pad: float = 1.35) -> list[float]:
    """A log axis range (plotly takes decades) around [low, high], padded by a factor each side."""
    return [math.log10(low / pad), math.log10(high * pad)]


def _time_axis(low_h: float, high_h: float) -> dict[str, Any]:
    """A log axis of hours, labelled in minutes, hours, days, ... as the CLI prints durations."""
    lo, hi = low_h / 1.35, high_h * 1.35
    ticks = [(s / HOUR_S, text) for s, text in _TIME_TICKS_S if lo <= s / HOUR_S <= hi]
    if len(ticks) < 2:  # a narrow range: the two ends, as durations
        ticks = [(low_h, duration(low_h * HOUR_S)), (high_h, duration(high_h * HOUR_S))]
    return {"type": "log", "range": _log_range(low_h, high_h), "tickvals": [v for v, _ in ticks],
            "ticktext": [text for _, text in ticks]}


def _money_axis(low: float, high: float) -> dict[str, Any]:
    """A log axis of US$, labelled $1, $2, $5, $10, ... (decades only over a wide range)."""
    lo, hi = low / 1.35, high * 1.35
    steps = [m * 10.0**e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
             for m in (1, 2, 5)]
    ticks = [v for v in steps if lo <= v <= hi]
    if len(ticks) > 8:
        ticks = [v for v in ticks if math.log10(v).is_integer()]
    if len(ticks) < 2:
        ticks = [low, high]
    labels = [f"${v:,.0f}" if v >= 1 and float(v).is_integer() else money(v) for v in ticks]
    return {"type": "log", "range": _log_range(low, high), "tickvals": ticks, "ticktext": labels}


def time_cost(d: ReportData) -> Figure | None:
    priced = [o for o in d.options if o.fits and o.is_gpu and o.total_s is not None and o.cost_usd is not None]
    if not priced:
        return None  # nothing to place on a log cost axis: the page says so in words
    front = sorted((o for o in priced if o.on_front), key=lambda o: o.total_s or 0.0)
    others = [o for o in priced if not o.on_front and not o.misses]
    missed = [o for o in priced if not o.on_front and o.misses]
    traces = []
    if others:
        traces.append(_scatter("other options", others, mode="markers", marker={"size": 6, "color": LIGHT}))
    if missed:
        traces.append(_scatter("misses the deadline or budget", missed, mode="markers",
                               marker={"size": 6, "color": GREY}))
    if front:
        colours = [GREY if o.misses else BLUE for o in front]
        # Named on the chart, so that a printout says which dot is which: labels alternate above and below.
        traces.append(_scatter("Pareto front", front, mode="lines+markers+text",
                               line={"color": BLUE, "width": 2}, marker={"size": 9, "color": colours},
                               # the recommended point is named by its own arrow
                               texttemplate=["" if o.recommended else _short(o) for o in front], cliponaxis=False,
                               textposition=["top right" if i % 2 == 0 else "bottom left" for i in range(len(front))],
                               textfont={"size": 11, "color": "#33475b"}))
    chosen = [o for o in d.options if o.recommended and o.is_gpu and o.cost_usd is not None]
    if chosen:
        traces.append(_scatter("recommended", chosen, mode="markers",
                               marker={"size": 18, "color": ORANGE, "symbol": "star", "line": {"width": 1}}))
    gpu_hours = [hours(o.total_s or 0.0) for o in priced]
    costs = [o.cost_usd or 0.0 for o in priced]
    shapes: list[dict[str, Any]] = []
    layout = _layout("total time (log)", "cost (log)", shapes=shapes, annotations=[])
    layout["xaxis"].update(_time_axis(min(gpu_hours), max(gpu_hours)))
    notes = layout["annotations"]
    notes.extend(_recommended_note(o, layout["xaxis"]["range"]) for o in chosen)
    layout["yaxis"].update(_money_axis(min(costs), max(costs)))
    layout["legend"] = {"orientation": "h", "y": -0.2, "yanchor": "top", "x": 0}
    layout["margin"] = {"l": 64, "r": 24, "t": 24, "b": 56}
    cpu = next((o for o in d.options if not o.is_gpu and o.fits and o.total_s is not None), None)
    if cpu is not None:
        traces.append(_cpu_trace(cpu, costs, layout, gpu_hours))
    if d.deadline_s is not None:
        shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": hours(d.deadline_s),
                       "x1": hours(d.deadline_s), "y0": 0, "y1": 1, "line": {"color": RED, "dash": "dash"}})
        notes.append({"x": math.log10(hours(d.deadline_s)), "xref": "x", "y": 1, "yref": "paper", "xanchor": "right",
                      "text": f"deadline {duration(d.deadline_s)} ", "showarrow": False, "font": {"color": RED}})
    if d.budget_usd is not None:
        shapes.append({"type": "line", "xref": "paper", "yref": "y", "x0": 0, "x1": 1, "y0": d.budget_usd,
                       "y1": d.budget_usd, "line": {"color": RED, "dash": "dash"}})
        notes.append({"x": 0, "xref": "paper", "y": math.log10(d.budget_usd), "yref": "y", "yanchor": "bottom",
                      "xanchor": "left", "text": f"budget {money(d.budget_usd)}", "showarrow": False,
                      "font": {"color": RED}})
    _extend(layout["xaxis"], [hours(d.deadline_s)] if d.deadline_s is not None else [])
    _extend(layout["yaxis"], [d.budget_usd] if d.budget_usd is not None else [])
    return {"data": traces, "layout": layout}


def _recommended_note(o: OptionPoint, x_range: list[float]) -> dict[str, Any]:
    """The recommendation named on the chart with an arrow, for a printed or screenshotted page; the label
    sits centred over the middle of the time axis, so that it stays inside the chart at any width (a label
    beside its point ran off a phone's screen when the point lay near the middle)."""
    assert o.total_s is not None and o.cost_usd is not None
    return {"x": math.log10(hours(o.total_s)), "y": math.log10(o.cost_usd), "xref": "x", "yref": "y",
            "text": f"<b>recommended</b><br>{_short(o)}<br>{duration(o.total_s)}, {money(o.cost_usd)}",
            "showarrow": True, "arrowhead": 2, "arrowcolor": ORANGE, "axref": "x", "ax": (x_range[0] + x_range[1]) / 2,
            "ay": -60, "xanchor": "center", "align": "left",
            "font": {"color": "#7a3a0c"}, "bgcolor": "rgba(255,255,255,0.85)", "bordercolor": ORANGE}


def _cpu_trace(cpu: OptionPoint, costs: list[float], layout: dict[str, Any], gpu_hours: list[float]) -> Figure:
    """Your CPU costs no rent, so it has no place on the cost axis: a dotted line at its time. Far slower than
    every GPU (weeks against hours), it gets a panel of its own right of a break in the time axis, so that it
    does not squeeze the GPUs together."""
    cpu_h = hours(cpu.total_s or 0.0)
    trace = {
        "type": "scatter", "mode": "lines", "name": "your CPU: no rental cost",
        "x": [cpu_h] * 2, "y": [min(costs), max(costs)],
        "line": {"color": GREEN, "dash": "dot", "width": 2}, "text": [_hover(cpu)] * 2,
        "hovertemplate": "%{text}<extra></extra>",
    }
    if cpu_h <= 3 * max(gpu_hours):
        _extend(layout["xaxis"], [cpu_h])
        return trace
    layout["xaxis"]["domain"] = [0, 0.84]
    layout["xaxis2"] = {
        "domain": [0.88, 1], "type": "log", "range": _log_range(cpu_h, cpu_h, 3.0), "tickvals": [cpu_h],
        "ticktext": [duration(cpu.total_s or 0.0)], "anchor": "y", "showgrid": False, "zeroline": False,
        "title": {"text": "your CPU"},
    }
    layout["annotations"].append({"xref": "x2 domain", "yref": "paper", "x": 0.5, "y": 0.5, "showarrow": False,
                                  "text": "no rental<br>cost", "font": {"color": GREEN}, "bgcolor": "white"})
    return {**trace, "xaxis": "x2"}


def _extend(axis: dict[str, Any], values: list[float]) -> None:
    """Widen a log axis's range (in decades) so that these values (a deadline, a budget) are on the chart."""
    for v in values:
        if v > 0:
            low, high = axis["range"]
            axis["range"] = [min(low, math.log10(v / 1.35)), max(high, math.log10(v * 1.35))]


# ------------------------------------------------------------------ roofline


def roofline(d: ReportData) -> Figure:
    r = d.roofline
    low, high = r.x_range
    traces: list[dict[str, Any]] = []
    for i, roof in enumerate(r.roofs):
        xs, ys = roof.line(low, high)
        traces.append({
            "type": "scatter", "mode": "lines", "name": escape(roof.device), "x": list(xs), "y": list(ys),
            "line": {"color": PALETTE[i % len(PALETTE)], "width": 2, "dash": "solid" if roof.is_gpu else "dot"},
            "hovertemplate": f"{escape(roof.device)}<br>%{{y:{_HOVER_NUMBER}}} TFLOP/s at "
                             f"%{{x:{_HOVER_NUMBER}}} FLOP/byte<extra></extra>",
        })
    traces.append({
        "type": "scatter", "mode": "markers", "name": f"op kinds (placed on {escape(r.reference)})",
        "x": [k.flops_per_byte for k in r.kinds], "y": [k.attainable_tflops for k in r.kinds],
        "text": [escape(k.kind) for k in r.kinds],  # drawn as the layout's labels, placed not to overlap
        "customdata": [
            f"<b>{escape(k.kind)}</b> · {k.num_ops} ops<br>{_si(k.flops)}FLOP, {number(k.bytes / 2**20)} MiB moved"
            f"<br>{number(k.flops_per_byte)} FLOP/byte: {k.bound} bound on {escape(r.reference)}"
            f"<br>{k.time_share:.0%} of its predicted device time" for k in r.kinds
        ],
        "hovertemplate": "%{customdata}<extra></extra>",
        "marker": {"size": [8 + 30 * k.time_share ** 0.5 for k in r.kinds], "color": ORANGE, "opacity": 0.8,
                   "line": {"width": 1, "color": "#333"}},
    })
    layout = _layout("FLOP per byte moved (log)", "attainable TFLOP/s (log)", annotations=_kind_labels(r.kinds))
    # A phone draws a decade in a quarter of the pixels: labels need more room there (the page swaps them in).
    layout["meta"] = {"narrow_annotations": _kind_labels(r.kinds, apart_decades=1.2)}
    return {"data": traces, "layout": layout}


def _kind_labels(kinds: Any, apart_decades: float = 0.34) -> list[dict[str, Any]]:
    """Each op kind's name above its marker, raised a level where it would overlap a neighbour's.

    Placement only: two labels collide when their points lie within ``apart_decades`` of each other on
    both log axes; each takes the lowest level no colliding neighbour has taken.
    """
    placed: list[tuple[float, float, int]] = []
    notes = []
    for k in sorted(kinds, key=lambda k: (k.flops_per_byte, k.attainable_tflops)):
        if k.flops_per_byte <= 0 or k.attainable_tflops <= 0:
            continue
        x, y = math.log10(k.flops_per_byte), math.log10(k.attainable_tflops)
        taken = {level for px, py, level in placed if abs(px - x) < apart_decades and abs(py - y) < apart_decades}
        level = next(n for n in range(len(placed) + 1) if n not in taken)
        placed.append((x, y, level))
        notes.append({"x": x, "y": y, "xref": "x", "yref": "y", "text": escape(k.kind), "showarrow": True,
                      "arrowhead": 0, "arrowwidth": 1, "arrowcolor": "#888", "ax": 0, "ay": -22 - 17 * level,
                      "font": {"size": 12, "color": "#333"}, "bgcolor": "rgba(255,255,255,0.8)"})
    return notes


def _si(x: float) -> str:
    """1.23e12 -> '1.23 T' (the unit follows), as the CLI prints FLOPs."""
    for factor, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= factor:
            return f"{x / factor:.3g} {prefix}"
    return f"{x:.3g} "


# ------------------------------------------------------------------ memory


def memory(d: ReportData) -> Figure:
    m = d.memory
    need = f"this step (batch {m.batch_size})"
    traces: list[dict[str, Any]] = []
    for i, (what, size) in enumerate(m.parts):
        colour = GREY if what == GPU_OVERHEAD_LABEL else PARTS[i % len(PARTS)]
        traces.append({
            "type": "bar", "orientation": "h", "name": escape(what), "x": [size / GIB], "y": [need],
            "marker": {"color": colour}, "hovertemplate": f"{escape(what)}: %{{x:.2f}} GiB<extra></extra>",
        })
    # One trace per colour, so that each legend swatch has the colour its text names.
    for fits, name, colour in ((True, "fits at this batch", GREEN),
                               (False, "too small at this batch", RED)):
        shown = [c for c in m.capacities if c.fits == fits]
        if not shown:
            continue
        traces.append({
            "type": "bar", "orientation": "h", "name": name,
            "x": [c.bytes / GIB for c in shown], "y": [escape(c.name) for c in shown],
            "marker": {"color": colour, "opacity": 0.55},
            "customdata": [escape(c.planned) if c.planned else ("GPU" if c.is_gpu else "") for c in shown],
            "hovertemplate": "%{y}: %{x:.1f} GiB<br>%{customdata}<extra></extra>",
        })
    rows = [need, *(escape(c.name) for c in m.capacities)]
    need_gib = m.gpu_bytes / GIB
    line = {"type": "line", "xref": "x", "yref": "paper", "x0": need_gib, "x1": need_gib, "y0": 0, "y1": 1,
            "line": {"color": "#333", "dash": "dash", "width": 1.5}}
    note = {"x": 1, "xref": "paper", "y": 1, "yref": "paper", "yanchor": "bottom", "xanchor": "right",
            "text": f"dashed line: one GPU needs {need_gib:,.1f} GiB", "showarrow": False, "font": {"size": 12}}
    # The legend (one entry a line when the page is narrow) sits under the axis; the figure grows by its height.
    legend_px = 22 * len(traces) + 24
    layout = _layout("GiB", "", x_log=False, y_type="category", barmode="stack",
                     height=max(320, 90 + 24 * len(rows)) + legend_px, shapes=[line], annotations=[note])
    layout["yaxis"].update({"categoryorder": "array", "categoryarray": list(reversed(rows))})
    layout["legend"] = {"orientation": "h", "y": -legend_px / layout["height"] * 0.35, "yanchor": "top",
                        "x": 0, "traceorder": "normal"}
    layout["meta"] = {"legend_sized": True}  # the page leaves this legend where it is on a phone
    layout["margin"] = {"l": 8, "r": 16, "t": 28, "b": legend_px}
    return {"data": traces, "layout": layout}


# ------------------------------------------------------------------ stored measurements


def speedups(d: ReportData) -> Figure | None:
    rows = d.speedups.rows
    if not rows:
        return None
    traces = []
    for i, gpu in enumerate(dict.fromkeys(s.gpu for s in rows)):
        mine = [s for s in rows if s.gpu == gpu]
        traces.append({
            "type": "bar", "name": escape(gpu), "x": [escape(s.setting) for s in mine], "y": [s.speedup for s in mine],
            "text": [f"{s.speedup:.1f}×" for s in mine], "textposition": "outside",
            "marker": {"color": PALETTE[i % len(PALETTE)]},
            "customdata": [f"CPU {escape(s.cpu)}: {s.cpu_step_s * 1e3:,.1f} ms/step<br>{escape(s.gpu)}: "
                           f"{s.gpu_step_s * 1e3:,.1f} ms/step<br>measured {escape(s.measured_at)}" for s in mine],
            "hovertemplate": "%{x}<br>%{y:.1f}× faster than the CPU<br>%{customdata}<extra></extra>",
        })
    layout = _layout("", "speed-up over the CPU (×, median step)", x_type="category", y_log=False, barmode="group")
    return {"data": traces, "layout": layout}


def checks(d: ReportData) -> Figure | None:
    rows = d.checks.rows
    if not rows:
        return None
    names = {"published": "published measurement (NVIDIA)", "bench": "gpuwise bench, here",
             "train": "gpuwise train, here"}
    traces: list[dict[str, Any]] = []
    for i, kind in enumerate(k for k in names if any(c.kind == k for c in rows)):
        mine = [c for c in rows if c.kind == kind]
        traces.append({
            "type": "scatter", "mode": "markers", "name": names[kind],
            "x": [c.measured for c in mine], "y": [c.predicted for c in mine],
            "marker": {"size": 10, "color": PALETTE[i % len(PALETTE)]},
            "customdata": [f"<b>{escape(c.label)}</b><br>error {c.error:+.0%}<br>{escape(c.source)}"
                           + (f"<br>{escape(c.note)}" if c.note else "") for c in mine],
            "hovertemplate": f"%{{customdata}}<br>measured %{{x:{_HOVER_NUMBER}}}, predicted %{{y:{_HOVER_NUMBER}}}"
                             "<extra></extra>",
        })
    values = [v for c in rows for v in (c.measured, c.predicted)]
    low, high = min(values) / 1.5, max(values) * 1.5
    traces.append({"type": "scatter", "mode": "lines", "name": "predicted = measured", "x": [low, high],
                   "y": [low, high], "line": {"color": "#555", "dash": "dash", "width": 1}, "hoverinfo": "skip"})
    unit = escape(d.checks.rows[0].unit)
    layout = _layout(f"measured ({unit}, log)", f"predicted ({unit}, log)")
    return {"data": traces, "layout": layout}


def figures(d: ReportData) -> dict[str, Figure]:
    """Every chart of the page by its element id; a section without data has no figure."""
    out = {"chart-roofline": roofline(d), "chart-memory": memory(d)}
    for key, fig in (("chart-time-cost", time_cost(d)), ("chart-speedups", speedups(d)), ("chart-checks", checks(d))):
        if fig is not None:
            out[key] = fig
    return out
