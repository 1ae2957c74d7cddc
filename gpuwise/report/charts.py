"""The page's charts as plotly figures (JSON-able dicts), drawn from ``ReportData`` only.

No arithmetic beyond unit changes for display (seconds to hours, bytes to GiB). Plotly reads a
few HTML tags inside its strings (``<b>``, ``<br>``), so every name that can come from the user
(the workload, catalog GPU names, device names) is HTML-escaped before it goes into a figure.
Charts are SVG (``scatter``, ``bar``), never WebGL, so a headless browser draws them too.
"""

from __future__ import annotations

from html import escape
from typing import Any

from gpuwise.predict.memory import GIB
from gpuwise.report.data import GPU_OVERHEAD_LABEL, OptionPoint, ReportData, hours
from gpuwise.units import duration, duration_span, money

Figure = dict[str, Any]

BLUE, LIGHT, GREY, ORANGE, GREEN, RED = "#1f6fb2", "#8fb8de", "#b8b8b8", "#e8772e", "#2e9d5b", "#c8413b"
# Memory parts: no red or green, which mark the devices that do not / do fit.
PARTS = ("#1f6fb2", "#6a51a3", "#e8772e", "#8c6d31", "#17becf", "#d4a017", "#7f7f7f")
PALETTE = ("#1f6fb2", "#e8772e", "#2e9d5b", "#9b59b6", "#c8413b", "#8c6d31", "#17becf", "#7f7f7f")
_FONT = {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 13}


def _layout(
    x_title: str, y_title: str, *, x_log: bool = True, y_log: bool = True, x_type: str = "", y_type: str = "",
    **extra: Any,
) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "font": _FONT, "margin": {"l": 64, "r": 16, "t": 16, "b": 56}, "height": 460,
        "xaxis": {"title": {"text": x_title}, "type": x_type or ("log" if x_log else "linear"), "automargin": True},
        "yaxis": {"title": {"text": y_title}, "type": y_type or ("log" if y_log else "linear"), "automargin": True},
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


def time_cost(d: ReportData) -> Figure | None:
    priced = [o for o in d.options if o.fits and o.is_gpu and o.total_s is not None and o.cost_usd is not None]
    if not priced:
        return None  # nothing to place on a log cost axis: the page says so in words
    front = sorted((o for o in priced if o.on_front), key=lambda o: o.total_s or 0.0)
    others = [o for o in priced if not o.on_front and not o.misses]
    missed = [o for o in priced if not o.on_front and o.misses]
    traces = []
    if front:
        colours = [GREY if o.misses else BLUE for o in front]
        traces.append(_scatter("Pareto front (nothing is both faster and cheaper)", front, mode="lines+markers",
                               line={"color": BLUE, "width": 2}, marker={"size": 9, "color": colours}))
    if others:
        traces.append(_scatter("other options", others, mode="markers", marker={"size": 6, "color": LIGHT}))
    if missed:
        traces.append(_scatter("misses the deadline or budget", missed, mode="markers",
                               marker={"size": 6, "color": GREY}))
    chosen = [o for o in d.options if o.recommended and o.is_gpu and o.cost_usd is not None]
    if chosen:
        traces.append(_scatter("recommended", chosen, mode="markers",
                               marker={"size": 18, "color": ORANGE, "symbol": "star", "line": {"width": 1}}))
    shapes, notes = [], []
    cpu = next((o for o in d.options if not o.is_gpu and o.fits and o.total_s is not None), None)
    if cpu is not None:
        costs = [o.cost_usd or 0.0 for o in priced]
        traces.append({
            "type": "scatter", "mode": "lines", "name": f"{escape(cpu.label)}: no rental cost",
            "x": [hours(cpu.total_s or 0.0)] * 2, "y": [min(costs), max(costs)],
            "line": {"color": GREEN, "dash": "dot", "width": 2}, "text": [_hover(cpu)] * 2,
            "hovertemplate": "%{text}<extra></extra>",
        })
    if d.deadline_s is not None:
        shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": hours(d.deadline_s),
                       "x1": hours(d.deadline_s), "y0": 0, "y1": 1, "line": {"color": RED, "dash": "dash"}})
        notes.append({"x": hours(d.deadline_s), "xref": "x", "y": 1, "yref": "paper", "xanchor": "left",
                      "text": f" deadline {duration(d.deadline_s)}", "showarrow": False, "font": {"color": RED}})
    if d.budget_usd is not None:
        shapes.append({"type": "line", "xref": "paper", "yref": "y", "x0": 0, "x1": 1, "y0": d.budget_usd,
                       "y1": d.budget_usd, "line": {"color": RED, "dash": "dash"}})
        notes.append({"x": 0, "xref": "paper", "y": d.budget_usd, "yref": "y", "yanchor": "bottom",
                      "xanchor": "left", "text": f"budget {money(d.budget_usd)}", "showarrow": False,
                      "font": {"color": RED}})
    # Log axes take their range in decades; plotly's log autorange ignores shapes, so include them.
    layout = _layout("total time (hours, log)", "cost (US$, log)", shapes=shapes, annotations=notes)
    return {"data": traces, "layout": layout}


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
            "hovertemplate": f"{escape(roof.device)}<br>%{{y:.3g}} TFLOP/s at %{{x:.3g}} FLOP/byte<extra></extra>",
        })
    traces.append({
        "type": "scatter", "mode": "markers+text", "name": f"op kinds (placed on {escape(r.reference)})",
        "x": [k.flops_per_byte for k in r.kinds], "y": [k.attainable_tflops for k in r.kinds],
        "text": [escape(k.kind) for k in r.kinds], "textposition": "top center",
        "customdata": [
            f"<b>{escape(k.kind)}</b> · {k.num_ops} ops<br>{k.flops:.3g} FLOPs, {k.bytes / 2**20:,.1f} MiB moved"
            f"<br>{k.flops_per_byte:.3g} FLOP/byte: {k.bound} bound on {escape(r.reference)}"
            f"<br>{k.time_share:.0%} of its predicted device time" for k in r.kinds
        ],
        "hovertemplate": "%{customdata}<extra></extra>",
        "marker": {"size": [8 + 30 * k.time_share ** 0.5 for k in r.kinds], "color": ORANGE, "opacity": 0.8,
                   "line": {"width": 1, "color": "#333"}},
    })
    layout = _layout("FLOP per byte moved (log)", "attainable TFLOP/s (log)")
    return {"data": traces, "layout": layout}


# ------------------------------------------------------------------ memory


def memory(d: ReportData) -> Figure:
    m = d.memory
    need = f"this step, batch {m.batch_size}, on one GPU"
    traces: list[dict[str, Any]] = []
    for i, (what, size) in enumerate(m.parts):
        colour = GREY if what == GPU_OVERHEAD_LABEL else PARTS[i % len(PARTS)]
        traces.append({
            "type": "bar", "orientation": "h", "name": escape(what), "x": [size / GIB], "y": [need],
            "marker": {"color": colour}, "hovertemplate": f"{escape(what)}: %{{x:.2f}} GiB<extra></extra>",
        })
    names = [escape(c.name) for c in m.capacities]
    traces.append({
        "type": "bar", "orientation": "h", "name": "memory of the device (green: the step fits)",
        "x": [c.bytes / GIB for c in m.capacities], "y": names,
        "marker": {"color": [GREEN if c.fits else RED for c in m.capacities], "opacity": 0.55},
        "hovertemplate": "%{y}: %{x:.1f} GiB<extra></extra>",
    })
    rows = [need, *names]
    layout = _layout("GiB", "", x_log=False, y_type="category", barmode="stack",
                     height=max(320, 60 + 24 * len(rows)))
    layout["yaxis"].update({"categoryorder": "array", "categoryarray": list(reversed(rows))})
    layout["legend"] = {"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0}
    layout["margin"] = {"l": 8, "r": 16, "t": 80, "b": 48}
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
            "hovertemplate": "%{customdata}<br>measured %{x:,.4g}, predicted %{y:,.4g}<extra></extra>",
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
