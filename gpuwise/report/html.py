"""The report as one self-contained HTML page: text, tables, and plotly charts drawn as SVG.

plotly.js is embedded whole (``plotly.offline.get_plotlyjs()``, about 4.8 MB), so the page
opens offline. The page's data (``ReportData``) and its figures travel as JSON in
``<script type="application/json">`` blocks, encoded so that no ``</script>`` (or any ``<``,
``>``, ``&``) can appear in them; all other text is HTML-escaped. Once every chart is drawn,
the boot script sets ``data-charts-rendered`` on ``<body>`` (the browser test waits for it).
"""

from __future__ import annotations

import json
import math
from html import escape
from typing import Any

from gpuwise.predict.bands import bands_text
from gpuwise.report.charts import figures
from gpuwise.report.data import OptionPoint, ReportData
from gpuwise.report.own import own_section, rent_vs_own
from gpuwise.units import duration_span, money, number

DATA_ID, FIGURES_ID = "gpuwise-data", "gpuwise-figures"

_CSS = """
:root { --ink: #1d2430; --muted: #5b6573; --line: #dfe3e8; --accent: #1f6fb2; --bg: #f6f7f9; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
       background: var(--bg); }
main { max-width: 1280px; margin: 0 auto; padding: 16px; }
header h1 { font-size: 1.5rem; margin: 8px 0 2px; overflow-wrap: anywhere; }
.setting { color: var(--muted); margin: 0 0 12px; overflow-wrap: anywhere; }
section { background: white; border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px;
          margin: 0 0 16px; }
section h2 { font-size: 1.15rem; margin: 4px 0 8px; }
.verdict { border-left: 6px solid var(--accent); }
.verdict.unmet { border-left-color: #c8413b; }
.headline { font-size: 1.25rem; font-weight: 600; margin: 4px 0; overflow-wrap: anywhere; }
.muted, .note { color: var(--muted); }
.chart { width: 100%; min-height: 320px; overflow: hidden; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
td.num, th.num { text-align: right; white-space: nowrap; }
.empty { padding: 12px; background: var(--bg); border-radius: 6px; }
details { margin: 6px 0; }
summary { cursor: pointer; }
code { font-size: 0.9em; overflow-wrap: anywhere; }
@media (max-width: 640px) { main { padding: 8px; } section { padding: 10px; } body { font-size: 14px; }
  .headline { font-size: 1.1rem; } }
"""

_BOOT = """
(function () {
  var figures = JSON.parse(document.getElementById("%(figures)s").textContent);
  // No toolbar over the legend: drag to zoom, double-click to reset, hover for numbers.
  var config = {responsive: true, displaylogo: false, displayModeBar: false};
  var narrow = document.documentElement.clientWidth < 700;
  var drawn = Object.keys(figures).map(function (id) {
    var f = figures[id];
    if (narrow) {  // a phone: points keep their hover, but names beside every point would overlap
      f.data.forEach(function (t) { if (t.mode) { t.mode = t.mode.replace("+text", ""); } });
      if (f.layout.legend) { f.layout.legend.font = {size: 11}; }
      var meta = f.layout.meta || {};
      if (meta.narrow_annotations) { f.layout.annotations = meta.narrow_annotations; }
      var legend = f.layout.legend;
      if (legend && legend.orientation === "h" && legend.y < 0 && legend.yanchor === "top" && !meta.legend_sized) {
        legend.y = -0.32;  // under the axis title, which a wrapped legend would otherwise cover
        f.layout.height = (f.layout.height || 460) + 90;
      }
    }
    return Plotly.newPlot(document.getElementById(id), f.data, f.layout, config);
  });
  Promise.all(drawn).then(function () { document.body.setAttribute("data-charts-rendered", drawn.length); });
})();
"""


def script_json(value: Any) -> str:
    """JSON that is safe inside a ``<script>`` element: ``<``, ``>``, ``&`` and line separators escaped.

    Non-finite floats become null (JSON has no NaN, and ``JSON.parse`` would fail on the page).
    """
    text = json.dumps(_finite(value), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                         ("\u2029", "\\u2029")):
        text = text.replace(raw, escaped)
    return text


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def render(d: ReportData) -> str:
    """The whole page."""
    from plotly.offline import get_plotlyjs

    figs = figures(d)
    rent_own = rent_vs_own(d.own)
    if rent_own is not None:
        figs["chart-rent-own"] = rent_own
    body = "\n".join([
        _header(d), _verdict(d), _time_cost(d, figs), own_section(d.own, figs), _roofline(d), _memory(d),
        _speedups(d, figs), _checks(d, figs),
        _environment(d), _provenance(d),
    ])
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(d.title)}</title>
<style>{_CSS}</style>
</head>
<body>
<main>
{body}
</main>
<script type="application/json" id="{DATA_ID}">{script_json(d.to_dict())}</script>
<script type="application/json" id="{FIGURES_ID}">{script_json(figs)}</script>
<script>{get_plotlyjs()}</script>
<script>{_BOOT % {"figures": FIGURES_ID}}</script>
</body>
</html>
"""


# ------------------------------------------------------------------ sections


def _section(title: str, inner: str, *, cls: str = "", anchor: str = "") -> str:
    ident = f' id="{anchor}"' if anchor else ""
    klass = f' class="{cls}"' if cls else ""
    return f"<section{ident}{klass}>\n<h2>{escape(title)}</h2>\n{inner}\n</section>"


def _table(head: list[str], rows: list[list[str]], numeric: set[int] | None = None) -> str:
    """A table; cells are escaped here (pass plain text)."""
    numeric = numeric or set()

    def cls(i: int) -> str:
        return ' class="num"' if i in numeric else ""

    th = "".join(f"<th{cls(i)}>{escape(h)}</th>" for i, h in enumerate(head))
    body = "".join("<tr>" + "".join(f"<td{cls(i)}>{escape(c)}</td>" for i, c in enumerate(r)) + "</tr>"
                   for r in rows)
    return f'<div class="table-wrap"><table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table></div>'


def _chart(ident: str, figs: dict[str, Any], empty: str) -> str:
    if ident in figs:
        return f'<div class="chart" id="{ident}"></div>'
    return f'<p class="empty" id="{ident}-empty">{escape(empty)}</p>'


def _header(d: ReportData) -> str:
    return (f"<header><h1>{escape(d.title)}</h1><p class=\"setting\">{escape(d.setting)}</p></header>")


def _verdict(d: ReportData) -> str:
    r = d.recommendation
    band = (f"Uncertainty band: ±{r.band:.0%} on time and cost ({escape(r.provenance or '')} prediction; "
            "the band is the model's error measured by gpuwise validate).") if r.band is not None else ""
    extra = "".join(f"<li>{escape(x)}</li>" for x in (*r.also, *r.closest))
    inner = (f'<p class="headline">{escape(r.headline)}</p><p>Why: {escape(r.reason)}.</p>'
             f'<p class="muted">{band}</p>' + (f"<ul>{extra}</ul>" if extra else ""))
    return _section("Recommendation", inner, cls="verdict" + ("" if r.met else " unmet"), anchor="recommendation")


def _span(o: OptionPoint) -> str:
    assert o.total_s is not None and o.total_low_s is not None and o.total_high_s is not None
    return duration_span(o.total_s, o.total_low_s, o.total_high_s)


def _time_cost(d: ReportData, figs: dict[str, Any]) -> str:
    front = sorted((o for o in d.options if o.on_front), key=lambda o: o.total_s or 0.0)
    cpu = [o for o in d.options if not o.is_gpu and o.fits]
    rows = [
        [o.label + (" (recommended)" if o.recommended else ""), _span(o),
         "$0 (yours)" if not o.is_gpu else money(o.cost_usd or 0.0), str(o.batch_size), o.bound, o.provenance,
         ", ".join(o.misses) or "—"]
        for o in dict.fromkeys([*front, *cpu]) if o.total_s is not None
    ]
    missing = "".join(f"<li>{escape(x)}</li>" for x in d.off_chart)
    inner = (
        "<p>Every option: the CPU and each GPU × count, total time against rental cost. The line joins the "
        "Pareto front, each point named; grey points miss the deadline or the budget; the star is the "
        "recommendation; the dotted line is your own CPU, which costs no rent (in a panel of its own when it is "
        "far slower than every GPU). Hover a point for its numbers and where they come from.</p>"
        + _chart("chart-time-cost", figs, "No option that fits has a price, so there is nothing to place on a "
                 "cost axis; see the recommendation above and the memory chart below.")
        + (f'<p class="note">Not on the chart:</p><ul class="note">{missing}</ul>' if missing else "")
        + "<h3>The Pareto front, fastest first, and your CPU</h3>"
        + _table(["option", "total (band)", "cost", "batch", "bound", "source", "misses"], rows, {2, 3})
    )
    return _section("Time vs cost", inner, anchor="time-cost")


def _roofline(d: ReportData) -> str:
    r = d.roofline
    rows = [[f.device, number(f.compute_tflops), number(f.bandwidth_gbps), number(f.ridge_flops_per_byte)]
            for f in r.roofs]
    sources = "".join(f"<li>{escape(f.device)}: compute {escape(f.compute_source)}; bandwidth "
                      f"{escape(f.bandwidth_source)}</li>" for f in r.roofs)
    kinds = [[k.kind, f"{k.num_ops:,}", number(k.flops_per_byte), k.bound, f"{k.time_share:.0%}"] for k in r.kinds]
    skipped = "".join(f"<li>{escape(x)}</li>" for x in r.not_drawn)
    inner = (
        f"<p>Each device's roof at {escape(r.precision)}: left of its ridge an op is limited by memory bandwidth "
        "(the sloped part), right of it by compute (the flat part). The model's op kinds sit at their arithmetic "
        f"intensity on the roof of {escape(r.reference)}; a bigger marker is a bigger share of the predicted "
        "step. Ops far left gain from bandwidth, ops on the flat part from compute (tensor cores, a lower "
        "precision). Roofs are the achievable rates the prediction uses, not datasheet peaks.</p>"
        '<div class="chart" id="chart-roofline"></div>'
        + _table(["device", "TFLOP/s", "GB/s", "ridge (FLOP/byte)"], rows, {1, 2, 3})
        + f'<details><summary>Where each roof comes from</summary><ul class="note">{sources}</ul></details>'
        + "<h3>Op kinds</h3>"
        + _table(["kind", "ops", "FLOP/byte", f"bound on {r.reference}", "share of step"], kinds, {1, 2, 4})
        + (f'<p class="note">Not drawn:</p><ul class="note">{skipped}</ul>' if skipped else "")
    )
    return _section("Roofline: why bandwidth matters for some ops and compute for others", inner, anchor="roofline")


def _gib(n: int) -> str:
    return f"{n / 2**30:,.2f} GiB"


def _memory(d: ReportData) -> str:
    m = d.memory
    rows = [[what, _gib(size)] for what, size in m.parts]
    rows.append([f"one GPU must hold (peak in {m.peak_phase})", _gib(m.gpu_bytes)])
    inner = (
        f"<p>What one training step at batch {m.batch_size} per device keeps live at its peak (the dashed line: "
        "what one GPU must hold), against the memory of each device the plan considered (green: it fits at this "
        "batch; red: the plan lowers the batch or shards with FSDP). Your CPU is coloured by its own plan: its "
        "step, profiled for the CPU, is not the GPU's (hover its bar). With 2 or more GPUs, DDP adds a copy of "
        "the gradients for its all-reduce.</p>"
        '<div class="chart" id="chart-memory"></div>' + _table(["what", "bytes"], rows, {1})
        + f'<p class="note">Source: {escape(d.provenance.memory_source)}.</p>'
    )
    return _section("Memory", inner, anchor="memory")


def _speedups(d: ReportData, figs: dict[str, Any]) -> str:
    s = d.speedups
    rows = [[x.setting, x.gpu, x.cpu, f"{x.cpu_step_s * 1e3:,.1f}", f"{x.gpu_step_s * 1e3:,.1f}",
             f"{x.speedup:.1f}×", x.measured_at] for x in s.rows]
    inner = (
        f"<p>From the stored benchmark results ({escape(s.store)}): each GPU against the CPU of the same machine, "
        "same workload and setting, median step time of <code>gpuwise bench</code>.</p>"
        + _chart("chart-speedups", figs, s.empty_reason or "")
        + (_table(["setting", "GPU", "CPU", "CPU ms/step", "GPU ms/step", "speed-up", "measured (UTC)"], rows,
                  {3, 4, 5}) if rows else "")
    )
    return _section("CPU vs GPU speed-ups, measured", inner, anchor="speedups")


def _checks(d: ReportData, figs: dict[str, Any]) -> str:
    c = d.checks
    rows = [[x.label, x.kind, _rate(x.measured), _rate(x.predicted), f"{x.error:+.1%}", x.source, x.note]
            for x in c.rows]
    inner = (
        "<p>This plan's predictions against measurements of the same setting: the published measurements shipped "
        "with gpuwise (same workload, GPU, GPU count, precision, batch and shape as an option of this plan), "
        "options measured here by <code>gpuwise bench</code> (the roofline model alone against the measured "
        "median), and <code>gpuwise train</code> runs that stored their prediction. The held-out error over all "
        "published rows is <code>gpuwise validate</code>'s.</p>"
        + _chart("chart-checks", figs, c.empty_reason or "")
        + (_table(["option", "from", "measured", "predicted", "error", "source", "note"], rows, {2, 3, 4})
           if rows else "")
    )
    return _section("Predicted vs measured", inner, anchor="checks")


def _rate(x: float) -> str:
    return number(x)


def _environment(d: ReportData) -> str:
    e = d.environment
    rows = [
        ["made (UTC)", e.made_at], ["command", e.command], ["gpuwise", e.gpuwise], ["torch", e.torch],
        ["python", e.python], ["OS", e.os], ["CPU", f"{e.cpu} ({e.cpu_cores} cores)"],
        ["RAM", _gib(e.ram_bytes)], ["GPUs here", ", ".join(e.gpus_here) or "none"],
    ]
    return _section("Made on", _table(["", ""], rows), anchor="environment")


def _provenance(d: ReportData) -> str:
    p = d.provenance
    bands = bands_text(p.bands)
    items = [
        "Each option's time says where it comes from (the table above and each point's hover): measured here "
        "(a stored bench of the same setting), extrapolated from a measurement on another GPU, or analytical "
        "(the roofline model).",
        f"Uncertainty bands, the held-out error of each kind of prediction that gpuwise validate measures: {bands}; "
        "a cost has the band of its time.",
        f"GPU efficiency constants: {p.efficiency_source}.", f"CPU ceilings: {p.cpu_ceilings}.",
        f"Memory: {p.memory_source}.", f"Catalog files read: {', '.join(p.catalog_files)}.",
        *p.notes,
    ]
    gpus = "".join(
        f"<details><summary>{escape(name)}</summary>"
        + _table(["field", "value · source"], [[k, v] for k, v in fields.items()]) + "</details>"
        for name, fields in p.gpu_sources.items()
    )
    inner = ("<ul>" + "".join(f"<li>{escape(x)}</li>" for x in items) + "</ul>"
             + "<h3>Catalog numbers of every GPU planned, with their sources</h3>" + gpus)
    return _section("Where every number comes from", inner, anchor="provenance")
