"""`gpuwise validate` beyond its statistics: your own published files, GPU generations, and the
measurements in your results store. The full held-out run (~45 s) is the README's and RESULTS'
command; these tests use small steps."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from gpuwise.bench.result import BenchResult, Ceilings
from gpuwise.cli.app import get_app
from gpuwise.errors import GpuwiseError
from gpuwise.hardware.catalog import load_catalog
from gpuwise.predict.fit import Profiles, generation, held_out
from gpuwise.predict.published import COLUMNS, MappedRow, PublishedRow, load_published, map_row
from gpuwise.validate import local_checks, mapped_rows
from tests.helpers import stored_result

HEADER = ",".join(COLUMNS)


def _row(
    model: str, gpu: str = "H100-SXM5-80GB", notes: str = "", unit: str = "images/s", **kw: object
) -> PublishedRow:
    fields: dict[str, object] = dict(index=2, model=model, task="", gpu=gpu, num_gpus=1, precision="AMP-FP16",
                                     batch_per_gpu=8, throughput=100.0, unit=unit, source="test", notes=notes)
    return PublishedRow(**(fields | kw))  # type: ignore[arg-type]


def test_a_file_of_your_own_loads_with_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "mine.csv"
    f.write_text(f"{HEADER}\nresnet50,image classification,L4,1,AMP-FP16,64,700,images/s,my run,\n")
    (row,) = load_published(f)
    assert (row.line, row.gpu, row.batch_per_gpu, row.throughput) == (f"{f}:2", "L4", 64, 700.0)
    m = map_row(row)
    assert isinstance(m, MappedRow) and (m.workload, m.precision, m.optimizer) == ("resnet50", "amp-fp16", "adamw")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("model,gpu\nresnet50,L4\n", r"missing column\(s\) task, num_gpus, precision"),
        (f"{HEADER}\nresnet50,x,L4,two,AMP-FP16,64,700,images/s,s,\n",
         r"line 2: column num_gpus must be a positive int"),
        (f"{HEADER}\nresnet50,x,L4,1,AMP-FP16,64,-3,images/s,s,\n",
         r"line 2: column throughput must be a positive float"),
    ],
)
def test_a_malformed_file_names_file_line_and_column(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "bad.csv"
    f.write_text(text)
    with pytest.raises(GpuwiseError, match=message):
        load_published(f)
    result = CliRunner().invoke(get_app(), ["validate", "--published", str(f)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1 and "bad.csv" in result.output


def test_zoo_names_map_with_their_notes() -> None:
    m = map_row(_row("gpt2", unit="tokens/s", notes="seq len 256; optimizer sgd-momentum"))
    assert isinstance(m, MappedRow) and (m.seq_len, m.optimizer, m.counts_tokens) == (256, "sgd-momentum", True)
    assert map_row(_row("nosuchmodel")) == "no zoo workload with this model"
    assert map_row(_row("evil.py:factory")) == "no zoo workload with this model"  # a data file never imports code
    assert map_row(_row("resnet50", unit="furlongs/s")).startswith("unit furlongs/s")  # type: ignore[union-attr]


def test_generations_are_architecture_families() -> None:
    catalog = load_catalog()

    def gen(gpu: str) -> str:
        m = map_row(_row("resnet50", gpu=gpu))
        assert isinstance(m, MappedRow)
        return generation(m, catalog)

    assert gen("V100-SXM2-16GB") == "Volta"
    assert gen("A100-SXM4-80GB") == gen("RTX-3090") == "Ampere"  # one generation, held out together
    assert gen("H100-SXM5-80GB") == gen("GH200-96GB") == "Hopper"
    assert generation(MappedRow(_row("resnet50", gpu="X1-PCIe"), "resnet50", "fp32", "adamw", 8, None, False)) == "X1"


def test_a_generation_alone_in_the_data_falls_back_to_the_defaults() -> None:
    catalog = load_catalog()
    m = map_row(_row("resnet18", gpu="L4"))
    assert isinstance(m, MappedRow)
    fits = held_out([m], catalog, Profiles(), lambda r: generation(r, catalog))
    assert list(fits) == ["Ada"] and fits["Ada"].source.startswith("defaults (no single-GPU row outside Ada")


def _result(device: str, device_name: str, median_s: float, **overrides: object) -> BenchResult:
    return stored_result(device, device_name, median_s, batch=2, image_size=64, optimizer="sgd", **overrides)


def test_every_stored_measurement_is_predicted_or_says_why_not(tmp_path: Path) -> None:
    from gpuwise.hardware.local import cpu_model, machine_key
    from gpuwise.store import open_store

    catalog = load_catalog()
    db = tmp_path / "results.db"
    cpu = Ceilings(device="cpu", device_name=cpu_model(), matmul_tflops={"float32": 0.5}, memory_gbps=10.0,
                   measured_at="2026-01-01T00:00:00+00:00")
    h100 = catalog.get("H100-SXM5-80GB").device_names[0]
    with open_store(db) as store:
        store.put_ceilings(cpu, machine_key())
        store.add(_result("cpu", cpu_model(), 0.2))
        store.add(_result("cuda:0", h100, 0.004))
        store.add(_result("cuda:0", h100, 0.004, num_devices=2, origin="train"))
        store.add(_result("cuda:0", "Some Unknown GPU", 0.01))
        store.add(_result("cpu", "Another CPU", 0.2))
        store.add(_result("cpu", cpu_model(), 0.2, num_devices=2, origin="train"))
    out = local_checks(catalog, db)
    assert out["store"] == str(db)
    predicted = {(c.device, c.result.num_devices) for c in out["local"]}
    assert predicted == {(f"your CPU ({cpu_model()})", 1), ("H100-SXM5-80GB", 1), ("2× H100-SXM5-80GB", 2)}
    reasons = sorted(why for _, why in out["local_skipped"])
    assert len(reasons) == 3
    assert any("Some Unknown GPU is not a catalog GPU" in why for why in reasons)
    assert any("no calibration of that CPU" in why for why in reasons)
    assert any("2 CPU processes" in why for why in reasons)
    for c in out["local"]:
        assert c.predicted_step_s > 0
        assert c.error == pytest.approx(c.result.timing.median_s / c.predicted_step_s - 1)
    assert set(out["by_device"]) == {f"your CPU ({cpu_model()})", "H100-SXM5-80GB", "2× H100-SXM5-80GB"}


def test_an_empty_store_says_how_to_fill_it(tmp_path: Path) -> None:
    out = local_checks(load_catalog(), tmp_path / "results.db")
    assert out["local"] == () and out["local_skipped"] == ()


def test_the_local_section_renders_and_says_what_is_held_out(tmp_path: Path) -> None:
    from rich.console import Console

    from gpuwise.cli.validate import render_local
    from gpuwise.hardware.local import cpu_model, machine_key
    from gpuwise.store import open_store
    from gpuwise.validate import ErrorStats, Validation

    def validation(db: Path) -> Validation:
        nan = ErrorStats(0, float("nan"), float("nan"))
        return Validation(rows=(), skipped=(), pairs=(), by_gpu={}, by_workload={}, by_family={}, by_gpu_count={},
                          overall=nan,
                          cross_gpu={}, fits={}, **local_checks(load_catalog(), db))

    console = Console(record=True, width=140)
    render_local(validation(tmp_path / "empty.db"), console, show_rows=True)
    assert "no measurements yet; `gpuwise bench WORKLOAD` adds one" in " ".join(console.export_text().split())

    db = tmp_path / "results.db"
    with open_store(db) as store:
        store.put_ceilings(Ceilings(device="cpu", device_name=cpu_model(), matmul_tflops={"float32": 0.5},
                                    memory_gbps=10.0, measured_at="2026-01-01T00:00:00+00:00"), machine_key())
        store.add(_result("cpu", cpu_model(), 0.2))
        store.add(_result("cuda:0", "Some Unknown GPU", 0.01))
    console = Console(record=True, width=140)
    render_local(validation(db), console, show_rows=True)
    text = " ".join(console.export_text().split())
    assert f"your CPU ({cpu_model()})" in text and "200.0 ms" in text
    assert "1 measurements predicted, 1 not" in text and "not held out" in text
    assert "not predicted: result 2 (resnet18 on Some Unknown GPU)" in text


@pytest.mark.slow
def test_the_readme_command_end_to_end(tmp_path: Path) -> None:
    """`gpuwise validate --json` on the shipped rows and an empty store (about 45 s): every mapped row is
    predicted by the constants fitted without its generation, and the statistics are of those rows."""
    import json

    result = CliRunner().invoke(get_app(), ["validate", "--json", "--db", str(tmp_path / "results.db")])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert set(data["fits"]) == {"Volta", "Ampere"}
    assert all(f["source"].startswith(f"fitted without {g}") for g, f in data["fits"].items())
    rows = data["rows"]
    assert rows and {r["fitted_without"] for r in rows} == {"Volta", "Ampere"}
    for r in rows:
        assert r["fitted_without"] == ("Volta" if r["gpu"].startswith("V100") else "Ampere")
        assert r["error"] == pytest.approx(r["predicted"] / r["measured"] - 1)
    suspect = {p.line for p in load_published() if p.suspect}
    kept = [r for r in rows if r["line"] not in suspect]
    assert len(kept) < len(rows)  # the shipped file has SUSPECT rows: listed, kept out of the statistics
    assert data["overall"]["count"] == len(kept)
    assert data["cross_gpu"]["model"]["count"] == data["cross_gpu"]["bandwidth ratio"]["count"] > 0
    assert data["local"] == {"store": str(tmp_path / "results.db"), "by_device": {}, "rows": [], "skipped": []}


@pytest.mark.parametrize(
    ("label", "precision"),
    [("FP32", "fp32"), ("tf32", "tf32"), ("AMP-FP16", "amp-fp16"), ("Mixed Precision", "amp-fp16"),
     ("FP16", "amp-fp16"), ("AMP-BF16", "amp-bf16"), ("BF16", "amp-bf16")],
)
def test_precision_labels_of_published_tables(label: str, precision: str) -> None:
    m = map_row(_row("resnet50", precision=label))
    assert isinstance(m, MappedRow) and m.precision == precision


def test_fp8_rows_are_skipped_with_the_reason() -> None:
    assert map_row(_row("resnet50", precision="FP8")) == "precision FP8 is not one gpuwise models"


def test_gpus_are_found_by_catalog_name_or_device_name() -> None:
    catalog = load_catalog()
    h100 = catalog.get("H100-SXM5-80GB").device_names[0]
    rows = [_row("resnet50", gpu="h100-sxm5-80gb"), _row("resnet50", gpu=h100), _row("resnet50", gpu="X9000")]
    mapped, skipped = mapped_rows(rows, catalog)
    assert [m.row.gpu for m in mapped] == ["H100-SXM5-80GB", "H100-SXM5-80GB"]
    assert [why for _, why in skipped] == ["GPU X9000 is not in the catalog (add it with --catalog)"]
