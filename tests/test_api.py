"""The Python API: gpuwise.profile / predict / plan / bench on an nn.Module, a UserWorkload or a name;
options as strings or enums; results with a one-line repr, to_dict, HTML and DataFrames; a cheap import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import gpuwise
import gpuwise.plan as plan_module
from gpuwise.bench.result import Ceilings
from gpuwise.config import OptimizerName, Precision
from gpuwise.errors import GpuwiseError

CEILINGS = Ceilings(device="cpu", device_name="Test CPU", matmul_tflops={"float32": 0.2, "bfloat16": 0.05},
                    memory_gbps=10.0, measured_at="2026-01-01T00:00:00+00:00")


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10))


def batch(n: int) -> torch.Tensor:
    return torch.randn(n, 64)


@pytest.fixture
def fixed_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """The plan's CPU option from a fixed record, not a calibration."""
    monkeypatch.setattr(plan_module, "cached_ceilings", lambda device, store_path=None, **kw: CEILINGS)
    monkeypatch.setattr(plan_module, "_ram_bytes", lambda: 8 * 2**30)


def test_import_gpuwise_does_not_import_torch() -> None:
    code = "import sys, gpuwise; print('torch' in sys.modules, gpuwise.__version__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=Path(__file__).resolve().parent.parent, check=True).stdout
    assert out.split()[0] == "False"


def test_profile_a_module_with_make_batch_leaves_it_untouched() -> None:
    model = mlp()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    p = gpuwise.profile(model, make_batch=batch, batch_size=8, precision="amp-bf16")
    # forward: 2 × 8 × (64×256 + 256×10) FLOPs; backward twice that but for the first layer's input gradient
    assert p.forward_flops == 2 * 8 * (64 * 256 + 256 * 10)
    assert p.params_total == sum(t.numel() for t in model.parameters())
    assert (p.precision, p.optimizer, p.workload) == ("amp-bf16", "adamw", "Sequential")
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(t.device.type == "cpu" and not isinstance(t, torch._subclasses.FakeTensor)
               for t in model.parameters())


def test_the_default_loss_is_the_sum_of_the_outputs() -> None:
    summed = gpuwise.profile(mlp(), make_batch=batch, batch_size=4)
    explicit = gpuwise.profile(mlp(), make_batch=batch, loss=lambda m, x: m(x).sum(), batch_size=4)
    assert summed.training_flops == explicit.training_flops
    assert summed.memory.peak_bytes == explicit.memory.peak_bytes


def test_a_user_workload_names_its_optimizer() -> None:
    def workload(optimizer: str | None) -> gpuwise.UserWorkload:
        return gpuwise.UserWorkload(model=mlp(), make_batch=batch, loss=lambda m, x: m(x).pow(2).mean(),
                                    optimizer=optimizer)

    sgd = gpuwise.profile(workload("sgd"), batch_size=4)
    adamw = gpuwise.profile(workload(None), batch_size=4)
    asked = gpuwise.profile(workload("sgd"), batch_size=4, optimizer=OptimizerName.ADAM)
    assert (sgd.optimizer, adamw.optimizer, asked.optimizer) == ("sgd", "adamw", "adam")
    assert sgd.memory.optimizer_state_bytes == 0
    assert adamw.memory.optimizer_state_bytes >= 2 * adamw.memory.weights_bytes  # two moments (and step counts)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: gpuwise.profile(mlp()), r"needs make_batch: pass make_batch=lambda n"),
        (lambda: gpuwise.profile("resnet18", make_batch=batch), r"make_batch and loss go with an nn.Module"),
        (lambda: gpuwise.profile(42), r"cannot make a workload of a int"),
        (lambda: gpuwise.profile(mlp(), make_batch=lambda n: torch.randn(n, 3)), r"make_batch raised|the loss raised"),
        (lambda: gpuwise.profile(mlp(), make_batch=batch, precision="bf16"), r"unknown precision 'bf16'"),
        (lambda: gpuwise.bench(mlp(), make_batch=batch, batch_size="many"), r"positive integer or 'auto'"),
    ],
)
def test_api_mistakes_are_gpuwise_errors(call: object, message: str) -> None:
    with pytest.raises(GpuwiseError, match=message):
        call()  # type: ignore[operator]


def test_predict_a_module_on_eight_gpus() -> None:
    o = gpuwise.predict(mlp(), make_batch=batch, gpu="H100-SXM5-80GB", num_gpus=8, batch_size=32,
                        precision=Precision.AMP_BF16)
    assert o.fits and o.num_gpus == 8 and o.global_batch_size == 256
    data = json.loads(json.dumps(o.to_dict()))
    assert data["global_batch_size"] == 256 and data["settings"]["strategy"] == "auto"
    assert "\n" not in repr(o) and len(repr(o)) < 400 and "8× H100-SXM5-80GB" in repr(o)


def test_configs_take_names_where_enums_are_expected() -> None:
    assert plan_module.PredictConfig.of(workload="resnet18", gpu="T4", precision="amp-bf16").precision is (  # type: ignore[arg-type]
        Precision.AMP_BF16)
    config = plan_module.PlanConfig.of(workload="resnet18", dataset_size=1, epochs=1, precision="amp-fp16",  # type: ignore[arg-type]
                                    optimizer="sgd")  # type: ignore[arg-type]
    assert (config.precision, config.optimizer) == (Precision.AMP_FP16, OptimizerName.SGD)


def test_plan_a_module(fixed_cpu: None, tmp_path: Path) -> None:
    p = gpuwise.plan(mlp(), make_batch=batch, dataset_size=1e6, epochs=2, gpus="T4,L4", max_gpus=2,
                     store_path=tmp_path / "r.db")
    assert {o.device for o in p.options} == {"cpu", "T4", "L4"}
    assert p.recommendation.option is not None
    data = json.loads(json.dumps(p.to_dict()))
    assert data["config"]["workload"] == "Sequential"
    assert "\n" not in repr(p) and repr(p).startswith("Plan(workload='Sequential', options=5")
    rows = p._rows()
    assert len(rows) == len(p.options) and sum(r["recommended"] for r in rows) == 1


def test_bench_a_module_on_the_cpu_without_storing_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gpuwise.bench import calibrate
    from gpuwise.store import open_store

    monkeypatch.setattr(calibrate, "cached_ceilings", lambda device, store_path=None, **kw: CEILINGS)
    model = mlp()
    before = model[0].weight.detach().clone()
    db = tmp_path / "r.db"
    r = gpuwise.bench(model, make_batch=batch, batch_size=4, steps=2, warmup=1, store_path=db)
    assert r.batch_size == 4 and r.timing.num_steps == 2 and r.samples_per_s > 0
    assert torch.equal(model[0].weight, before)  # bench trains a copy
    with open_store(db) as store:
        assert store.results() == []  # a module has no name to find the result by later
    assert "\n" not in repr(r) and repr(r).startswith("BenchResult(workload='Sequential', device='cpu")


def test_profile_repr_is_one_short_line_and_html_and_dict_have_the_rest() -> None:
    p = gpuwise.profile(mlp(), make_batch=batch, batch_size=8)
    assert "\n" not in repr(p) and len(repr(p)) < 300
    assert "training_flops=" in repr(p) and "peak_memory=" in repr(p)
    assert "<table>" in p._repr_html_() and "Sequential" in p._repr_html_()
    assert json.loads(json.dumps(p.to_dict()))["params_total"] == p.params_total


def test_to_pandas_names_the_fix_without_pandas(monkeypatch: pytest.MonkeyPatch) -> None:
    p = gpuwise.profile(mlp(), make_batch=batch, batch_size=2)
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now raises ImportError
    with pytest.raises(GpuwiseError, match=r"to_pandas\(\) needs pandas: pip install pandas"):
        p.to_pandas()


def test_to_pandas_has_one_row_per_layer() -> None:
    pandas = pytest.importorskip("pandas", reason="pandas is optional; to_pandas() is tested where it is installed")
    p = gpuwise.profile(mlp(), make_batch=batch, batch_size=2)
    frame = p.to_pandas()
    assert isinstance(frame, pandas.DataFrame) and len(frame) == len(p.layers)


def test_the_modules_named_like_the_api_stay_modules_and_are_callable() -> None:
    import gpuwise.profile.run

    assert callable(gpuwise.plan) and callable(gpuwise.profile) and callable(gpuwise.bench)
    assert gpuwise.plan.PlanConfig is plan_module.PlanConfig  # the module, still
    assert gpuwise.profile.run.profile is not None
    p = gpuwise.profile(mlp(), make_batch=batch, batch_size=2)
    assert isinstance(p, gpuwise.Profile)
