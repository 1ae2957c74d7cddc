"""The hardware catalog: the shipped data (coverage, provenance, dense-not-sparse), user files, lookups, CLI."""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gpuwise.cli.app import get_app
from gpuwise.config import Precision
from gpuwise.errors import GpuwiseError
from gpuwise.hardware import catalog as catalog_module
from gpuwise.hardware.catalog import (
    NUMERIC_FIELDS,
    Catalog,
    load_catalog,
    parse_catalog_text,
)
from gpuwise.hardware.local import local_cpu_entry

REQUIRED_GPUS = [
    "V100-SXM2-16GB", "V100-SXM2-32GB", "V100-PCIe-16GB", "T4", "A10", "A10G", "L4", "L40S",
    "A100-SXM4-40GB", "A100-SXM4-80GB", "A100-PCIe-40GB", "A100-PCIe-80GB", "H100-SXM5-80GB", "H100-PCIe-80GB",
    "H200-SXM-141GB", "B200", "RTX-3090", "RTX-4090", "RTX-5090", "RTX-A6000", "RTX-6000-Ada", "MI250X", "MI300X",
]
BEFORE_FP8 = ("Volta", "Turing", "Ampere", "CDNA2")  # architectures without FP8 tensor cores
runner = CliRunner()


@pytest.fixture(autouse=True)
def no_user_catalog(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own config-dir catalog must not leak into the tests."""
    missing = tmp_path_factory.mktemp("config") / "gpus.toml"
    monkeypatch.setattr(catalog_module, "default_user_catalog", lambda: missing)


@pytest.fixture(scope="module")
def cat() -> Catalog:
    text = (Path(catalog_module.__file__).parent / "data" / "gpus.toml").read_text()
    return parse_catalog_text(text, "packaged")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mine.toml"
    path.write_text(text)
    return path


def error_of(path: Path) -> str:
    with pytest.raises(GpuwiseError) as info:
        load_catalog(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


# ------------------------------------------------------------------ the shipped data


def test_every_required_gpu_is_present(cat: Catalog) -> None:
    assert set(REQUIRED_GPUS) <= set(cat.names())
    assert len(cat.all()) >= 20
    assert {g.vendor for g in cat.all()} == {"nvidia", "amd"}


def test_names_can_be_typed_in_a_comma_separated_list(cat: Catalog) -> None:
    for name in cat.names():
        assert name.strip() == name and " " not in name and "," not in name


def test_every_number_has_a_dated_source(cat: Catalog) -> None:
    for g in cat.all():
        for name in NUMERIC_FIELDS:
            if getattr(g, name) is not None:
                assert name in g.sources, f"{g.name}.{name} has no source"
                assert re.search(r"read 20\d\d-\d\d-\d\d", g.sources[name]), f"{g.name}.{name}: source has no date read"
        assert set(g.sources) <= set(NUMERIC_FIELDS) | {"device_names"}


def test_peaks_are_dense_not_sparse(cat: Catalog) -> None:
    h100 = cat.get("H100-SXM5-80GB")
    assert h100.bf16_tflops == pytest.approx(989, abs=1) and h100.fp8_tflops == pytest.approx(1979, abs=1)
    for name in ("A100-SXM4-40GB", "A100-SXM4-80GB", "A100-PCIe-40GB", "A100-PCIe-80GB"):
        assert cat.get(name).bf16_tflops == 312 and cat.get(name).tf32_tflops == 156
    assert cat.get("MI300X").bf16_tflops == pytest.approx(1307.4)  # AMD's headline 2614.9 is sparse
    assert cat.get("L40S").fp8_tflops == 733  # 1466 with sparsity
    assert cat.get("B200").bf16_tflops == 2250 and cat.get("RTX-6000-Ada").fp8_tflops == 728.5  # 4500, 1457 sparse
    for g in cat.all():
        # Up to Hopper a 2:4-sparse figure would put a tensor rate above 16x the vector FP32 rate
        # (A100: 312 = 16 x 19.5); Blackwell's dense ratio is 28, so it is checked by value above.
        if g.architecture.startswith("Blackwell"):
            continue
        for rate in (g.tf32_tflops, g.fp16_tflops, g.bf16_tflops):
            if rate is not None and g.fp32_tflops is not None:
                assert rate <= 16 * g.fp32_tflops + 1e-6, g.name
        if g.fp8_tflops is not None and g.bf16_tflops is not None:
            assert g.fp8_tflops <= 2.05 * g.bf16_tflops, g.name  # L40S's datasheet: 733 vs 2 x 362.05


def test_geforce_tensor_rates_are_the_fp32_accumulate_ones(cat: Catalog) -> None:
    assert cat.get("RTX-3090").fp16_tflops == 71  # not the FP16-accumulate 142
    assert cat.get("RTX-4090").bf16_tflops == 165.2  # not 330.3
    assert cat.get("RTX-5090").bf16_tflops == 209.5  # not the marketing 838 (sparse, FP16 accumulate)
    assert cat.get("RTX-A6000").bf16_tflops == 154.8  # professional GA102: full rate


def test_a_precision_the_gpu_lacks_is_absent_not_zero(cat: Catalog) -> None:
    for name in ("V100-SXM2-16GB", "V100-PCIe-16GB", "T4"):
        g = cat.get(name)
        assert g.bf16_tflops is None and g.tf32_tflops is None and g.fp8_tflops is None
    for g in cat.all():
        if g.architecture.startswith(BEFORE_FP8):
            assert g.fp8_tflops is None, g.name
        for name in NUMERIC_FIELDS:
            assert getattr(g, name) != 0, f"{g.name}.{name} is 0"


def test_peak_tflops_maps_gpuwise_precisions(cat: Catalog) -> None:
    from gpuwise.predict.roofline import MATMUL_DTYPE
    from gpuwise.predict.step import gpu_rates

    assert set(MATMUL_DTYPE) == set(Precision) - {Precision.AUTO}  # auto is chosen by device, no peak
    v100, h100 = gpu_rates(cat.get("V100-SXM2-16GB"), datasheet=True), gpu_rates(cat.get("H100-SXM5-80GB"),
                                                                                  datasheet=True)
    assert v100.peak_tflops(Precision.FP32) == 15.7
    assert v100.peak_tflops(Precision.TF32) == 15.7  # no TF32 on Volta: PyTorch runs FP32
    assert v100.peak_tflops(Precision.AMP_BF16) is None
    assert v100.peak_tflops(Precision.AMP_FP16) == 125
    assert h100.peak_tflops(Precision.TF32) == 494.7 and h100.peak_tflops(Precision.AMP_FP16) == 989.4
    achievable = gpu_rates(cat.get("H100-SXM5-80GB")).peak_tflops(Precision.AMP_BF16)
    assert achievable is not None and achievable < 989.4  # the share a matmul microbenchmark reaches


def test_prices_are_sourced_from_the_dated_price_table(cat: Catalog) -> None:
    priced = [g for g in cat.all() if g.price_usd_per_hour is not None]
    assert len(priced) >= 15
    for g in priced:
        assert "gpu_cloud_prices.csv" in g.sources["price_usd_per_hour"]
    # The H100 SXM price is the median of the seven rows the source lists.
    rows = [3.78, 3.9492, 5.49, 4.76, 2.69, 6.88, 1.65]
    assert cat.get("H100-SXM5-80GB").price_usd_per_hour == round(statistics.median(rows), 2)


def test_nvlink_is_only_a_node_wide_fabric(cat: Catalog) -> None:
    assert cat.get("H100-SXM5-80GB").nvlink_gbps == 900 and cat.get("A100-SXM4-80GB").nvlink_gbps == 600
    assert cat.get("H100-PCIe-80GB").nvlink_gbps is None and cat.get("RTX-4090").nvlink_gbps is None
    assert cat.get("RTX-A6000").nvlink_gbps is None and cat.get("RTX-A6000").nvlink_bridge_gbps == 112.5


def test_the_packaged_file_loads_through_importlib() -> None:
    loaded = load_catalog()
    assert loaded.files == ("gpuwise/hardware/data/gpus.toml",)
    assert "H100-SXM5-80GB" in loaded.names()


# ------------------------------------------------------------------ lookups


def test_names_are_case_insensitive(cat: Catalog) -> None:
    assert cat.get("h100-sxm5-80gb").name == "H100-SXM5-80GB"
    assert cat.has(" rtx-4090 ") and not cat.has("RTX 4090")


def test_an_unknown_gpu_gets_the_nearest_names(cat: Catalog) -> None:
    nearest = r"unknown GPU 'H100': did you mean H100-SXM5-80GB, H100-SXM5-96GB, H100-PCIe-80GB"
    with pytest.raises(GpuwiseError, match=nearest):
        cat.get("H100")
    with pytest.raises(GpuwiseError, match=r"did you mean RTX-4090.*run gpuwise gpus for the list"):
        cat.get("RTX-4900")
    with pytest.raises(GpuwiseError, match=r"unknown GPU 'zzz': run gpuwise gpus"):
        cat.get("zzz")


def test_filter_by_memory_and_vendor(cat: Catalog) -> None:
    big = cat.filter(min_memory_gb=80)
    assert big and all(g.memory_gb >= 80 for g in big) and "T4" not in [g.name for g in big]
    assert [g.name for g in cat.filter(vendor="AMD")] == ["MI250X", "MI300X"]
    assert cat.filter() == cat.all()
    with pytest.raises(GpuwiseError, match=r"unknown vendor 'intel': use --vendor amd \| nvidia"):
        cat.filter(vendor="intel")


def test_a_local_device_name_maps_to_its_entry(cat: Catalog) -> None:
    for device_name, name in (("NVIDIA H100 80GB HBM3", "H100-SXM5-80GB"), ("Tesla V100-SXM2-32GB", "V100-SXM2-32GB")):
        match = cat.match_device(device_name)
        assert match is not None and match.name == name
    assert cat.match_device("Some Future GPU") is None


# ------------------------------------------------------------------ the user's own catalog


def test_user_file_overrides_fields_and_adds_gpus(tmp_path: Path) -> None:
    path = write(tmp_path, """
[h100-sxm5-80gb]
price_usd_per_hour = 2.1
sources.price_usd_per_hour = "our 2026 contract"

[RTX-4090]
price_usd_per_hour = 0.35

[My-GPU]
vendor = "NVIDIA"
memory_gb = 40
memory_bandwidth_gbps = 1000
fp32_tflops = 20
bf16_tflops = 150
""")
    cat = load_catalog(path)
    assert cat.files[-1] == str(path)
    h100 = cat.get("H100-SXM5-80GB")
    assert h100.price_usd_per_hour == 2.1 and h100.sources["price_usd_per_hour"] == "our 2026 contract"
    assert h100.bf16_tflops == 989.4 and "read 2026-11-25" in h100.sources["bf16_tflops"]  # untouched fields kept
    assert cat.get("RTX-4090").sources["price_usd_per_hour"] == f"user catalog {path}"
    mine = cat.get("my-gpu")
    assert mine.vendor == "nvidia" and mine.bf16_tflops == 150 and mine.tf32_tflops is None
    assert mine.sources["fp32_tflops"] == f"user catalog {path}"
    assert cat.names()[-1] == "My-GPU" and len(cat.all()) == len(load_catalog().all()) + 1


def test_the_config_dir_catalog_is_read_when_present(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "[T4]\nprice_usd_per_hour = 0.11\n")
    monkeypatch.setattr(catalog_module, "default_user_catalog", lambda: path)
    assert load_catalog().get("T4").price_usd_per_hour == 0.11


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[T4\nmemory_gb = 16\n", r"not valid TOML: .*line 1"),
        ("[T4]\nmemory_gb = = 16\n", r"not valid TOML: .*line 2"),
        ("[T4]\nfp32_tflop = 9\n", r"entry 'T4', field 'fp32_tflop': unknown field \(did you mean 'fp32_tflops'\?\)"),
        ("[T4]\nfp32_tflops = 'fast'\n", r"entry 'T4', field 'fp32_tflops': expected a number, got the text 'fast'"),
        ("[T4]\nsm_count = 40.5\n", r"entry 'T4', field 'sm_count': expected a whole number, got 40.5"),
        ("[T4]\ntdp_w = nan\n", r"entry 'T4', field 'tdp_w': must be a finite number, got nan"),
        ("[T4]\nmemory_gb = -16\n", r"entry 'T4', field 'memory_gb': must be positive, got -16"),
        ("[V100-SXM2-16GB]\nbf16_tflops = 0\n", r"field 'bf16_tflops': must be positive, got 0 .*never 0"),
        ("[T4]\nprice_usd_per_hour = true\n", r"field 'price_usd_per_hour': expected a number, got true/false"),
        ("[T4]\nvendor = 3\n", r"entry 'T4', field 'vendor': expected text in quotes, got 3"),
        ("[T4]\ndevice_names = 'Tesla T4'\n", r"field 'device_names': expected a list of names"),
        ("[New-GPU]\nvendor = 'nvidia'\nmemory_gb = 8\n",
         r"entry 'New-GPU', field 'memory_bandwidth_gbps': required for a new GPU "
         r"\(also required: vendor, memory_gb\)"),
        ("[H100]\nprice_usd_per_hour = 2.0\n",
         r"entry 'H100', field 'vendor': required for a new GPU .*use its exact name, e.g. \[H100-SXM5-80GB\]"),
        ("['My GPU']\nvendor = 'nvidia'\n", r"entry 'My GPU': a GPU name may not .* contain spaces or commas"),
        ("T4 = 5\n", r"entry 'T4': expected a table \[T4\] of fields, got 5"),
        ("[T4]\nsources.fp64_tflops = 'x'\n",
         r"entry 'T4', field 'sources': names 'fp64_tflops', which is not a field"),
        ("[T4]\nsources = 'datasheet'\n", r"entry 'T4', field 'sources': expected a table mapping fields"),
        ("[t4]\nmemory_gb = 16\n[T4]\nmemory_gb = 16\n", r"entry 'T4': the same GPU as entry 't4'"),
    ],
)
def test_a_malformed_user_file_names_file_entry_and_field(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    message = error_of(path)
    assert message.startswith(str(path)) or message.startswith(f"cannot read catalog file {path}")
    assert re.search(expected, message), message


def test_a_missing_catalog_file_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(GpuwiseError, match=r"catalog file .*nope.toml does not exist: pass an existing TOML"):
        load_catalog(tmp_path / "nope.toml")


def test_a_file_that_is_not_utf8_is_a_user_error(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_bytes(b"[T4]\nnotes = '\xff'\n")
    assert "not valid TOML" in error_of(path)


# ------------------------------------------------------------------ the local machine


def test_local_cpu_entry_describes_and_measures_nothing() -> None:
    cpu = local_cpu_entry()
    assert cpu.num_cores >= 1 and cpu.memory_gb > 0 and cpu.model
    assert cpu.fp32_tflops is None and cpu.bf16_tflops is None and cpu.memory_bandwidth_gbps is None


def test_the_machine_descriptions_still_import_from_the_catalog() -> None:
    from gpuwise.hardware import catalog, local

    assert catalog.detect_gpus is local.detect_gpus and catalog.local_cpu_entry is local.local_cpu_entry
    with pytest.raises(AttributeError):
        _ = catalog.no_such_name


# ------------------------------------------------------------------ the command line


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(get_app(), list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_cli_table_lists_the_catalog_and_this_machine() -> None:
    code, out, _ = run("gpus")
    assert code == 0
    for text in ("H100-SXM5-80GB", "989.4", "MI300X", "RTX-4090", "165.2", "peak dense TFLOP/s", "this machine:"):
        assert text in out
    assert "GPUs:" in out[out.index("this machine:"):]  # the machine's line, however the terminal wraps it


def test_cli_filters(tmp_path: Path) -> None:
    code, out, _ = run("gpus", "--vendor", "amd", "--min-memory", "150")
    assert code == 0 and "MI300X" in out and "MI250X" not in out and "H100" not in out


def test_cli_json_has_every_field_and_its_sources() -> None:
    code, out, _ = run("gpus", "--json")
    assert code == 0
    data = json.loads(out)
    by_name = {g["name"]: g for g in data["gpus"]}
    h100 = by_name["H100-SXM5-80GB"]
    assert h100["bf16_tflops"] == 989.4 and h100["tf32_tflops"] == 494.7
    assert set(NUMERIC_FIELDS) <= set(h100) and "read 2026-11-25" in h100["sources"]["bf16_tflops"]
    assert by_name["V100-SXM2-16GB"]["bf16_tflops"] is None
    assert data["local"]["cpu"]["num_cores"] >= 1 and isinstance(data["local"]["gpus"], list)
    assert data["catalog_files"] == ["gpuwise/hardware/data/gpus.toml"]


def test_cli_reads_a_user_catalog(tmp_path: Path) -> None:
    path = write(tmp_path, "[My-GPU]\nvendor = 'nvidia'\nmemory_gb = 40\nmemory_bandwidth_gbps = 1000\n")
    code, out, _ = run("gpus", "--catalog", str(path))
    assert code == 0 and "My-GPU" in out and str(path) in out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--min-memory", "lots"), "--min-memory must be a number of GB, got 'lots'"),
        (("--vendor", "intel"), "unknown vendor 'intel': use --vendor amd | nvidia"),
        (("--catalog", "/nonexistent/gpus.toml"), "catalog file /nonexistent/gpus.toml does not exist"),
    ],
)
def test_cli_mistakes_are_one_line_and_exit_2(args: tuple[str, ...], expected: str) -> None:
    code, _, err = run("gpus", *args)
    assert code == 2
    assert err.strip() == f"gpuwise: error: {expected}" or (expected in err and err.count("\n") == 1)


def test_cli_malformed_catalog_names_file_entry_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, "[T4]\nfp32_tflops = 'fast'\n")
    code, _, err = run("gpus", "--catalog", str(path))
    assert code == 2 and err.count("\n") == 1
    assert f"{path}: entry 'T4', field 'fp32_tflops': expected a number" in err


def test_l2_bandwidth_is_measured_or_borrowed_per_sm_from_the_same_chip(cat: Catalog) -> None:
    """The L2 a roofline op fits in: a GPU's own measurement, else its chip's measured bandwidth per SM
    times its SMs; none without an L2 size or anything measured to borrow."""
    h200, h100, pcie = cat.get("H200-SXM-141GB"), cat.get("H100-SXM5-80GB"), cat.get("H100-PCIe-80GB")
    assert h200.l2_gbps == h200.achievable_l2_gbps and h200.l2_basis.startswith("measured")
    per_sm = (h200.l2_gbps / 132 + pcie.l2_gbps / 114) / 2
    assert h100.achievable_l2_gbps is None and h100.l2_gbps == pytest.approx(per_sm * 132)
    assert "GH100" in h100.l2_basis
    assert cat.get("B200").l2_gbps == 0.0 and "no L2 measurement" in cat.get("B200").l2_basis
    assert cat.get("T4").l2_gbps == 0.0 and "no L2 size" in cat.get("T4").l2_basis


def test_an_sms_streaming_rate_is_the_measured_l2_bandwidth_per_sm(cat: Catalog) -> None:
    """``Catalog.sm_stream_gbps``: the mean over NVIDIA GPUs with a measured L2 bandwidth of that bandwidth
    per SM; the shipped constants carry the rate of the shipped catalog (a refit after a new measurement)."""
    from gpuwise.predict.constants import shipped_efficiency
    from gpuwise.predict.step import gpu_rates

    measured = [g for g in cat.all() if g.vendor == "nvidia" and g.achievable_l2_gbps and g.sm_count]
    assert len(measured) >= 4
    assert cat.sm_stream_gbps() == pytest.approx(statistics.mean(g.achievable_l2_gbps / g.sm_count for g in measured))
    assert 20 < cat.sm_stream_gbps() < 100  # GB/s per SM: 31 (V100) to 74 (H200)
    assert shipped_efficiency().sm_stream_gbps == pytest.approx(cat.sm_stream_gbps())
    assert gpu_rates(cat.get("H200-SXM-141GB")).streaming_sms == 132
    assert gpu_rates(cat.get("MI300X")).streaming_sms == 0  # AMD's compute units: not measured, not modelled
    assert Catalog(gpus=(), files=()).sm_stream_gbps() == 0.0
