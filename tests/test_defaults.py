"""Defaults a practitioner would choose: precision auto by device, the global batch kept across a plan's
options (split with gradient accumulation where a share does not fit), the network between nodes by GPU class
stated with its source. Invariants, not numbers: they survive a change of the model's constants."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn

import gpuwise
import gpuwise.plan as plan_module
from gpuwise.bench.result import Ceilings
from gpuwise.config import Precision
from gpuwise.errors import GpuwiseError
from gpuwise.plan import Plan
from tests.helpers import run_cli

SLOW_BF16 = Ceilings(device="cpu", device_name="Test CPU", matmul_tflops={"float32": 0.2, "bfloat16": 0.05},
                     memory_gbps=10.0, measured_at="2026-01-01T00:00:00+00:00")
FAST_BF16 = Ceilings(device="cpu", device_name="Test CPU", matmul_tflops={"float32": 0.2, "bfloat16": 1.0},
                     memory_gbps=10.0, measured_at="2026-01-01T00:00:00+00:00")
# A GPU with 1 GB: the CUDA context leaves about 0.3 GiB for the step, so large shares need accumulation.
SMALL_GPU = """
[Half]
vendor = "test"
memory_gb = 1.0
memory_bandwidth_gbps = 200
fp32_tflops = 10
pcie_gen = 4
price_usd_per_hour = 0.20
"""


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 10))


def batch(n: int) -> torch.Tensor:
    return torch.randn(n, 1024)


@pytest.fixture(autouse=True)
def fixed_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plan_module, "cached_ceilings", lambda device, store_path=None, **kw: SLOW_BF16)
    monkeypatch.setattr(plan_module, "_ram_bytes", lambda: 8 * 2**30)


@pytest.fixture
def small_catalog(tmp_path: Path) -> Path:
    path = tmp_path / "gpus.toml"
    path.write_text(SMALL_GPU)
    return path


def make(tmp_path: Path, **settings: object) -> Plan:
    return gpuwise.plan(mlp(), make_batch=batch, dataset_size=1e6, epochs=1, store_path=tmp_path / "r.db",
                        **settings)  # type: ignore[arg-type]


# ------------------------------------------------------------------ precision auto


def test_auto_precision_follows_each_devices_tensor_cores(tmp_path: Path) -> None:
    p = make(tmp_path, gpus="V100-SXM2-16GB,T4,A100-SXM4-80GB,H100-SXM5-80GB", max_gpus=1)
    by_device = {o.device: (o.precision, o.precision_reason) for o in p.options}
    assert by_device["V100-SXM2-16GB"] == by_device["T4"] == ("amp-fp16", "FP16 tensor cores, no BF16")
    assert by_device["A100-SXM4-80GB"] == by_device["H100-SXM5-80GB"] == ("amp-bf16", "BF16 tensor cores")
    assert by_device["cpu"][0] == "fp32" and "no faster than fp32" in by_device["cpu"][1]
    for words in ("amp-fp16 on V100-SXM2-16GB, T4", "amp-bf16 on", "fp32 on your CPU"):
        assert words in p.precision_choice
    assert p.precision == p.recommendation.option.precision  # type: ignore[union-attr]


def test_auto_uses_bf16_on_a_cpu_that_measures_it_faster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plan_module, "cached_ceilings", lambda device, store_path=None, **kw: FAST_BF16)
    cpu = make(tmp_path, gpus="T4", max_gpus=1).options[0]
    assert (cpu.device, cpu.precision) == ("cpu", "amp-bf16") and "5.0×" in cpu.precision_reason


def test_an_asked_precision_is_never_changed(tmp_path: Path) -> None:
    p = make(tmp_path, gpus="T4,H100-SXM5-80GB", max_gpus=2, precision="fp32")
    assert {o.precision for o in p.options} == {"fp32"} and p.precision_choice == ""
    assert all(o.precision_reason == "" for o in p.options)


def test_predict_says_what_auto_chose(tmp_path: Path) -> None:
    o = gpuwise.predict(mlp(), make_batch=batch, gpu="T4", batch_size=8)
    assert (o.precision, o.precision_reason) == ("amp-fp16", "FP16 tensor cores, no BF16")
    code, out, err = run_cli("predict", "resnet18", "--gpu", "A100-SXM4-80GB", "--db", str(tmp_path / "r.db"))
    assert code == 0, err
    assert "amp-bf16 (auto: BF16 tensor cores)" in " ".join(out.split("\n\n")[0].split())  # the header, unwrapped


def test_profile_has_no_device_to_choose_for() -> None:
    with pytest.raises(GpuwiseError, match=r"--precision auto chooses by device, and a profile has none"):
        gpuwise.profile(mlp(), make_batch=batch, precision="auto")


def test_bench_auto_on_the_cpu_goes_by_its_measured_rates(monkeypatch: pytest.MonkeyPatch) -> None:
    from gpuwise.bench import calibrate
    from gpuwise.bench.run import local_precision

    monkeypatch.setattr(calibrate, "cached_ceilings", lambda device, store_path=None, **kw: FAST_BF16)
    assert local_precision("cpu")[0] is Precision.AMP_BF16
    monkeypatch.setattr(calibrate, "cached_ceilings", lambda device, store_path=None, **kw: SLOW_BF16)
    assert local_precision("cpu")[0] is Precision.FP32


def fast_bf16_db(tmp_path: Path) -> Path:
    """A results database whose stored ceilings say this CPU runs bf16 matmuls 5× faster than fp32 (AMX-like)."""
    from gpuwise.hardware.local import device_name, machine_key
    from gpuwise.store import open_store

    path = tmp_path / "fast-bf16.db"
    with open_store(path) as store:
        store.put_ceilings(replace(FAST_BF16, device_name=device_name("cpu")), machine_key())
    return path


def test_bench_defaults_to_auto_and_stores_what_it_chose(tiny: str, db: Path, tmp_path: Path) -> None:
    from gpuwise.bench.run import BenchConfig
    from gpuwise.store import open_store

    assert BenchConfig.of(workload=tiny).precision is Precision.AUTO
    result = gpuwise.bench(tiny, steps=1, warmup=1, store_path=db, store=True)
    assert result.precision == "fp32"  # the db's CPU measures bf16 no faster than fp32
    code, out, err = run_cli("bench", tiny, "--steps", "1", "--warmup", "1", "--db", str(db))
    assert code == 0, err
    assert "fp32 (auto: its bf16 matmuls are measured no faster than fp32)" in " ".join(out.split())
    fast = gpuwise.bench(tiny, steps=1, warmup=1, store_path=fast_bf16_db(tmp_path), store=True)
    assert fast.precision == "amp-bf16"
    with open_store(db) as store:
        assert {r.precision for r in store.results()} == {"fp32"}  # never "auto"


@pytest.mark.parametrize(
    "name, capability, expected",
    [("Tesla T4", (7, 5), ("amp-fp16", "FP16 tensor cores, no BF16")),  # the catalog's T4: plan's choice
     ("Tesla V100-SXM2-16GB", (7, 0), ("amp-fp16", "FP16 tensor cores, no BF16")),
     ("Some Future GPU", (10, 0), ("amp-bf16", "BF16 tensor cores (compute capability 8.0 or later)")),
     ("Some Old GPU", (6, 1), ("fp32", "no 16-bit tensor cores"))],
)
def test_a_local_gpu_is_chosen_for_as_plan_chooses_for_its_catalog_entry(
    monkeypatch: pytest.MonkeyPatch, name: str, capability: tuple[int, int], expected: tuple[str, str]
) -> None:
    """No GPU here: what torch would report is pretended, the choice is the code's."""
    from gpuwise.bench.run import local_precision

    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    precision, reason = local_precision("cuda:0")
    assert (precision.value, reason) == expected


def test_bench_says_each_devices_choice_when_they_differ() -> None:
    """A CPU at fp32 and a GPU at amp-bf16: each row shows its precision and the speed-up says which two."""
    import io

    from rich.console import Console

    from gpuwise.bench.run import BenchReport
    from gpuwise.cli.bench import render
    from tests.helpers import stored_result

    cpu = stored_result("cpu", "Test CPU", 2.0)
    gpu = stored_result("cuda:0", "NVIDIA H100 80GB HBM3", 0.02, precision="amp-bf16")
    report = BenchReport(results=(cpu, gpu), speedup_over_cpu={"cuda:0": 100.0},
                         precision_reasons={"cpu": "its bf16 matmuls are measured no faster than fp32",
                                            "cuda:0": "BF16 tensor cores"})
    out = io.StringIO()
    render(report, Console(file=out, width=200, highlight=False))
    text = " ".join(out.getvalue().split())
    assert ("precision auto: fp32 on cpu (its bf16 matmuls are measured no faster than fp32); amp-bf16 on cuda:0 "
            "(BF16 tensor cores)") in text
    assert "speed-up over the CPU on cuda:0: 100.0x (amp-bf16 there, fp32 on the CPU)" in text
    head = next(line for line in out.getvalue().splitlines() if "device" in line and "batch" in line)
    assert "precision" in head  # a column of its own, as each row's differs


def test_an_asked_bench_precision_is_kept(tiny: str, tmp_path: Path) -> None:
    result = gpuwise.bench(tiny, steps=1, warmup=1, precision="fp32", store_path=fast_bf16_db(tmp_path))
    assert result.precision == "fp32"


@pytest.mark.parametrize("flags", [[], ["--precision", "auto"]])
def test_train_chooses_the_precision_for_its_device_and_records_it(tiny: str, tmp_path: Path,
                                                                  flags: list[str]) -> None:
    from gpuwise.store import open_store
    from gpuwise.train import checkpoint

    db, folder = fast_bf16_db(tmp_path), tmp_path / "run"
    code, out, err = run_cli("train", tiny, "--devices", "cpu", "--steps", "4", "--warmup", "1", *flags,
                             "--checkpoint-dir", str(folder), "--db", str(db))
    assert code == 0, err
    assert "amp-bf16 (auto: its bf16 matmuls measured 5.0× its fp32 ones)" in " ".join(out.split())
    with open_store(db) as store:
        assert [r.precision for r in store.results(origin="train")] == ["amp-bf16"]
    found = checkpoint.find(folder)
    assert found is not None and checkpoint.manifest(found.path)["settings"]["precision"] == "amp-bf16"
    code, out, err = run_cli("train", "--resume", str(folder), "--steps", "6", *flags, "--db", str(db), "--json")
    assert code == 0, err  # the checkpoint's precision is the run's, so the resume matches it
    assert json.loads(out)["precision"] == "amp-bf16"


def test_a_mistake_costs_no_calibration_and_leaves_no_store(tmp_path: Path) -> None:
    """auto reads (or first measures) the CPU's ceilings in the results store: only once the run is checked."""
    db = tmp_path / "new.db"
    code, _, err = run_cli("train", "resnet18", "--devices", "cpu", "--data", str(tmp_path / "no-such-folder"),
                           "--db", str(db))
    assert code == 2 and "no-such-folder" in err
    assert not db.exists()


def test_an_asked_train_precision_is_kept(tiny: str, tmp_path: Path) -> None:
    code, out, err = run_cli("train", tiny, "--devices", "cpu", "--steps", "2", "--warmup", "1", "--precision",
                             "fp32", "--db", str(fast_bf16_db(tmp_path)), "--json")
    assert code == 0, err
    assert json.loads(out)["precision"] == "fp32"


def test_the_workers_are_given_the_precision_chosen(tiny: str, tmp_path: Path) -> None:
    from gpuwise.train.config import Devices, TrainConfig, with_local_precision
    from gpuwise.train.launch import worker_args

    auto = TrainConfig.of(workload=tiny, store_path=fast_bf16_db(tmp_path))
    assert "--precision" not in worker_args(auto, Devices("cpu", 2))  # auto: each machine chooses
    chosen, reason = with_local_precision(auto, Devices("cpu", 2).first)
    args = worker_args(chosen, Devices("cpu", 2))
    assert args[args.index("--precision") + 1] == "amp-bf16" and "5.0×" in reason


def test_a_dry_run_leaves_auto_to_the_machines_that_run_it(tiny: str) -> None:
    code, out, _ = run_cli("train", tiny, "--devices", "8", "--dry-run")
    assert code == 0 and "--precision" not in out  # each worker chooses for its own GPU


# ------------------------------------------------------------------ the global batch


def test_the_global_batch_is_kept_in_every_option_with_accumulation_where_needed(
    tmp_path: Path, small_catalog: Path
) -> None:
    p = make(tmp_path, gpus="Half", catalog=small_catalog, global_batch=65536)
    fitting = [o for o in p.options if o.fits]
    assert len(fitting) == len(p.options) == 1 + 7  # the CPU and 1..64 GPUs
    for o in fitting:
        assert o.batch_size * o.settings.grad_accum * o.num_gpus == o.global_batch_size == 65536
        assert o.memory_per_gpu_bytes <= o.capacity_bytes and not o.batch_reduced
    one = next(o for o in fitting if o.device == "Half" and o.num_gpus == 1)
    assert one.settings.grad_accum > 1  # 65536 samples do not fit one 1 GB GPU in one pass
    assert p.global_batch == 65536 and p.requested_batch_size == 65536
    steps = {o.run.steps_per_epoch for o in fitting if o.run}
    assert steps == {-(-1_000_000 // 65536)}  # the same number of optimizer steps everywhere


def test_the_default_global_batch_is_the_workloads_batch(tmp_path: Path) -> None:
    p = make(tmp_path, gpus="H100-SXM5-80GB", max_gpus=64)
    assert p.global_batch == 32  # a module's default batch
    assert {o.global_batch_size for o in p.options} == {32}
    assert [o.num_gpus for o in p.options if o.is_gpu] == [1, 2, 4, 8, 16, 32]
    assert any("not planned on 64 GPUs: a global batch of 32 does not split evenly" in n for n in p.notes)


def test_a_batch_per_gpu_is_kept_instead_when_asked(tmp_path: Path) -> None:
    p = make(tmp_path, gpus="H100-SXM5-80GB", max_gpus=8, batch_size=16)
    assert p.global_batch is None
    assert {o.num_gpus: o.global_batch_size for o in p.options if o.is_gpu} == {1: 16, 2: 32, 4: 64, 8: 128}


def test_plan_cli_shows_micro_batch_times_accumulation_times_gpus(tmp_path: Path) -> None:
    code, out, err = run_cli("plan", "resnet18", "--dataset-size", "1e6", "--epochs", "1", "--gpus", "T4",
                             "--max-gpus", "4", "--global-batch", "128", "--db", str(tmp_path / "r.db"))
    assert code == 0, err
    flat = " ".join(out.split())  # lines wrap at the test console's 80 columns
    assert "global batch 128 in every option (micro batch × accumulation × GPUs)" in flat
    assert "precision auto: " in flat and "amp-fp16 on T4 (FP16 tensor cores, no BF16)" in flat
    assert re.search(r"32 ?× ?1 ?× ?4", out) and re.search(r"128 ?× ?1 ?× ?1|64 ?× ?2 ?× ?1|32 ?× ?4 ?× ?1", out)
    code, out, _ = run_cli("plan", "resnet18", "--dataset-size", "1e6", "--epochs", "1", "--gpus", "T4",
                           "--max-gpus", "2", "--json", "--db", str(tmp_path / "r.db"))
    data = json.loads(out)
    assert data["global_batch"] == 256 and {o["global_batch_size"] for o in data["options"]} == {256}


@pytest.mark.parametrize(
    "args, message",
    [
        (["--global-batch", "64", "--batch-size", "8"], r"--global-batch splits itself .* without --batch-size"),
        (["--global-batch", "64", "--grad-accum", "2"], r"--global-batch splits itself"),
        (["--global-batch", "0"], r"--global-batch must be a positive integer"),
        (["--global-batch", "lots"], r"--global-batch must be a positive integer, got 'lots'"),
        (["--precision", "autoo"], r"unknown precision 'autoo'"),
    ],
)
def test_new_flags_mistakes_are_one_line(args: list[str], message: str) -> None:
    code, _, err = run_cli("plan", "resnet18", "--dataset-size", "1e6", "--epochs", "1", *args)
    assert code == 2 and len(err.strip().splitlines()) == 1 and re.search(message, err), err


# ------------------------------------------------------------------ a language model's recipe batch


def tiny_lm(tmp_path: Path, recipe_tokens: int) -> gpuwise.Workload:
    """A tiny token-counted model of 16-token sequences whose 'published recipe' is ``recipe_tokens`` per step."""
    from dataclasses import replace as replace_field

    from gpuwise.workloads.module import module_workload
    from gpuwise.workloads.registry import RecipeBatch, Shape

    model = nn.Sequential(nn.Embedding(100, 32), nn.Linear(32, 100))
    w = module_workload(model, lambda n: torch.randint(0, 100, (n, 16)), sample_unit="token", tokens_per_sample=16)
    recipe = RecipeBatch(tokens=recipe_tokens, recipe="the test paper's", source="tests (read 2026-12-06)")
    return replace_field(w, default_shape=Shape(seq_len=16), recipe_batch=recipe)


def test_every_zoo_language_model_plans_a_published_recipes_batch_by_default() -> None:
    from gpuwise.workloads import list_workloads

    llms = [w for w in list_workloads() if w.sample_unit == "token"]
    assert {"gpt2", "llama-7b", "llama2-70b", "llama3-8b", "tinyllama-1.1b"} <= {w.name for w in llms}
    for w in llms:
        recipe = w.recipe_batch
        assert recipe is not None, f"{w.name} has no recipe batch"
        assert "http" in recipe.source and "(read 20" in recipe.source, w.name  # where it is written, and when
        assert 0.5e6 <= recipe.tokens <= 16e6, w.name  # the 0.5-16M tokens per step published recipes use
        assert w.default_global_batch() * w.default_shape.seq_len == recipe.tokens, w.name  # whole sequences
    gpt2 = next(w for w in llms if w.name == "gpt2")
    assert gpt2.default_global_batch() == 512  # the GPT-2 paper's 512 sequences of 1024 tokens
    assert gpt2.default_global_batch(seq_len=512) == 1024  # the recipe's tokens kept at another length
    vision = [w for w in list_workloads() if w.sample_unit == "image"]
    assert all(w.recipe_batch is None and w.default_global_batch() == w.default_batch_size for w in vision)


def test_plan_keeps_the_recipes_global_batch_and_says_whose_it_is(tmp_path: Path) -> None:
    from rich.console import Console

    from gpuwise.cli.plan import render

    lm = tiny_lm(tmp_path, recipe_tokens=64 * 16)
    p = gpuwise.plan(lm, dataset_size=1e5, epochs=1, gpus="H100-SXM5-80GB", max_gpus=4, store_path=tmp_path / "r.db")
    assert p.global_batch == 64 and p.global_batch_recipe == "the test paper's"
    assert {o.global_batch_size for o in p.options} == {64}  # micro batch × accumulation × GPUs, every option
    console = Console(width=200, record=True)
    render(p, console)
    assert ("global batch 64 sequences = 1,024 tokens (the test paper's recipe, by default; --global-batch N for "
            "another)") in console.export_text()
    from gpuwise.report.data import _setting

    assert "global batch 64 (the test paper's recipe)" in _setting(p)  # the report's header says it too
    asked = gpuwise.plan(lm, dataset_size=1e5, epochs=1, gpus="H100-SXM5-80GB", max_gpus=1, global_batch=8,
                         store_path=tmp_path / "r.db")
    assert (asked.global_batch, asked.global_batch_recipe) == (8, "")  # the user's, said as such
    per_gpu = gpuwise.plan(lm, dataset_size=1e5, epochs=1, gpus="H100-SXM5-80GB", max_gpus=1, batch_size=4,
                           store_path=tmp_path / "r.db")
    assert (per_gpu.global_batch, per_gpu.global_batch_recipe) == (None, "")


# ------------------------------------------------------------------ the network between nodes


def test_the_network_default_follows_the_gpu_class_and_says_so(tmp_path: Path) -> None:
    p = make(tmp_path, gpus="RTX-3090,H100-SXM5-80GB", max_gpus=16, batch_size=8)
    sixteen = {o.device: o for o in p.options if o.num_gpus == 16}
    geforce, hopper = sixteen["RTX-3090"], sixteen["H100-SXM5-80GB"]
    assert geforce.network.startswith("12.5 Gb/s per GPU: GeForce/workstation cards: Ethernet")
    assert hopper.network.startswith("400 Gb/s per GPU: Hopper/Blackwell boards: a 400 Gb/s InfiniBand NIC")
    assert geforce.step is not None and "network 12.5 Gb/s per GPU" in (geforce.step.link or "")
    assert all(o.network == "" for o in p.options if o.num_nodes == 1)
    assert any(n.startswith("between nodes: 12.5 Gb/s per GPU") for n in p.notes)
    faster = make(tmp_path, gpus="RTX-3090", max_gpus=16, batch_size=8, network_gbits=200)
    option = next(o for o in faster.options if o.num_gpus == 16)
    assert option.network == "200 Gb/s per GPU (--network-gbits)"
    assert option.step is not None and geforce.step.communication_s > option.step.communication_s


def slow_bf16_db(tmp_path: Path) -> Path:
    """A results database whose stored ceilings say this CPU runs bf16 matmuls at 1% of fp32 (no bf16 units)."""
    from gpuwise.hardware.local import device_name, machine_key
    from gpuwise.store import open_store

    path = tmp_path / "slow-bf16.db"
    slow = replace(FAST_BF16, device_name=device_name("cpu"), matmul_tflops={"float32": 0.2, "bfloat16": 0.002})
    with open_store(path) as store:
        store.put_ceilings(slow, machine_key())
    return path


def test_an_asked_bf16_on_a_cpu_without_bf16_units_is_kept_and_said_slow() -> None:
    from gpuwise.predict.precision import cpu_precision_note

    slow = replace(FAST_BF16, matmul_tflops={"float32": 0.2, "bfloat16": 0.002})
    note = cpu_precision_note(Precision.AMP_BF16, slow)
    assert "0.01× its fp32 ones" in note and "--precision auto picks fp32" in note
    assert cpu_precision_note(Precision.FP32, slow) == ""
    assert cpu_precision_note(Precision.AMP_BF16, FAST_BF16) == ""  # fast bf16 units: nothing to say
    assert cpu_precision_note(Precision.AMP_BF16, replace(FAST_BF16, matmul_tflops={"float32": 0.2})) == ""


@pytest.mark.parametrize("command", ["bench", "train"])
def test_bench_and_train_say_so_before_they_run(command: str, tiny: str, tmp_path: Path) -> None:
    steps = ["--steps", "1", "--warmup", "1"] if command == "bench" else ["--steps", "2", "--warmup", "1"]
    where = ["--device", "cpu"] if command == "bench" else ["--devices", "cpu"]
    code, out, err = run_cli(command, tiny, *where, *steps, "--precision", "amp-bf16",
                             "--db", str(slow_bf16_db(tmp_path)), "--json")
    assert code == 0, err
    assert "gpuwise: note: amp-bf16 on the CPU as asked, but its bf16 matmuls measured 0.01× its fp32 ones" in err
    result = json.loads(out)
    assert (result["results"][0] if command == "bench" else result)["precision"] == "amp-bf16"
    code, _, err = run_cli(command, tiny, *where, *steps, "--precision", "fp32", "--db",
                           str(slow_bf16_db(tmp_path / "b")), "--json")
    assert code == 0 and "note" not in err


def test_an_mfu_above_the_measured_ceiling_is_marked_and_explained() -> None:
    """A CPU without bf16 units: oneDNN's bf16 convolutions beat the bf16 GEMM calibrate measured, MFU 710%."""
    import io

    from rich.console import Console

    from gpuwise.bench.run import BenchReport
    from gpuwise.cli.bench import render
    from tests.helpers import stored_result

    def shown(mfu: float) -> str:
        report = BenchReport(results=(stored_result("cpu", "Test CPU", 2.0, precision="amp-bf16", mfu=mfu),),
                             speedup_over_cpu={})
        out = io.StringIO()
        render(report, Console(file=out, width=200, highlight=False))
        return " ".join(out.getvalue().split())

    above = shown(7.099)
    assert "709.9% †" in above and "† MFU above 100%: the step ran faster than the matmul ceiling" in above
    below = shown(0.36)
    assert "36.0%" in below and "†" not in below
