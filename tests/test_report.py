"""report: golden tests of the page's data (the numbers in the charts are the plan's), escaping of
names from the user, the empty sections said in words, and the CLI's one-line errors.

The page is parsed back (its JSON blocks) and compared with ``plan(...)`` run here; the browser
test (tests/test_report_browser.py) checks that the same page draws.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

import gpuwise.plan as plan_module
import gpuwise.report.data as data_module
from gpuwise.config import Precision
from gpuwise.hardware.catalog import PACKAGED_LABEL, Catalog, parse_catalog_text
from gpuwise.plan import Plan, PlanConfig, ProfileCache, plan
from gpuwise.predict.published import MappedRow, load_published, map_row
from gpuwise.predict.step import gpu_rates
from gpuwise.report import gather
from gpuwise.report.charts import GREEN, RED
from gpuwise.report.data import GPU_OVERHEAD_LABEL
from gpuwise.report.html import DATA_ID, FIGURES_ID, render, script_json
from gpuwise.store import open_store
from tests.helpers import CEILINGS, EVIL, EVIL_GPU, ROOT, page_json, run_cli, stored_result

EXAMPLE = str(ROOT / "examples" / "my_model.py") + ":build"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
GPUS = ("T4", "L4", "H100-SXM5-80GB", EVIL)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    text = resources.files("gpuwise.hardware").joinpath("data", "gpus.toml").read_text(encoding="utf-8")
    return parse_catalog_text(EVIL_GPU, "test", base=parse_catalog_text(text, PACKAGED_LABEL))


@pytest.fixture(scope="module")
def profiles() -> ProfileCache:
    return ProfileCache()


@pytest.fixture(autouse=True)
def fixed_cpu(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    fixed = lambda device, store_path=None, **kw: CEILINGS  # noqa: E731
    monkeypatch.setattr(plan_module, "cached_ceilings", fixed)
    monkeypatch.setattr(plan_module, "_ram_bytes", lambda: 8 * 2**30)
    yield


def make(catalog: Catalog, profiles: ProfileCache, db: Path, **overrides: Any) -> Plan:
    # fp32: the 5 h deadline was chosen for its times (some options miss it); precision auto is the default since
    settings: dict[str, Any] = dict(workload="resnet18", dataset_size=1e6, epochs=10, batch_size=16, gpus=GPUS,
                                    max_gpus=8, deadline_s=3600.0 * 5, precision="fp32")
    settings.update(overrides)
    return plan(PlanConfig.of(**settings), catalog, db, profiles=profiles)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "results.db"


def test_page_data_and_time_cost_chart_are_the_plans_numbers(catalog: Catalog, profiles: ProfileCache,
                                                             db: Path) -> None:
    p = make(catalog, profiles, db)
    page = render(gather(p, store_path=db))
    data, figs = page_json(page, DATA_ID), page_json(page, FIGURES_ID)

    assert [o["label"] for o in data["options"]] == [o.label for o in p.options]
    for got, o in zip(data["options"], p.options, strict=True):
        assert got["total_s"] == (o.run.total_s if o.run else None)
        assert got["cost_usd"] == (o.run.cost_usd if o.run else None)
        assert got["provenance"] == o.provenance
    assert data["recommendation"]["headline"] == p.recommendation.headline

    traces = {t["name"]: t for t in figs["chart-time-cost"]["data"]}
    front = [o for o in p.pareto if o.is_gpu]
    drawn_front = traces["Pareto front"]
    assert [x * 3600 for x in drawn_front["x"]] == pytest.approx([o.run.total_s for o in front if o.run])
    assert drawn_front["y"] == [o.run.cost_usd for o in front if o.run]
    # every priced GPU option is drawn exactly once among the option traces
    priced = sorted((o.run.total_s, o.run.cost_usd) for o in p.options
                    if o.is_gpu and o.run is not None and o.run.cost_usd is not None)
    option_traces = [t for name, t in traces.items() if name in (
        "Pareto front", "other options", "misses the deadline or budget")]
    drawn = sorted((x * 3600, y) for t in option_traces for x, y in zip(t["x"], t["y"], strict=True))
    assert len(drawn) == len(priced) and len(priced) > 3
    for (x, y), (total_s, cost_usd) in zip(drawn, priced, strict=True):
        assert x == pytest.approx(total_s) and y == pytest.approx(cost_usd)
    missed = traces["misses the deadline or budget"]
    assert all(x * 3600 > 5 * 3600 for x in missed["x"])  # greyed: past the 5 h deadline
    rec = p.recommendation.option
    assert rec is not None and rec.run is not None
    assert traces["recommended"]["y"] == [rec.run.cost_usd]
    assert any(s["x0"] == 5.0 for s in figs["chart-time-cost"]["layout"]["shapes"])  # the deadline line


def test_roofline_and_memory_charts_are_the_profiles_numbers(catalog: Catalog, profiles: ProfileCache,
                                                             db: Path) -> None:
    p = make(catalog, profiles, db, gpus=("T4", "H100-SXM5-80GB"))
    profile = profiles.get(plan_module.get_workload("resnet18"), batch_size=16, precision=Precision.FP32,
                           optimizer=p.config.optimizer, seq_len=None, image_size=None)
    figs = page_json(render(gather(p, store_path=db)), FIGURES_ID)

    roof = figs["chart-roofline"]["data"]
    assert [t["name"] for t in roof[:-1]] == ["T4", "H100-SXM5-80GB", "your CPU (Test CPU)"]
    kinds = {k.kind: k for k in profile.kinds}
    points = roof[-1]
    assert set(points["text"]) <= set(kinds) and "conv" in points["text"]
    for name, x in zip(points["text"], points["x"], strict=True):
        assert x == pytest.approx(kinds[name].flops_per_byte)
    cpu_roof = roof[-2]
    assert max(cpu_roof["y"]) == pytest.approx(0.2)  # the CPU's measured fp32 GEMM ceiling, TFLOP/s
    # The GPUs' roofs are the model's: the achievable bandwidth (a measured triad's share) times the
    # fitted efficiency at the GPU's generation (its scale), not the datasheet's.
    h100 = next(r for r in gather(p, store_path=db).roofline.roofs if r.device == "H100-SXM5-80GB")
    rates = gpu_rates(catalog.get("H100-SXM5-80GB"))
    hopper = p.basis.efficiency.at_generation("Hopper")
    assert h100.bandwidth_gbps == pytest.approx(rates.memory_gbps * hopper.bandwidth)
    assert h100.bandwidth_gbps < catalog.get("H100-SXM5-80GB").memory_bandwidth_gbps * hopper.bandwidth

    bars = figs["chart-memory"]["data"]
    devices = [t for t in bars if t["name"].endswith(" at this batch")]
    parts = {t["name"]: t["x"][0] * 2**30 for t in bars if t not in devices}
    overhead = parts.pop(GPU_OVERHEAD_LABEL)
    assert sum(parts.values()) == pytest.approx(profile.memory.peak_bytes)
    need = next(o for o in p.options if o.device == "T4" and o.num_gpus == 1).memory_per_gpu_bytes
    assert sum(parts.values()) + overhead == pytest.approx(need)
    capacities = {y: x for t in devices for y, x in zip(t["y"], t["x"], strict=True)}
    assert capacities["H100-SXM5-80GB"] * 2**30 == pytest.approx(80 * 2**30)
    # each legend swatch has the colour its text names: one trace per colour
    swatches = {"fits at this batch": GREEN, "too small at this batch": RED}
    assert devices and all(swatches[t["name"]] == t["marker"]["color"] for t in devices)
    line = figs["chart-memory"]["layout"]["shapes"][0]  # the step's requirement on one GPU
    assert line["x0"] * 2**30 == pytest.approx(need)


def test_with_a_global_batch_the_charts_draw_the_recommended_options_micro_batch(
        catalog: Catalog, profiles: ProfileCache, db: Path) -> None:
    p = make(catalog, profiles, db, batch_size=None, global_batch=64, gpus=("H100-SXM5-80GB",), deadline_s=3000.0)
    rec = p.recommendation.option
    assert p.global_batch == 64 and rec is not None and rec.batch_size < 64  # several GPUs share the batch
    data = gather(p, store_path=db)
    assert data.memory.batch_size == rec.batch_size


def test_the_cpus_memory_bar_is_coloured_by_the_cpus_own_plan(catalog: Catalog, profiles: ProfileCache,
                                                              db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not by a GPU profile's peak: the plan cut the CPU's batch, so its bar is red even where that peak fits."""
    monkeypatch.setattr(plan_module, "_ram_bytes", lambda: 400 * 2**20)
    p = make(catalog, profiles, db, batch_size=256, gpus=("T4",))
    cpu = next(o for o in p.options if not o.is_gpu)
    assert cpu.batch_reduced
    small = profiles.get(plan_module.get_workload("resnet18"), batch_size=1, precision=Precision.FP32,
                         optimizer=p.config.optimizer, seq_len=None, image_size=None)
    assert small.memory.peak_bytes < cpu.capacity_bytes  # a peak that fits: the old rule said green
    [ram] = [c for c in data_module._memory(p, small).capacities if not c.is_gpu]
    assert not ram.fits and f"batch {cpu.batch_size}, the largest that fits" in ram.planned


def test_no_number_in_exponent_form_and_the_cost_axis_in_dollars(catalog: Catalog, profiles: ProfileCache,
                                                                  db: Path) -> None:
    page = render(gather(make(catalog, profiles, db), store_path=db))
    text = re.sub(r"<script.*?</script>", "", page, flags=re.S)
    assert not re.search(r"\d\.?\d*e[+-]\d", text)  # e.g. 1.39e+03 in a table
    layout = page_json(page, FIGURES_ID)["chart-time-cost"]["layout"]
    assert all(label.startswith("$") for label in layout["yaxis"]["ticktext"])
    assert len(layout["yaxis"]["ticktext"]) >= 2 and len(layout["xaxis"]["ticktext"]) >= 2
    named = [a["text"] for a in layout["annotations"] if "recommended" in a.get("text", "")]
    assert len(named) == 1  # the recommendation is named on the chart, not only on hover


def test_speedups_from_stored_benches_and_said_in_words_without(catalog: Catalog, profiles: ProfileCache,
                                                                db: Path) -> None:
    p = make(catalog, profiles, db)
    page = render(gather(p, store_path=db))
    assert "chart-speedups" not in page_json(page, FIGURES_ID)
    assert 'id="chart-speedups-empty"' in page and "No stored benchmark to compare" in page

    with open_store(db) as store:
        store.add(stored_result("cpu", "Test CPU", 0.8))
        store.add(stored_result("cuda:0", "NVIDIA H100 80GB HBM3", 0.02))
        store.add(stored_result("cuda:0", "Other GPU", 0.04, cpu_model="another machine"))  # no CPU result there
    page = render(gather(p, store_path=db))
    bars = page_json(page, FIGURES_ID)["chart-speedups"]["data"]
    assert [(t["name"], t["y"]) for t in bars] == [("NVIDIA H100 80GB HBM3", [pytest.approx(40.0)])]


def test_predicted_vs_measured_from_a_bench_and_said_in_words_without(catalog: Catalog, profiles: ProfileCache,
                                                                      db: Path) -> None:
    p = make(catalog, profiles, db)
    data = gather(p, store_path=db)
    assert data.checks.rows == () and data.checks.empty_reason is not None
    assert "gpuwise ships no published measurement of resnet18" in data.checks.empty_reason

    with open_store(db) as store:
        store.add(stored_result("cuda:0", catalog.get("H100-SXM5-80GB").device_names[0], 0.05))
    p = make(catalog, profiles, db)
    figs = page_json(render(gather(p, store_path=db)), FIGURES_ID)
    h100 = next(o for o in p.options if o.device == "H100-SXM5-80GB" and o.num_gpus == 1)
    assert h100.step is not None and h100.provenance == "measured here"
    point = figs["chart-checks"]["data"][0]
    assert point["name"] == "gpuwise bench, here"
    assert point["x"] == [pytest.approx(16 / 0.05)]  # measured samples/s
    assert point["y"] == [pytest.approx(16 / h100.step.model_compute_s)]  # the model's


def test_published_rows_of_the_same_setting_are_checked_against_the_plan(catalog: Catalog, profiles: ProfileCache,
                                                                         db: Path) -> None:
    # batch 256 per GPU, as the published runs (the plan's default keeps a global batch of 256 instead)
    p = make(catalog, profiles, db, workload="resnet50", batch_size=256, precision=Precision.AMP_FP16,
             optimizer="sgd-momentum", gpus=("A100-SXM4-80GB",), deadline_s=None)
    rows = gather(p, store_path=db).checks.rows
    expected = {}
    for r in load_published():
        m = map_row(r)
        if isinstance(m, MappedRow) and m.workload == "resnet50" and m.precision == "amp-fp16" \
                and r.gpu == "A100-SXM4-80GB" and not r.suspect:
            o = next(o for o in p.options if o.device == r.gpu and o.num_gpus == r.num_gpus)
            assert o.step is not None and o.batch_size == m.batch_size
            expected[o.label] = (o.step.samples_per_s, r.throughput)
    assert len(expected) == 2  # 1 and 8 A100s, batch 256
    assert {c.label: (c.predicted, c.measured) for c in rows} == expected
    assert all(c.kind == "published" and c.note == "" for c in rows)


def test_names_from_the_user_are_escaped_in_text_and_in_embedded_json(catalog: Catalog, profiles: ProfileCache,
                                                                       db: Path, tmp_path: Path) -> None:
    evil_file = tmp_path / "<script>x.py"
    shutil.copy(ROOT / "examples" / "my_model.py", evil_file)
    p = make(catalog, profiles, db, workload=f"{evil_file}:build", batch_size=None, gpus=(EVIL, "T4"))
    data = gather(p, store_path=db)
    assert EVIL in {r.device for r in data.roofline.roofs}
    page = render(data)
    assert "<script>x" not in page and EVIL not in page
    assert page.count("<script") == page.count("</script>") == 4  # the two JSON blocks, plotly.js, the boot
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # shown as text
    assert page_json(page, DATA_ID)["roofline"]["roofs"][0]["device"] == EVIL  # the data keeps the real name


def test_script_json_cannot_close_its_script_block() -> None:
    text = script_json({"name": "</script><b>&", "nan": float("nan")})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"name": "</script><b>&", "nan": None}


# ------------------------------------------------------------------ the command


def test_report_cli_writes_the_page_and_plan_html_writes_the_same(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    db = str(tmp_path / "r.db")
    code, stdout, err = run_cli("report", EXAMPLE, "--dataset-size", "2e6", "--epochs", "2", "--gpus", "T4,L4",
                                "--db", db, "-o", str(out))
    assert code == 0, err
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and '<meta name="viewport"' in page
    assert page_json(page, DATA_ID)["recommendation"]["headline"] in stdout
    code, stdout, err = run_cli("plan", EXAMPLE, "--dataset-size", "2e6", "--epochs", "2", "--gpus", "T4,L4",
                                "--db", db, "--html", str(tmp_path / "p.html"))
    assert code == 0, err
    from_plan = page_json((tmp_path / "p.html").read_text(), DATA_ID)
    from_report = page_json(page, DATA_ID)
    for d in (from_plan, from_report):
        d["environment"]["made_at"] = ""
    assert from_plan == from_report


def _no_plan(*args: object, **kwargs: object) -> None:
    raise AssertionError("planned before checking the output path")


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("missing/r.html", r"the folder .*missing does not exist"),
        (".", r"is a directory"),
        ("file.txt/r.html", r"the folder .*file.txt does not exist"),
    ],
)
def test_report_cli_checks_the_output_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, output: str,
                                            message: str) -> None:
    monkeypatch.setattr(plan_module, "plan", _no_plan)  # the command imports plan when it runs
    (tmp_path / "file.txt").write_text("x")
    code, out, err = run_cli("report", "resnet18", "--dataset-size", "1e6", "--epochs", "1",
                             "-o", str(tmp_path / output))
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpuwise: error: --output ")
    assert re.search(message, lines[0]), lines[0]


@pytest.mark.parametrize("flag", ["--json", "--all"])
def test_report_has_no_json_or_all(tmp_path: Path, flag: str) -> None:
    """A page is not JSON (plan --json is) and the page's chart already shows every option: no such flags."""
    code, out, err = run_cli("report", "resnet18", "--dataset-size", "1e6", "--epochs", "1", flag,
                             "-o", str(tmp_path / "r.html"))
    assert code == 2 and out == "" and f"No such option: {flag}" in err
    assert not (tmp_path / "r.html").exists()


def test_report_cli_passes_plan_mistakes_through(tmp_path: Path) -> None:
    code, _, err = run_cli("report", "resnet18", "--dataset-size", "1e6", "--epochs", "1", "--gpus", "H999",
                           "-o", str(tmp_path / "r.html"))
    assert code == 2 and err.startswith("gpuwise: error: unknown GPU 'H999'")


def test_report_data_is_plain_json(catalog: Catalog, profiles: ProfileCache, db: Path) -> None:
    data = gather(make(catalog, profiles, db), store_path=db)
    assert json.loads(json.dumps(data.to_dict()))["environment"]["command"].startswith("gpuwise report resnet18 ")


def test_the_report_only_reshapes_the_plan(catalog: Catalog, profiles: ProfileCache, db: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The plan carries what it used (``Plan.basis``): making the page loads no catalog or workload, reads no
    ceilings, profiles and times nothing and detects no GPU again; and what it carries is not in its JSON."""
    import gpuwise.bench.calibrate
    import gpuwise.hardware.catalog
    import gpuwise.hardware.local
    import gpuwise.predict.fit
    import gpuwise.predict.roofline
    import gpuwise.predict.step
    import gpuwise.profile.run
    import gpuwise.workloads.registry

    p = make(catalog, profiles, db, gpus=("T4", "H100-SXM5-80GB"))
    expected = gather(p, store_path=db, now=NOW).to_dict()

    def again(*args: object, **kwargs: object) -> None:
        raise AssertionError("the report did the plan's work again")

    for module, name in [(gpuwise.hardware.catalog, "load_catalog"), (gpuwise.workloads.registry, "get_workload"),
                         (gpuwise.bench.calibrate, "cached_ceilings"), (gpuwise.predict.fit, "shipped_efficiency"),
                         (gpuwise.predict.roofline, "step_time"), (gpuwise.predict.step, "cpu_step"),
                         (gpuwise.profile.run, "profile"), (gpuwise.predict.step, "profile_for_gpu"),
                         (gpuwise.hardware.local, "available_devices"), (plan_module, "cached_ceilings")]:
        monkeypatch.setattr(module, name, again)
    assert gather(p, store_path=db, now=NOW).to_dict() == expected
    assert "basis" not in p.to_dict() and p.basis.workload.name == "resnet18"
