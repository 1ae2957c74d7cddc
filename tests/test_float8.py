"""FP8 linear layers (--fp8): torchao's float8 training as the profile traces it, as predict, plan and validate
price it, and as train runs it; and every way a user can ask for it where it cannot run, one line each."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gpuwise import float8, profile
from gpuwise.config import Precision, RunSettings
from gpuwise.errors import GpuwiseError
from gpuwise.hardware.catalog import load_catalog
from gpuwise.predict.fit import shipped_efficiency, usable_llm_runs
from gpuwise.predict.published import PublishedRow, map_llm_run
from gpuwise.predict.roofline import FP8, step_time
from gpuwise.predict.step import gpu_rates
from gpuwise.profile import ops
from tests.helpers import run_cli
from tests.test_llm_settings import TINY, tiny_decoder


def _matmul_flops(p: profile.Profile, *, dtype_prefix: str = "") -> int:
    return sum(g.flops * g.count for g in p.ops if g.kind == ops.MATMUL and g.dtype.startswith(dtype_prefix))


@pytest.fixture(scope="module")
def gpu_profiles() -> tuple[profile.Profile, profile.Profile]:
    w = tiny_decoder()
    return (profile(w, batch_size=2, precision="amp-bf16", gpu_kernels=True),
            profile(w, batch_size=2, precision="amp-bf16", gpu_kernels=True, fp8=True))


def test_the_blocks_linear_layers_run_fp8_products_and_the_head_stays_bf16(gpu_profiles) -> None:
    bf16, fp8 = gpu_profiles
    assert fp8.fp8 and not bf16.fp8
    assert _matmul_flops(fp8) == _matmul_flops(bf16)  # the same products, in another dtype
    head = 2 * 2 * 128 * TINY.dim * TINY.vocab_size  # forward of the output head: batch 2 x 128 tokens
    assert _matmul_flops(fp8, dtype_prefix="bfloat16") == 3 * head  # its forward and two backward products
    forward = {g.dtype for g in fp8.ops if g.op == "aten._scaled_mm.default" and g.phase == "forward"}
    backward = {g.dtype for g in fp8.ops if g.op == "aten._scaled_mm.default" and g.phase == "backward"}
    assert forward == {"float8_e4m3fn"} and backward == {"float8_e5m2"}  # inputs e4m3, output gradients e5m2
    # 7 linear layers per block (q, k, v, o, and the three of the MLP), 3 products each per step
    assert sum(g.count for g in fp8.ops if g.op == "aten._scaled_mm.default") == TINY.n_layers * 7 * 3


def test_a_gpu_profile_casts_with_two_fused_kernels_where_the_cpu_writes_them_out(gpu_profiles) -> None:
    _, fp8 = gpu_profiles
    casts = {g.op for g in fp8.ops if "fp8_" in g.op}
    assert casts == {"gpuwise.fp8_scale.default", "gpuwise.fp8_cast.default"}
    written_out = profile(tiny_decoder(), batch_size=2, precision="amp-bf16", fp8=True)  # the CPU's trace
    assert not any("fp8_" in g.op for g in written_out.ops)
    assert any(g.op == "aten.abs.default" for g in written_out.ops)  # torchao's amax, written out

    def cast_bytes(p: profile.Profile) -> int:
        return sum(g.bytes * g.count for g in p.ops if g.kind not in ops.TENSOR_KINDS and g.phase != "optimizer")

    bf16_trace = profile(tiny_decoder(), batch_size=2, precision="amp-bf16")
    # the fused casts read each tensor twice and write one byte an element; written out they move several times that
    assert cast_bytes(written_out) - cast_bytes(bf16_trace) > 3 * (cast_bytes(fp8) - cast_bytes(gpu_profiles[0]))


def test_fp8_products_are_priced_at_the_fp8_tensor_rate(gpu_profiles) -> None:
    h100 = gpu_rates(load_catalog().get("H100-SXM5-80GB"))
    assert h100.matmul_tflops("float8_e4m3fn", Precision.AMP_BF16) == h100.tensor_tflops[FP8]
    assert h100.matmul_tflops("float8_e5m2", Precision.AMP_BF16) == pytest.approx(
        2 * h100.matmul_tflops("bfloat16", Precision.AMP_BF16), rel=1e-3)  # H100: FP8 at twice BF16's rate
    bf16, fp8 = gpu_profiles
    eff = shipped_efficiency()
    tiny = step_time(bf16, h100, eff).by_kind_s[ops.MATMUL], step_time(fp8, h100, eff).by_kind_s[ops.MATMUL]
    assert tiny[1] < tiny[0]


def test_only_linear_layers_inside_blocks_with_dimensions_in_sixteens_are_converted() -> None:
    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(32, 64), nn.Linear(64, 24)  # 24: not a multiple of 16

    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = nn.ModuleList([Block(), Block()])
            self.head = nn.Linear(32, 32)

    model = Model()
    assert float8.fp8_layers(model) == [model.layers[0].a, model.layers[1].a]
    assert float8.convert(model, Precision.AMP_BF16, what="test") == 2
    assert [type(m).__name__ for m in (model.layers[0].a, model.layers[0].b, model.head)] == [
        "Float8Linear", "Linear", "Linear"]


def test_a_converted_model_trains_on_the_cpu_with_the_same_parameter_names() -> None:
    model = tiny_decoder().build_model(None)  # type: ignore[arg-type]
    names = [n for n, _ in model.named_parameters()]
    float8.convert(model, Precision.AMP_BF16, what="test")
    assert [n for n, _ in model.named_parameters()] == names  # checkpoints load either way
    tokens = torch.randint(0, TINY.vocab_size, (1, 16))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(tokens).float().logsumexp(-1).mean()
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize(("args", "says"), [
    (["llama-1b", "--gpu", "A100-SXM4-80GB", "--fp8"], "A100-SXM4-80GB has no FP8 tensor cores"),
    (["llama-1b", "--gpu", "H100-SXM5-80GB", "--fp8", "--precision", "fp32"], "use --precision amp-bf16"),
    (["resnet50", "--gpu", "H100-SXM5-80GB", "--fp8"], "has no nn.Linear with dimensions in multiples of 16"),
])
def test_predict_refuses_fp8_where_it_cannot_run_in_one_line(args: list[str], says: str) -> None:
    extra = ["-b", "1"] + (["--seq-len", "256"] if "resnet50" not in args else [])
    code, _, err = run_cli("predict", *args, *extra, "-q")
    assert code == 2 and says in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_plan_with_fp8_leaves_out_the_cpu_and_gpus_without_fp8_and_says_so(tmp_path) -> None:
    from gpuwise.plan import PlanConfig, plan

    config = PlanConfig.of(workload=tiny_decoder(), dataset_size=1e6, epochs=1, gpus=("A100-SXM4-80GB", "L40S"),
                           max_gpus=1, precision=Precision.AUTO, settings=RunSettings(fp8=True, compile=True))
    result = plan(config, store_path=tmp_path / "results.db")
    assert {o.device for o in result.options} == {"L40S"}
    assert any("not planned on the CPU" in n and "A100-SXM4-80GB" in n for n in result.notes)
    assert all(o.settings.fp8 for o in result.options)
    with pytest.raises(GpuwiseError, match="no GPU planned has FP8 tensor cores"):
        plan(PlanConfig.of(workload=tiny_decoder(), dataset_size=1e6, epochs=1, gpus=("A100-SXM4-80GB",),
                           settings=RunSettings(fp8=True)), store_path=tmp_path / "results.db")


def test_an_eager_fp8_prediction_says_its_casts_are_priced_as_compiled() -> None:
    from gpuwise.predict.single import PredictConfig, predict

    def notes(compile: bool) -> tuple[str, ...]:
        config = PredictConfig.of(workload=tiny_decoder(), gpu="H100-SXM5-80GB", batch_size=2,
                                  settings=RunSettings(fp8=True, compile=compile))
        return predict(config).notes

    assert any("--fp8 without --compile" in n for n in notes(False))
    assert not any("--fp8" in n for n in notes(True))


def _row(precision: str) -> PublishedRow:
    return PublishedRow(
        index=2, model="llama3-8b", task="", gpu="H100-SXM5-80GB", num_gpus=8, precision=precision,
        batch_per_gpu=2, throughput=1.0, unit="tokens/s", source="test",
        notes="seq len 8192; strategy fsdp2; activation checkpointing selective (op); compile yes",
    )


def test_published_fp8_runs_map_with_fp8_layers_and_are_not_fitted_on() -> None:
    run = map_llm_run(_row("FP8"))
    assert not isinstance(run, str) and run.fp8
    bf16 = map_llm_run(_row("AMP-BF16"))
    assert not isinstance(bf16, str) and not bf16.fp8
    assert "FP8" in map_llm_run(_row("FP16"))  # type: ignore[operator]
    assert not any(r.fp8 for r in usable_llm_runs(load_catalog()))


def test_train_and_bench_refuse_fp8_on_the_cpu_and_on_gpus_before_ada(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "the CPU has no FP8 units" in (float8.cannot_run_fp8("cpu") or "")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (8, 0))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "NVIDIA A100-SXM4-80GB")
    assert "compute capability 8.0" in (float8.cannot_run_fp8("cuda", "cuda:0") or "")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (9, 0))
    assert float8.cannot_run_fp8("cuda") is None
    code, _, err = run_cli("train", "llama-1b", "--fp8", "--steps", "1", "--devices", "cpu")
    assert code == 2 and "--fp8: the CPU has no FP8 units" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli("bench", "llama-1b", "--fp8", "--device", "cpu", "-q")
    assert code == 2 and "--fp8 on cpu: the CPU has no FP8 units" in err and len(err.strip().splitlines()) == 1
    if not torch.cuda.is_available():  # without --device, bench --fp8 leaves the CPU out, and finds no GPU here
        code, _, err = run_cli("bench", "llama-1b", "--fp8", "-q")
        assert code == 2 and "--fp8: no GPU here" in err


def test_bench_builds_the_step_it_times_with_fp8_layers() -> None:
    from gpuwise.bench.run import TrainingStep
    from gpuwise.config import OptimizerName

    w = tiny_decoder()
    step = TrainingStep(w, w.default_shape, 1, Precision.AMP_BF16, OptimizerName.ADAMW, "cpu", fp8=True)
    assert sum(type(m).__name__ == "Float8Linear" for m in step.model.modules()) == TINY.n_layers * 7


def test_train_passes_fp8_to_its_workers_and_keeps_it_with_its_checkpoints() -> None:
    from gpuwise.train.config import Devices, TrainConfig
    from gpuwise.train.launch import worker_args

    config = TrainConfig.of(workload="llama-1b", fp8=True, precision=Precision.AMP_BF16)
    assert config.fp8 and config.options()["fp8"] is True
    assert "--fp8" in worker_args(config, Devices("cuda", 2))
    assert "--fp8" not in worker_args(TrainConfig.of(workload="llama-1b"), Devices("cuda", 2))


def test_fp8_without_torchao_is_one_line_naming_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    real = importlib.import_module

    def missing(name: str, *args: object) -> object:
        if name.startswith("torchao"):
            raise ImportError(name)
        return real(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib, "import_module", missing)
    with pytest.raises(GpuwiseError, match="pip install torchao"):
        float8.convert(tiny_decoder().build_model(None), Precision.AMP_BF16, what="test")  # type: ignore[arg-type]


def test_predict_fp8_says_what_fp8_buys_against_the_same_step_in_bf16() -> None:
    import json

    args = ("predict", "llama-1b", "--gpu", "H100-SXM5-80GB", "-b", "1", "--seq-len", "256", "--compile", "--fp8", "-q")
    code, out, err = run_cli(*args)
    assert code == 0, err
    text = " ".join(out.split())  # rich wraps at the test terminal's width
    code, out, _ = run_cli(*args, "--json")
    data = json.loads(out)
    ratio = data["step"]["samples_per_s"] / data["without_fp8"]["step"]["samples_per_s"]
    assert data["settings"]["fp8"] and not data["without_fp8"]["settings"]["fp8"]
    assert "without --fp8 (bf16 linear layers)" in text and f"FP8 gives {ratio:.2f}×" in text


def test_recomputed_fp8_products_count_as_recompute_not_as_model_flops() -> None:
    """torchao runs its products inside an autograd Function's forward, where grad mode reads off even while a
    checkpointed block runs again in backward: the profile still counts them as recompute."""
    w = tiny_decoder()
    bf16, fp8 = (profile(w, batch_size=2, precision="amp-bf16", gpu_kernels=True, fp8=f,
                         activation_checkpointing="selective") for f in (False, True))
    assert fp8.recompute_flops == bf16.recompute_flops > 0  # the same products kept and rerun
    assert fp8.training_flops == bf16.training_flops  # the model's FLOPs, recompute excluded
