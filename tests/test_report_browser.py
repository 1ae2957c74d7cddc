"""The report page in a real browser: headless Chromium (Debian's chromium + chromium-driver) via selenium.

Opens a generated page with every section filled (stored benches give the speed-up chart and a
measured option the predicted-vs-measured one), waits for the boot script to finish drawing,
and checks: no console errors, every chart drew an SVG with the expected traces and points, no
sideways scrolling at phone width, the user's names shown as text (never run), and a
screenshot saved under the test's temporary folder.

Without chromium this test skips locally, but fails under CI (``CI`` set): .ci/run installs it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import gpuwise.plan as plan_module
from gpuwise.report.html import FIGURES_ID
from gpuwise.store import open_store
from tests.helpers import CEILINGS, EVIL, EVIL_GPU, ROOT, page_json, run_cli, stored_result

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
DRIVER = ("chromedriver",)


def _find(names: tuple[str, ...]) -> str | None:
    return next((path for name in names if (path := shutil.which(name))), None)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    binary, driver_path = _find(CHROMIUM), _find(DRIVER)
    missing = [what for what, path in (("chromium", binary), ("chromedriver", driver_path)) if path is None]
    if missing:
        why = f"{' and '.join(missing)} not installed (Debian: apt-get install chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser test: {why}; .ci/run installs them")
        pytest.skip(why)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(binary)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1400,900", "--hide-scrollbars"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path: selenium then never tries to download one; and no usage statistics.
    os.environ["SE_AVOID_STATS"] = "true"
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(driver_path)))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A report of the example model with every section filled, on the shipped catalog plus a GPU named EVIL."""
    fixed = lambda device, store_path=None, **kw: CEILINGS  # noqa: E731
    monkeypatch.setattr(plan_module, "cached_ceilings", fixed)
    monkeypatch.setattr(plan_module, "_ram_bytes", lambda: 8 * 2**30)
    catalog = tmp_path / "gpus.toml"
    catalog.write_text(EVIL_GPU)
    db = tmp_path / "r.db"
    example = "examples/my_model.py:build"
    with open_store(db) as store:  # the example at its default batch (128) on the CPU and on an H100
        store.add(stored_result("cpu", "Test CPU", 2.0, workload=example, batch=128, image_size=None))
        store.add(stored_result("cuda:0", "NVIDIA H100 80GB HBM3", 0.01, workload=example, batch=128, image_size=None))
    out = tmp_path / "report.html"
    monkeypatch.chdir(ROOT)
    code, _, err = run_cli("report", example, "--dataset-size", "5e6", "--epochs", "3", "--gpus",
                           f"T4,L4,H100-SXM5-80GB,{EVIL}", "--deadline", "2h", "--catalog", str(catalog),
                           "--db", str(db), "-o", str(out))
    assert code == 0, err
    return out


def _expected(fig: dict[str, Any]) -> tuple[int, int]:
    """Traces, and the points plotly draws as ``.point`` (markers and bars; lines have none)."""
    points = sum(len(t["x"]) for t in fig["data"]
                 if t["type"] == "bar" or "markers" in t.get("mode", ""))
    return len(fig["data"]), points


_DRAWN = """
var gd = document.getElementById(arguments[0]);
var svg = gd.querySelector("svg.main-svg");
var box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
return {width: box.width, height: box.height,
        traces: gd.querySelectorAll(".scatterlayer .trace, .barlayer .trace").length,
        points: gd.querySelectorAll(".scatterlayer .point, .barlayer .point").length};
"""


# Elements past the right edge of the screen, except inside a table's own horizontal scroller.
_WIDER_THAN_THE_SCREEN = """
var width = document.documentElement.clientWidth, out = [];
document.querySelectorAll("main *").forEach(function (e) {
  if (!e.closest(".table-wrap") && e.getBoundingClientRect().right > width + 1) { out.push(e.tagName + "#" + e.id); }
});
return out;
"""


# The text a chart draws in its SVG (point labels, annotations, tick labels), as a screenshot shows it.
_CHART_TEXT = """
return Array.from(document.getElementById(arguments[0]).querySelectorAll("svg text"))
  .map(function (e) { return e.textContent; }).filter(function (s) { return s.length > 0; });
"""


def test_the_page_draws_in_headless_chromium(browser: Any, page: Path, tmp_path: Path) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    figures = page_json(page.read_text(), FIGURES_ID)
    assert set(figures) == {"chart-time-cost", "chart-roofline", "chart-memory", "chart-speedups", "chart-checks"}
    browser.set_window_size(1400, 900)
    browser.get(page.as_uri())
    WebDriverWait(browser, 60).until(lambda d: d.find_element("tag name", "body").get_attribute(
        "data-charts-rendered") is not None)
    assert browser.find_element("tag name", "body").get_attribute("data-charts-rendered") == str(len(figures))

    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == [], json.dumps(errors, indent=1)

    for ident, fig in figures.items():
        drawn = browser.execute_script(_DRAWN, ident)
        assert drawn["width"] > 200 and drawn["height"] > 200, (ident, drawn)
        traces, points = _expected(fig)
        assert (drawn["traces"], drawn["points"]) == (traces, points), ident
        assert points > 0, ident

    # What a screenshot or a printout shows without hovering: the recommendation and the Pareto points named on
    # the chart, op kinds named on the roofline, and no toolbar over a legend.
    drawn_text = browser.execute_script(_CHART_TEXT, "chart-time-cost")
    assert "recommended" in drawn_text, drawn_text
    assert sum("×" in t for t in drawn_text) >= 2, drawn_text
    assert set(browser.execute_script(_CHART_TEXT, "chart-roofline")) >= {"conv", "matmul"}
    assert browser.execute_script("return document.querySelectorAll('.modebar-btn').length") == 0

    text = browser.find_element("tag name", "body").text
    assert EVIL in text  # the GPU's name is shown as text; had it run, an alert would have stopped the driver
    assert re.search(r"Use \d+× ", text) or "No GPU needed" in text

    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1400, min(int(height) + 100, 16000))
    shot = tmp_path / "report.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000

    browser.set_window_size(390, 844)  # a phone opens the page: nothing wider than the screen
    browser.get(page.as_uri())
    WebDriverWait(browser, 60).until(lambda d: d.find_element("tag name", "body").get_attribute(
        "data-charts-rendered") is not None)
    wide = browser.execute_script(_WIDER_THAN_THE_SCREEN)
    assert wide == [], wide
    browser.save_screenshot(str(tmp_path / "report-phone.png"))
