"""gpuwise train in one process: the launch plan, checkpoints, exact resume, --plan, and every bad input."""

from __future__ import annotations

import dataclasses
import json
import textwrap
from pathlib import Path

import pytest
import torch

from gpuwise.config import Strategy
from gpuwise.errors import GpuwiseError
from gpuwise.train import checkpoint
from gpuwise.train.config import Devices, TrainConfig, parse_devices
from gpuwise.train.launch import WORKER_ENV, Nodes, build_launch, format_launch
from tests.helpers import params, run_cli


def train(*args: str) -> tuple[int, str, str]:
    return run_cli("train", *args)


# ------------------------------------------------------------------ the launch, a pure function


def config(**kw: object) -> TrainConfig:
    return TrainConfig.of(workload="resnet50", **kw)


def test_one_device_runs_in_process() -> None:
    launch = build_launch(config(), Devices("cpu", 1), python="py")
    assert launch.in_process and launch.world_size == 1
    assert launch.argv[:5] == ("py", "-m", "gpuwise.cli", "train", "resnet50")


def test_launch_for_one_node_of_eight_gpus() -> None:
    launch = build_launch(config(precision="amp-bf16", steps=100), Devices("cuda", 8), python="py", cpu_threads=64)
    assert not launch.in_process
    assert (launch.world_size, launch.nproc_per_node, launch.nnodes, launch.node_rank) == (8, 8, 1, 0)
    assert launch.backend == "nccl" and launch.rendezvous is None
    argv = list(launch.argv)
    assert argv[:6] == ["py", "-m", "torch.distributed.run", "--nnodes=1", "--nproc-per-node=8", "--standalone"]
    worker = argv[argv.index("gpuwise.cli"):]
    assert worker == ["gpuwise.cli", "train", "resnet50", "--devices", "cuda", "--precision", "amp-bf16",
                      "--steps", "100"]
    assert launch.env == {WORKER_ENV: "1", "OMP_NUM_THREADS": "8"}


def test_launch_for_two_nodes_of_eight_gpus() -> None:
    nodes = Nodes(count=2, rank=1, master_addr="node0", master_port=29400)
    launch = build_launch(config(checkpoint_dir=Path("runs/r50")), Devices("cuda", 8), nodes, python="py",
                          cpu_threads=32)
    assert (launch.world_size, launch.nproc_per_node, launch.nnodes, launch.node_rank) == (16, 8, 2, 1)
    assert launch.rendezvous == "node0:29400"
    argv = list(launch.argv)
    assert "--standalone" not in argv
    assert argv[3:8] == ["--nnodes=2", "--nproc-per-node=8", "--node-rank=1", "--master-addr=node0",
                         "--master-port=29400"]
    assert argv[-2:] == ["--checkpoint-dir", "runs/r50"]
    assert format_launch(launch).startswith(f"{WORKER_ENV}=1 OMP_NUM_THREADS=4 py -m torch.distributed.run")


def test_cpu_processes_use_gloo_and_share_the_cores() -> None:
    launch = build_launch(config(strategy=Strategy.FSDP), Devices("cpu", 2), python="py", cpu_threads=2)
    assert launch.backend == "gloo" and launch.env["OMP_NUM_THREADS"] == "1"
    assert "--strategy" in launch.argv and "fsdp" in launch.argv


@pytest.mark.parametrize("text, expected", [
    ("auto", Devices("cpu", 1, reason="auto: no GPU here, so the CPU")),
    ("cpu", Devices("cpu", 1)),
    ("cpu:3", Devices("cpu", 3)),
])
def test_devices_without_a_gpu(text: str, expected: Devices) -> None:
    assert parse_devices(text, num_gpus=0) == expected


def test_auto_takes_the_gpu_when_there_is_one() -> None:
    d = parse_devices("auto", num_gpus=2)
    assert (d.kind, d.count) == ("cuda", 1) and "GPU" in d.reason
    assert parse_devices("2", num_gpus=2) == Devices("cuda", 2)
    assert parse_devices("cuda:1", num_gpus=2) == Devices("cuda", 1, index=1)


@pytest.mark.parametrize("text, gpus, message", [
    ("8", 0, "more GPUs than exist; this machine has 0 GPUs; use --devices cpu"),
    ("4", 2, "more GPUs than exist; this machine has 2 GPUs; use --devices 2"),
    ("cuda:2", 2, "this machine has 2 GPUs"),
    ("tpu", 0, "use auto, cpu, cpu:N"),
])
def test_bad_devices(text: str, gpus: int, message: str) -> None:
    with pytest.raises(GpuwiseError, match=message):
        parse_devices(text, num_gpus=gpus)


def test_node_rank_must_be_below_the_node_count() -> None:
    with pytest.raises(GpuwiseError, match="--node-rank 2 is not below --nodes 2"):
        Nodes(count=2, rank=2, master_addr="node0")
    with pytest.raises(GpuwiseError, match="needs --master-addr"):
        Nodes(count=2, rank=0)


# ------------------------------------------------------------------ checkpoints


def test_checkpoint_round_trip_and_pruning(tmp_path: Path) -> None:
    for step in (1, 2, 3, 4):
        checkpoint.save(tmp_path, step, {"format": checkpoint.FORMAT, "w": torch.full((3,), float(step))}, keep=2,
                        info={"settings": {"a": 1}})
    assert sorted(p.name for p in tmp_path.glob("*.pt")) == ["step-000000003.pt", "step-000000004.pt"]
    found = checkpoint.find(tmp_path)
    assert found is not None and found.step == 4 and found.skipped == ()
    assert checkpoint.load(found.path)["w"].tolist() == [4.0, 4.0, 4.0]
    assert checkpoint.manifest(found.path)["settings"] == {"a": 1}
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left behind


def test_a_torn_checkpoint_is_passed_over_for_the_previous_one(tmp_path: Path) -> None:
    for step in (5, 10):
        checkpoint.save(tmp_path, step, {"format": checkpoint.FORMAT, "w": torch.randn(100)}, keep=3)
    newest = checkpoint.checkpoint_path(tmp_path, 10)
    newest.write_bytes(newest.read_bytes()[:200])  # torn
    checkpoint.checkpoint_path(tmp_path, 15).write_bytes(b"no manifest: the write was cut short")
    found = checkpoint.find(tmp_path)
    assert found is not None and found.step == 5
    assert [s.split(":")[0] for s in found.skipped] == ["step-000000015.pt", "step-000000010.pt"]
    assert "torn or corrupt" in found.skipped[1] and "no manifest" in found.skipped[0]


def test_rng_state_round_trips_through_weights_only_load(tmp_path: Path) -> None:
    import random

    torch.manual_seed(3)
    random.seed(3)
    checkpoint.save(tmp_path, 1, {"format": checkpoint.FORMAT, "rng": checkpoint.rng_state()}, keep=1)
    expected = (torch.rand(3), random.random())
    torch.manual_seed(99)
    random.seed(99)
    found = checkpoint.find(tmp_path)
    assert found is not None
    checkpoint.set_rng_state(checkpoint.load(found.path)["rng"])
    assert (torch.rand(3), random.random()) == (pytest.approx(expected[0]), expected[1])


# ------------------------------------------------------------------ training in this process


def test_train_reports_measured_and_predicted_and_stores_both(tiny: str, db: Path, tmp_path: Path) -> None:
    code, out, err = train(tiny, "--steps", "6", "--db", str(db), "--json")
    assert code == 0, err
    result = json.loads(out)
    assert (result["start_step"], result["end_step"], result["world_size"]) == (0, 6, 1)
    assert result["timing"]["num_steps"] == 3 and result["timing"]["num_warmup"] == 3  # warm-up not timed
    c = result["comparison"]
    assert c["predicted_step_s"] > 0 and "analytical" in c["provenance"]
    assert c["error"] == pytest.approx(result["timing"]["median_s"] / c["predicted_step_s"] - 1)
    from gpuwise.store import open_store

    with open_store(db) as store:
        stored = store.results(origin="train")
    assert [r.id for r in stored] == [c["stored_id"]]
    assert stored[0].predicted_step_s == c["predicted_step_s"] and stored[0].timing.median_s == result["timing"][
        "median_s"]
    with open_store(db) as store:
        assert store.results(origin="bench") == []


def test_resume_reaches_the_same_parameters_as_an_uninterrupted_run(tiny: str, db: Path, tmp_path: Path) -> None:
    part, full = tmp_path / "part", tmp_path / "full"
    # 20 samples at batch 4: epochs of 5 steps. Stop after 4 steps, in the middle of the first epoch ...
    common = ("--synthetic-samples", "20", "--db", str(db))
    assert train(tiny, "--steps", "12", "--checkpoint-dir", str(full), *common)[0] == 0
    assert train(tiny, "--steps", "4", "--checkpoint-dir", str(part), *common)[0] == 0
    # ... and continue to 12 (two epoch boundaries later) from the checkpoint alone: no workload named.
    code, out, err = train("--steps", "12", "--resume", str(part), "--db", str(db))
    assert code == 0, err
    assert "resuming from" in out and "(step 4)" in out
    resumed, uninterrupted = params(part), params(full)
    assert resumed.keys() == uninterrupted.keys()
    for name in uninterrupted:
        torch.testing.assert_close(resumed[name], uninterrupted[name])
    other = tmp_path / "other"  # another seed does not match: the comparison can fail
    assert train(tiny, "--steps", "12", "--seed", "1", "--checkpoint-dir", str(other), *common)[0] == 0
    different = params(other)
    assert any(not torch.equal(different[n], uninterrupted[n]) for n in uninterrupted)


def test_resume_without_a_checkpoint_is_one_line(tiny: str, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    code, _, err = train(tiny, "--steps", "2", "--resume", str(tmp_path / "empty"))
    assert code == 2 and err.count("\n") == 1
    assert "no good checkpoint there (it is empty)" in err
    code, _, err = train(tiny, "--resume", str(tmp_path / "nowhere"))
    assert code == 2 and "no such folder" in err


def test_resume_of_another_run_says_what_it_found(tiny: str, db: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert train(tiny, "--steps", "2", "--checkpoint-dir", str(run), "--db", str(db))[0] == 0
    code, _, err = train(tiny, "--steps", "4", "--batch-size", "8", "--resume", str(run), "--db", str(db))
    assert code == 2 and err.count("\n") == 1
    assert "its checkpoint is of another run: batch_size 4 (this run: 8)" in err
    code, _, err = train("resnet18", "--resume", str(run), "--db", str(db))
    assert code == 2 and "workload" in err and "resnet18" in err


@pytest.mark.parametrize("args, message", [
    (["--devices", "8"], "more GPUs than exist"),
    (["--devices", "cpu:2", "--nodes", "2", "--node-rank", "2", "--master-addr", "h"],
     "--node-rank 2 is not below --nodes 2"),
    (["--data", "/no/such/folder"], "is your own, so gpuwise cannot read a data set for it"),
    (["--epochs", "1", "--steps", "3"], "give --epochs or --steps, not both"),
    (["--checkpoint-every", "2"], "add --checkpoint-dir"),
    (["--strategy", "zero3"], "use --strategy auto | ddp | fsdp"),
    (["--steps", "0"], "--steps must be a positive integer"),
])
def test_bad_input_is_one_line_and_exit_2(tiny: str, args: list[str], message: str) -> None:
    code, out, err = train(tiny, *args)
    assert code == 2, out + err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("make", ["missing", "empty"])
def test_data_in_the_wrong_layout_names_the_expected_one(tmp_path: Path, make: str) -> None:
    folder = tmp_path / "images"
    if make == "empty":
        folder.mkdir()
    code, _, err = train("resnet18", "--data", str(folder), "--image-size", "32")
    assert code == 2 and err.count("\n") == 1
    assert str(folder) in err and "ImageFolder" in err


def test_no_workload_is_one_line() -> None:
    code, _, err = train()
    assert code == 2 and "name the workload to train" in err


def test_dry_run_prints_the_torchrun_command_for_two_nodes(tiny: str) -> None:
    code, out, _ = train("resnet50", "--nodes", "2", "--node-rank", "0", "--master-addr", "node0", "--devices", "8",
                         "--dry-run")
    assert code == 0
    assert "world size 16 = 2 node(s) × 8 processes" in out
    assert "-m torch.distributed.run --nnodes=2 --nproc-per-node=8 --node-rank=0 --master-addr=node0" in out
    assert f"{WORKER_ENV}=1" in out


# ------------------------------------------------------------------ --plan


def test_plan_then_train_the_recommendation(tiny: str, db: Path) -> None:
    code, _, err = run_cli("plan", tiny, "--dataset-size", "40", "--epochs", "1", "--db", str(db), "--gpus", "T4")
    assert code == 0, err
    saved = json.loads((db.parent / "last-plan.json").read_text())
    assert saved["device"] == "cpu" and saved["workload"] == tiny  # a tiny job: no GPU needed
    code, out, err = train("--plan", "--db", str(db), "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["device"] == "cpu" and result["end_step"] == 40 // saved["batch_size"]


def test_plan_for_gpus_that_are_not_here_says_so(db: Path) -> None:
    (db.parent / "last-plan.json").write_text(json.dumps({
        "workload": "resnet50", "batch_size": 256, "precision": "amp-bf16", "optimizer": "adamw", "seq_len": None,
        "image_size": None, "epochs": 90, "samples_per_epoch": 1281167, "device": "H100-SXM5-80GB",
        "label": "8× H100-SXM5-80GB", "num_gpus": 8, "num_nodes": 1, "strategy": "DDP",
    }))
    code, _, err = train("--plan", "--db", str(db))
    assert code == 2 and err.count("\n") == 1
    assert "the plan wants 8× H100-SXM5-80GB (DDP); this machine has" in err and "--dry-run" in err
    code, out, _ = train("--plan", "--db", str(db), "--dry-run")
    assert code == 0 and "--nproc-per-node=8" in out and "--precision amp-bf16" in out
    assert "--activation-checkpointing" not in out and "--compile" not in out  # the plan priced neither


def test_train_from_the_plan_recomputes_and_compiles_as_the_plan_priced(db: Path) -> None:
    (db.parent / "last-plan.json").write_text(json.dumps({
        "workload": "llama-7b", "batch_size": 2, "precision": "amp-bf16", "optimizer": "adamw", "seq_len": 4096,
        "image_size": None, "epochs": 1, "samples_per_epoch": 1000, "device": "H100-SXM5-80GB",
        "label": "8× H100-SXM5-80GB", "num_gpus": 8, "num_nodes": 1, "strategy": "FSDP", "grad_accum": 4,
        "activation_checkpointing": "selective", "compile": True,
    }))
    code, out, err = train("--plan", "--db", str(db), "--dry-run")
    assert code == 0, err
    assert "--activation-checkpointing selective" in out and "--compile" in out and "--strategy fsdp" in out


def test_the_plan_is_checked_against_the_gpus_detected_here(monkeypatch: pytest.MonkeyPatch) -> None:
    """train --plan matches this machine's GPUs to the catalog in the library (hardware.local), not the CLI."""
    from gpuwise.hardware import local
    from gpuwise.hardware.catalog import load_catalog
    from gpuwise.train.recommended import Recommended, check_this_machine

    rec = Recommended(workload="resnet50", batch_size=256, precision="amp-bf16", optimizer="adamw", seq_len=None,
                      image_size=None, epochs=1, samples_per_epoch=100, device="H100-SXM5-80GB",
                      label="2× H100-SXM5-80GB", num_gpus=2, num_nodes=1, strategy="DDP")
    catalog = load_catalog(None)
    h100 = ("NVIDIA H100 80GB HBM3", 80 * 2**30)
    for listed, problem in (([h100, h100], None), ([h100], "1× NVIDIA H100 80GB HBM3"), ([], "no GPU")):
        monkeypatch.setattr(local, "nvidia_smi_gpus", lambda listed=listed: listed)
        got = check_this_machine(rec, catalog)
        assert got is None if problem is None else got is not None and f"this machine has {problem}" in got
    monkeypatch.setattr(local, "nvidia_smi_gpus", lambda: pytest.fail("a CPU plan detects no GPUs"))
    assert check_this_machine(dataclasses.replace(rec, device="cpu"), catalog) is None


def test_plan_without_a_saved_plan_is_one_line(tmp_path: Path) -> None:
    code, _, err = train("--plan", "--db", str(tmp_path / "r.db"))
    assert code == 2 and "no plan saved yet" in err


@pytest.mark.slow
def test_end_to_end_on_a_real_image_folder(db: Path, tmp_path: Path) -> None:
    from gpuwise.train.toydata import make_images

    folder = make_images(tmp_path / "shapes", n=96, size=32)
    code, out, err = train("resnet18", "--data", str(folder), "--image-size", "32", "--batch-size", "16",
                           "--epochs", "3", "--workers", "0", "--db", str(db), "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["end_step"] == 3 * (96 // 16) and "ImageFolder" in result["data"]
    losses = result["losses"]
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3  # it learns the shapes


def test_a_step_too_big_for_this_machine_is_refused_before_allocating(db: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # Llama-2 7B's fp32 weights alone are 27 GB: the estimate refuses it in one line, nothing is built. The
    # machine is given 16 GiB free, so the refusal does not depend on the host's RAM.
    from gpuwise.hardware import local

    monkeypatch.setattr(local, "free_memory_bytes", lambda device: 16 * 2**30)
    code, _, err = run_cli("train", "llama-7b", "--seq-len", "64", "--batch-size", "1", "--steps", "1", "--db", str(db))
    assert code == 2 and "does not fit on the CPU even at batch 1" in err and "gpuwise plan" in err
    assert len(err.strip().splitlines()) == 1


def test_out_of_memory_in_a_step_is_one_line(tiny: str, db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gpuwise.train.step import AccumulatingStep

    def oom(self: object, batches: object) -> torch.Tensor:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(AccumulatingStep, "__call__", oom)
    code, _, err = run_cli("train", tiny, "--steps", "2", "--db", str(db))
    assert code == 2 and "does not fit on cpu at batch 4" in err and "--batch-size" in err


def test_loader_workers_stay_within_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from gpuwise.train.loop import default_workers

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    assert default_workers("synthetic", 1) == 0  # batches are made in the step
    assert default_workers("data/images", 1) == 4
    assert default_workers("data/images", 4) == 2  # 8 cores shared by 4 training processes
    assert default_workers("data/images", 16) == 0


# ------------------------------------------------------------------ issue 13: LLM training as people run it


def test_the_new_flags_reach_the_workers_and_the_checkpoint() -> None:
    from gpuwise.train.launch import worker_args

    c = config(grad_accum=4, activation_checkpointing="selective", compile=True, strategy=Strategy.FSDP)
    args = worker_args(c, Devices("cuda", 8))
    assert args[args.index("--grad-accum") + 1] == "4"
    assert args[args.index("--activation-checkpointing") + 1] == "selective" and "--compile" in args
    assert "--grad-accum" not in worker_args(config(), Devices("cuda", 8))  # defaults left out
    assert c.options() == {"activation_checkpointing": "selective", "compile": True, "fp8": False, "strategy": "fsdp",
                           "grad_accum": 4, "steps": None, "epochs": None, "checkpoint_every": None,
                           "keep_checkpoints": 3, "warmup": 3}
    assert "world_size" not in c.settings(shape={"seq_len": None, "image_size": 224}, batch_size=8)


@pytest.mark.parametrize("theirs, done, exact, start", [
    (2, 2, True, 1),  # 2 batches × 4 × 2 processes = 16 samples = 1 batch of 4 × 4 processes
    (4, 1, True, 2),  # 16 samples = 2 batches of 4 × 2 processes
    (2, 1, False, 0),  # 8 samples: half a batch of 4 × 4: continue from sample 0 in the new order
])
def test_the_data_position_carries_over_to_another_number_of_processes(theirs: int, done: int, exact: bool,
                                                                       start: int) -> None:
    from gpuwise.train.resume import position_on

    world = 4 if theirs == 2 else 2
    got, note = position_on(world, 4, theirs, {"step": done, "epoch": 0, "batch_in_epoch": done})
    assert got == start
    assert ("exactly where it stopped" in note) is exact
    assert ("continues with the new world size's order" in note) is not exact


def test_grad_accum_resume_is_exact(tiny: str, db: Path, tmp_path: Path) -> None:
    part, full = tmp_path / "part", tmp_path / "full"
    # 20 samples, batch 4, 2 micro batches a step: 2 steps per epoch (the fifth micro batch dropped).
    common = ("--synthetic-samples", "20", "--grad-accum", "2", "--db", str(db))
    code, out, err = train(tiny, "--steps", "5", "--checkpoint-dir", str(full), *common, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert (result["end_step"], result["epoch"], result["grad_accum"]) == (5, 2, 2)
    # predicted for the run's own settings (two micro batches, one update), and stored with them
    assert result["comparison"]["predicted_step_s"] is not None and result["comparison"]["stored_id"] is not None
    from gpuwise.store import open_store

    with open_store(db) as store:
        stored = next(r for r in store.results() if r.id == result["comparison"]["stored_id"])
    assert (stored.grad_accum, stored.activation_checkpointing, stored.compiled) == (2, "none", False)
    assert train(tiny, "--steps", "3", "--checkpoint-dir", str(part), *common)[0] == 0
    assert checkpoint.manifest(checkpoint.checkpoint_path(part, 3))["batch_in_epoch"] == 2  # micro batches
    code, out, err = train("--steps", "5", "--resume", str(part), "--db", str(db))  # grad_accum from the checkpoint
    assert code == 0, err
    assert "× 2 micro batches per step" in out
    resumed, uninterrupted = params(part), params(full)
    for name in uninterrupted:
        torch.testing.assert_close(resumed[name], uninterrupted[name], rtol=0, atol=0)
    one = tmp_path / "one"  # one micro batch a step trains another model: the comparison can fail
    code, _, err = train(tiny, "--steps", "5", "--synthetic-samples", "20", "--checkpoint-dir", str(one),
                         "--db", str(db))
    assert code == 0, err
    assert any(not torch.equal(params(one)[n], uninterrupted[n]) for n in uninterrupted)


def test_accumulated_gradients_are_the_mean_over_the_micro_batches() -> None:
    """Two micro batches of 2 give the gradient of one batch of 4 (mean loss), before the update."""
    from gpuwise.config import Precision
    from gpuwise.train.step import AccumulatingStep
    from tests.helpers import make_workload

    torch.manual_seed(0)
    x, y = torch.randn(4, 3), torch.randn(4, 1)
    w = make_workload(lambda: torch.nn.Linear(3, 1), lambda n: None,
                      lambda m, b: torch.nn.functional.mse_loss(m(b[0]), b[1]))  # type: ignore[index]
    grads = []
    for batches in ([(x, y)], [(x[:2], y[:2]), (x[2:], y[2:])]):
        model = torch.nn.Linear(3, 1)
        model.load_state_dict({"weight": torch.ones(1, 3), "bias": torch.zeros(1)})
        opt = torch.optim.SGD(model.parameters(), lr=0.0)
        step = AccumulatingStep(w, model, opt, Precision.FP32, "cpu", grad_accum=len(batches))
        loss = step(batches)
        assert model.weight.grad is not None
        grads.append((model.weight.grad.clone(), float(loss)))
    torch.testing.assert_close(grads[1][0], grads[0][0])
    assert grads[1][1] == pytest.approx(grads[0][1])


def test_activation_checkpointing_trains_the_same_model(tiny: str, db: Path, tmp_path: Path) -> None:
    """Recomputing the forward in backward (dropout's RNG replayed) changes memory, not the parameters."""
    for mode in ("none", "full", "selective"):
        code, out, err = train(tiny, "--steps", "4", "--activation-checkpointing", mode, "--checkpoint-dir",
                               str(tmp_path / mode), "--db", str(db), "--json")
        assert code == 0, err
        assert json.loads(out)["activation_checkpointing"] == mode
    plain = params(tmp_path / "none")
    for mode in ("full", "selective"):
        for name, value in params(tmp_path / mode).items():
            torch.testing.assert_close(value, plain[name])


@pytest.mark.slow
def test_compile_trains_the_same_model(tiny: str, db: Path, tmp_path: Path) -> None:
    from gpuwise.compiling import cannot_compile

    if cannot_compile("cpu"):
        pytest.skip(cannot_compile("cpu"))
    code, out, err = train(tiny, "--steps", "3", "--warmup", "1", "--compile", "--checkpoint-dir",
                           str(tmp_path / "c"), "--db", str(db), "--json")
    assert code == 0, err
    assert json.loads(out)["compiled"]
    code, _, err = train(tiny, "--steps", "3", "--warmup", "1", "--checkpoint-dir", str(tmp_path / "e"),
                         "--db", str(db))
    assert code == 0, err
    eager = params(tmp_path / "e")
    for name, value in params(tmp_path / "c").items():
        torch.testing.assert_close(value, eager[name], rtol=1e-4, atol=1e-5)


ONE_BLOCK = textwrap.dedent('''
    import torch
    from torch import nn
    from gpuwise.workloads.user import UserWorkload

    def build():
        return UserWorkload(model=nn.Sequential(nn.Linear(8, 2)),
                            make_batch=lambda n: (torch.randn(n, 8), torch.randint(0, 2, (n,))),
                            loss=lambda m, b: nn.functional.cross_entropy(m(b[0]), b[1]), default_batch_size=4)
''')


def test_the_new_flags_refuse_bad_input_in_one_line(tiny: str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    one_block = tmp_path / "one_block.py"
    one_block.write_text(ONE_BLOCK)
    cases = [
        ([tiny, "--grad-accum", "0"], "--grad-accum must be a positive integer, got 0"),
        ([tiny, "--grad-accum", "two"], "--grad-accum must be a positive integer, got 'two'"),
        ([tiny, "--activation-checkpointing", "most"], "use --activation-checkpointing none | selective | full"),
        ([f"{one_block}:build", "--activation-checkpointing", "full"], "has no blocks to recompute"),
        ([f"{one_block}:build", "--devices", "cpu:2", "--activation-checkpointing", "full"],
         "has no blocks to recompute"),
        ([tiny, "--strategy", "fsdp"], "FSDP shards over several processes: use --devices cpu:N with N >= 2, "
                                       "or --strategy ddp"),
        ([tiny, "--grad-accum", "8", "--synthetic-samples", "20"], "fewer than one step of batch 4 × --grad-accum 8"),
    ]
    for args, message in cases:
        code, out, err = train(*args, "--steps", "2")
        assert code == 2, (args, out + err)
        assert message in err and err.count("\n") == 1 and "Traceback" not in err, (args, err)
    monkeypatch.setenv("CXX", "/no/such/compiler")
    code, _, err = train(tiny, "--steps", "2", "--compile")
    assert code == 2 and err.count("\n") == 1
    assert "--compile: torch.compile on the CPU needs a C++ compiler and none was found (/no/such/compiler)" in err


def test_fsdp_bf16_uses_the_mixed_precision_policy_instead_of_autocast() -> None:
    from gpuwise.config import Precision
    from gpuwise.train.distributed import Ranks
    from gpuwise.train.loop import fsdp_param_dtype

    two = Ranks(world_size=2)
    assert fsdp_param_dtype(config(precision="amp-bf16"), two, Strategy.FSDP) is torch.bfloat16
    assert fsdp_param_dtype(config(precision="amp-bf16"), two, Strategy.DDP) is None  # DDP keeps autocast
    assert fsdp_param_dtype(config(precision="amp-fp16"), two, Strategy.FSDP) is None  # fp16 keeps its scaler path
    assert fsdp_param_dtype(config(precision=Precision.AMP_BF16), Ranks(), Strategy.FSDP) is None
    with_norm = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8))
    assert fsdp_param_dtype(config(precision="amp-bf16"), two, Strategy.FSDP, with_norm) is None  # autocast
    assert fsdp_param_dtype(config(precision="amp-bf16"), two, Strategy.FSDP, with_norm[:1]) is torch.bfloat16
