"""Predictions that issue 18's sweep found silently wrong: precisions a GPU has no tensor cores for, a count of
GPUs that spills onto a second node, a catalog number no GPU has, and inputs no plan needs."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from gpuwise.config import Precision
from gpuwise.errors import GpuwiseError
from gpuwise.hardware.catalog import load_catalog
from gpuwise.plan import Option, PlanConfig, PredictConfig, ProfileCache, predict, recommend
from gpuwise.predict.option import RunEstimate
from tests.helpers import run_cli

PROFILES = ProfileCache()  # resnet18's profiles, made once for the module


def one(gpu: str, precision: str, num_gpus: int = 1) -> Option:
    return predict(PredictConfig.of(workload="resnet18", gpu=gpu, num_gpus=num_gpus, precision=Precision(precision)),
                   profiles=PROFILES, store_path=None)


@pytest.fixture(autouse=True)
def _db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A results database with this CPU's ceilings stored, so that no plan spends time calibrating."""
    import datetime as dt

    from gpuwise.bench.result import Ceilings
    from gpuwise.hardware.local import device_name, machine_key
    from gpuwise.store import open_store

    path = tmp_path / "results.db"
    with open_store(path) as store:
        store.put_ceilings(Ceilings("cpu", device_name("cpu"), {"float32": 0.2, "bfloat16": 0.2}, 10.0,
                                    dt.datetime.now(dt.UTC).isoformat(timespec="seconds")), machine_key())
    monkeypatch.setenv("GPUWISE_DB", str(path))


# ------------------------------------------------------------------ 10. precisions without tensor cores


def test_tf32_on_a_gpu_without_tf32_is_predicted_as_the_fp32_it_runs() -> None:
    tf32, fp32 = one("V100-SXM2-16GB", "tf32"), one("V100-SXM2-16GB", "fp32")
    assert tf32.step is not None and fp32.step is not None
    assert tf32.step.step_s == pytest.approx(fp32.step.step_s)
    assert "no TF32 tensor cores" in tf32.notes[0] and not fp32.notes
    a100 = one("A100-SXM4-80GB", "tf32"), one("A100-SXM4-80GB", "fp32")  # a GPU that has them: faster, no note
    assert a100[0].step is not None and a100[1].step is not None
    assert a100[0].step.step_s < a100[1].step.step_s and not a100[0].notes


def test_bf16_on_a_t4_runs_without_tensor_cores_and_says_so() -> None:
    bf16, fp16 = one("T4", "amp-bf16"), one("T4", "amp-fp16")
    assert bf16.step is not None and fp16.step is not None
    assert bf16.step.compute_bound_s > 2 * fp16.step.compute_bound_s  # CUDA cores, not FP16 tensor cores
    assert "T4 has no BF16 tensor cores" in bf16.notes[0] and "amp-fp16 uses its FP16 tensor cores" in bf16.notes[0]
    assert not fp16.notes


def test_the_note_reaches_predict_and_plan_output(tmp_path: Path) -> None:
    code, out, _ = run_cli("predict", "resnet18", "--gpu", "T4", "--precision", "amp-bf16")
    assert code == 0 and "note: T4 has no BF16 tensor cores" in out
    code, out, _ = run_cli("plan", "resnet18", "--dataset-size", "1e6", "--epochs", "1", "--gpus", "T4",
                           "--precision", "amp-bf16", "--json")
    assert code == 0
    notes = json.loads(out)["notes"]
    assert sum("T4 has no BF16 tensor cores" in n for n in notes) == 1  # once, not once per GPU count


# ------------------------------------------------------------------ 11. nodes


def test_nine_gpus_are_two_nodes_everywhere() -> None:
    o = one("A100-SXM4-80GB", "fp32", num_gpus=9)
    assert o.num_nodes == 2 and "(2 nodes)" in o.label
    assert o.step is not None and o.step.link is not None and "network" in o.step.link
    assert one("A100-SXM4-80GB", "fp32", num_gpus=8).num_nodes == 1


# ------------------------------------------------------------------ 12. absurd catalog numbers, the fallback


def test_a_catalog_number_outside_physical_ranges_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text('[MyGPU]\nvendor = "nvidia"\nmemory_gb = 80\nmemory_bandwidth_gbps = 1e-9\nfp32_tflops = 60\n')
    with pytest.raises(GpuwiseError, match=r"mine\.toml: entry 'MyGPU', field 'memory_bandwidth_gbps': 1e-09 is "
                                           r"outside the physical range 10 \.\. 100,000 GB/s"):
        load_catalog(path)
    code, _, err = run_cli("gpus", "--catalog", str(path))
    assert code == 2 and err.count("\n") == 1 and "physical range" in err


def _option(label: str, total_s: float, cost_usd: float, *, is_gpu: bool = True) -> Option:
    run = RunEstimate(1, 1, total_s, total_s, total_s, total_s, cost_usd, cost_usd, cost_usd)
    return Option(device=label, label=label, is_gpu=is_gpu, num_gpus=1, num_nodes=1,
                  price_usd_per_hour=1.0 if is_gpu else 0.0, requested_batch_size=1, batch_size=1, strategy="single",
                  fits=True, memory_per_gpu_bytes=1, capacity_bytes=2, bound="compute", provenance="analytical",
                  provenance_kind="analytical", band=0.4, step=None, run=run)


def test_the_fallback_compares_the_cpu_too() -> None:
    year = 365 * 86400.0
    cpu = _option("your CPU", 4 * 86400.0, 0.0, is_gpu=False)
    slow_gpu = _option("64× MyGPU", 137_167 * year, 1e9)
    rec = recommend([cpu, slow_gpu])
    assert rec.option is cpu and "the fastest option" in rec.reason
    faster_gpu = replace(slow_gpu, label="8× H100", run=replace(slow_gpu.run, total_s=2 * 86400.0))  # type: ignore[arg-type]
    assert recommend([cpu, faster_gpu]).option is faster_gpu


# ------------------------------------------------------------------ 13. input bounds


@pytest.mark.parametrize("size, epochs, flag", [
    ("1e300", "1e300", "--dataset-size"), ("1e30", "1", "--dataset-size"), ("1000", "1e300", "--epochs"),
    ("1e14", "1000", "--dataset-size × --epochs"),
])
def test_plan_inputs_beyond_any_run_are_one_line(size: str, epochs: str, flag: str) -> None:
    with pytest.raises(GpuwiseError, match=f"{flag} is .*, more than gpuwise plans for"):
        PlanConfig.of(workload="resnet18", dataset_size=float(size), epochs=float(epochs))
    for command in ("plan", "report"):
        code, out, err = run_cli(command, "resnet18", "--dataset-size", size, "--epochs", epochs)
        assert code == 2 and err.count("\n") == 1 and flag in err, out + err
