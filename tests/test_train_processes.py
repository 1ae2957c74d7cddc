"""gpuwise train as real processes: DDP and FSDP through torchrun with gloo, kill -9, SIGTERM, torn checkpoints."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import torch

from gpuwise.train import checkpoint
from gpuwise.train.distributed import parameter_digest
from tests.helpers import descendants, finish, gpuwise, params, run_cli, wait_for_checkpoint, wait_for_steps


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_two_cpu_processes_through_torchrun_end_identical(strategy: str, tiny: str, db: Path,
                                                          tmp_path: Path) -> None:
    out_dir = tmp_path / strategy
    code, out, err = finish(gpuwise(
        "train", tiny, "--devices", "cpu:2", "--strategy", strategy, "--steps", "6", "--synthetic-samples", "40",
        "--checkpoint-dir", str(out_dir), "--db", str(db), "--json"))
    assert code == 0, err[-3000:]
    result = json.loads(out)
    assert (result["world_size"], result["strategy"], result["end_step"]) == (2, strategy.upper(), 6)
    saved = parameter_digest(params(out_dir))
    if strategy == "ddp":
        assert len(result["parameter_digests"]) == 2 and result["ranks_agree"]  # each rank's own parameters
    assert result["parameter_digests"][0] == saved  # what rank 0 wrote is what the ranks hold
    assert result["comparison"]["provenance"] == "no prediction: plan does not model 2 CPU processes"


def test_ddp_and_fsdp_train_the_same_model(tiny: str, db: Path, tmp_path: Path) -> None:
    """Same seed, same shards, averaged gradients: the two strategies reach the same parameters."""
    for strategy in ("ddp", "fsdp"):
        code, _, err = finish(gpuwise(
            "train", tiny, "--devices", "cpu:2", "--strategy", strategy, "--steps", "4", "--synthetic-samples", "40",
            "--checkpoint-dir", str(tmp_path / strategy), "--db", str(db), "--json"))
        assert code == 0, err[-3000:]
    ddp, fsdp = params(tmp_path / "ddp"), params(tmp_path / "fsdp")
    assert ddp.keys() == fsdp.keys()
    for name in ddp:
        torch.testing.assert_close(fsdp[name], ddp[name])


def test_kill_9_then_resume_loses_only_the_steps_since_the_checkpoint(tiny: str, db: Path,
                                                                     tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    run, log = tmp_path / "run", tmp_path / "steps.log"
    every, total = 2, 16
    common = ["--steps", str(total), "--synthetic-samples", "24", "--db", str(db)]
    process = gpuwise("train", tiny, *common, "--checkpoint-dir", str(run), "--checkpoint-every", str(every),
                      env={"GPUWISE_TEST_STEP_LOG": str(log), "GPUWISE_TEST_STEP_SLEEP_S": "0.15"})
    saved = wait_for_checkpoint(run, process, min_step=2 * every)  # two checkpoints: one to fall back to
    wait_for_steps(log, process, saved + 1)  # and a step past it, so the kill loses work
    process.kill()  # SIGKILL: no handler runs
    process.communicate()
    done_before_kill = log.read_text().count("step")
    last = checkpoint.find(run)
    assert last is not None and last.step < total
    assert done_before_kill - last.step <= every + 1  # at most the steps since the last checkpoint (+ one in flight)

    # Tear the newest checkpoint: resume must notice and fall back to the one before.
    newest = checkpoint.checkpoint_path(run, last.step)
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    code, out, err = run_cli("train", "--resume", str(run), "--steps", str(total), "--db", str(db))
    assert code == 0, err
    assert f"(step {last.step - every})" in out
    assert f"skipped newer checkpoint {newest.name}: torn or corrupt" in out

    whole = tmp_path / "whole"
    assert run_cli("train", tiny, *common, "--checkpoint-dir", str(whole))[0] == 0
    resumed, uninterrupted = params(run), params(whole)
    for name in uninterrupted:
        torch.testing.assert_close(resumed[name], uninterrupted[name])


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_finishes_the_step_saves_and_exits(signum: int, code: int, tiny: str, db: Path,
                                                    tmp_path: Path) -> None:
    run = tmp_path / "run"
    process = gpuwise("train", tiny, "--steps", "400", "--checkpoint-dir", str(run), "--checkpoint-every", "1",
                      "--db", str(db), env={"GPUWISE_TEST_STEP_SLEEP_S": "0.05"})
    wait_for_checkpoint(run, process)
    process.send_signal(signum)
    returncode, _, err = finish(process)
    assert returncode == code
    line = err.strip().splitlines()[-1]
    name = signal.Signals(signum).name
    assert line.startswith(f"gpuwise: stopped by {name} after step ") and "continue with --resume" in line
    stopped_at = int(line.split("after step ")[1].split(";")[0])
    found = checkpoint.find(run)
    assert found is not None and found.step == stopped_at < 400  # saved at the step it stopped


# ------------------------------------------------------------------ issue 13: sharded checkpoints, accumulation


def run_ok(*args: str, env: dict[str, str] | None = None) -> dict[str, object]:
    code, out, err = finish(gpuwise("train", *args, "--json", env=env))
    assert code == 0, err[-3000:]
    result: dict[str, object] = json.loads(out)
    return result


@pytest.mark.slow
def test_fsdp_writes_sharded_checkpoints_and_resumes_on_four_and_back_on_two(tiny: str, db: Path,
                                                                             tmp_path: Path) -> None:
    """DCP reshards: a checkpoint of 2 processes resumes on 4, and theirs on 2, each continuing the epoch
    at the sample where it stopped (the parameters are not compared: synthetic batches are made per
    batch, not per sample, so 4 processes' batches hold other numbers than 2 processes' would)."""
    common = ["--strategy", "fsdp", "--synthetic-samples", "40", "--db", str(db)]
    start = tmp_path / "start"
    run_ok(tiny, "--devices", "cpu:2", "--grad-accum", "2", "--steps", "1", "--checkpoint-dir", str(start), *common)
    found = checkpoint.find(start)
    assert found is not None and found.path.name == "step-000000001.dcp" and found.path.is_dir()
    files = sorted(p.name for p in found.path.iterdir())
    assert "rank-00000.pt" in files and "rank-00001.pt" in files and ".metadata" in files
    assert set(checkpoint.manifest(found.path)["files"]) == set(files)  # every file vouched for
    assert not list(start.glob("*.pt"))  # nothing gathered into one file

    on_four = tmp_path / "four"
    code, out, err = finish(gpuwise("train", "--resume", str(start), "--devices", "cpu:4", "--grad-accum", "1",
                                    "--steps", "3", "--checkpoint-dir", str(on_four), "--db", str(db)))
    assert code == 0, err[-3000:]
    assert "the checkpoint's 2 processes → 4 now; epoch 1 continues at sample 16" in out
    assert "trained steps 1 → 3 of 3" in out
    back = run_ok("--resume", str(on_four), "--devices", "cpu:2", "--steps", "4", "--checkpoint-dir",
                  str(tmp_path / "back"), "--db", str(db))
    assert (back["start_step"], back["end_step"], back["world_size"]) == (3, 4, 2)


@pytest.mark.slow
def test_fsdp_kill_9_mid_run_then_resume_is_exact(tiny: str, db: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    common = ["--devices", "cpu:2", "--strategy", "fsdp", "--steps", "40", "--grad-accum", "2",
              "--synthetic-samples", "48", "--db", str(db)]
    process = gpuwise("train", tiny, *common, "--checkpoint-dir", str(run), "--checkpoint-every", "2",
                      env={"GPUWISE_TEST_STEP_SLEEP_S": "0.1"})
    wait_for_checkpoint(run, process, min_step=4)  # two checkpoints: one to fall back to
    for pid in [process.pid, *descendants(process.pid)]:  # the launcher, torchrun and the workers (each in a
        os.kill(pid, signal.SIGKILL)                       # session of its own): no handler runs
    process.communicate()
    last = checkpoint.find(run)
    assert last is not None and last.step < 40
    shard = sorted(last.path.glob("__1_*.distcp"))[0]  # tear one rank's shard of the newest
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    code, out, err = finish(gpuwise("train", "--resume", str(run), "--steps", "40", "--devices", "cpu:2",
                                    "--db", str(db)))
    assert code == 0, err[-3000:]
    assert f"(step {last.step - 2})" in out and f"skipped newer checkpoint {last.path.name}: {shard.name}" in out
    whole = tmp_path / "whole"
    run_ok(tiny, *common, "--checkpoint-dir", str(whole))
    resumed, uninterrupted = params(run), params(whole)
    for name in uninterrupted:
        torch.testing.assert_close(resumed[name], uninterrupted[name], rtol=0, atol=0)


@pytest.mark.slow
def test_ddp_accumulates_without_sync_and_fsdp_runs_bf16(tiny: str, db: Path, tmp_path: Path) -> None:
    ddp = run_ok(tiny, "--devices", "cpu:2", "--grad-accum", "2", "--steps", "3", "--synthetic-samples", "40",
                 "--db", str(db))
    assert ddp["ranks_agree"] and ddp["grad_accum"] == 2
    bf16 = run_ok(tiny, "--devices", "cpu:2", "--strategy", "fsdp", "--precision", "amp-bf16", "--grad-accum", "2",
                  "--steps", "3", "--synthetic-samples", "40", "--checkpoint-dir", str(tmp_path / "bf16"),
                  "--db", str(db))
    losses = bf16["losses"]
    assert isinstance(losses, list) and all(loss == loss for loss in losses)  # finite, not NaN
    assert all(t.dtype == torch.float32 for t in params(tmp_path / "bf16").values())  # fp32 master weights


@pytest.mark.slow
def test_fsdp_bf16_trains_a_model_with_batch_norm(db: Path, tmp_path: Path) -> None:
    """FSDP2's bf16 parameter policy leaves batch norm's running statistics in fp32, which a bf16 batch norm
    refuses: such a model trains under autocast instead (the example CNN has three batch norms)."""
    from tests.helpers import ROOT

    cnn = f"{ROOT / 'examples' / 'my_model.py'}:build"
    result = run_ok(cnn, "--devices", "cpu:2", "--strategy", "fsdp", "--precision", "amp-bf16", "--steps", "2",
                    "--batch-size", "8", "--synthetic-samples", "64", "--warmup", "1", "--db", str(db))
    assert result["end_step"] == 2 and result["precision"] == "amp-bf16"
