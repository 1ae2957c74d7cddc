"""gpuwise train --max-restarts: a worker killed mid-run (kill -9) is restarted by torchrun and the run
resumes from the newest good checkpoint, ending with the parameters of an uninterrupted run."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch

from gpuwise.train.config import Devices
from gpuwise.train.launch import worker_devices
from tests.helpers import descendants, finish, gpuwise, params, run_cli, wait_for_checkpoint


def rank_of(pid: int) -> int | None:
    """The torchrun RANK in a process's environment, or None (not a worker, or gone)."""
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    for entry in env:
        if entry.startswith(b"RANK="):
            return int(entry[5:])
    return None


@pytest.mark.slow
def test_a_killed_worker_restarts_and_ends_like_an_uninterrupted_run(tiny: str, db: Path,
                                                                      tmp_path: Path) -> None:
    run, whole = tmp_path / "run", tmp_path / "whole"
    common = ["--devices", "cpu:2", "--steps", "16", "--synthetic-samples", "64", "--checkpoint-every", "2",
              "--lr-schedule", "cosine", "--warmup-steps", "3",
              "--db", str(db)]
    process = gpuwise("train", tiny, *common, "--checkpoint-dir", str(run), "--max-restarts", "1",
                      env={"GPUWISE_TEST_STEP_SLEEP_S": "0.1"})
    wait_for_checkpoint(run, process, min_step=4)
    (victim,) = [pid for pid in descendants(process.pid) if rank_of(pid) == 1]
    os.kill(victim, signal.SIGKILL)
    code, _, err = finish(process)
    assert code == 0, err[-3000:]
    assert "workers restarted (1 of --max-restarts): resuming from the newest good checkpoint" in err

    assert run_cli("train", tiny, *common, "--checkpoint-dir", str(whole))[0] == 0
    resumed, uninterrupted = params(run), params(whole)
    assert set(resumed) == set(uninterrupted)
    for name in uninterrupted:
        torch.testing.assert_close(resumed[name], uninterrupted[name])


def test_max_restarts_needs_several_processes(tiny: str) -> None:
    code, _, err = run_cli("train", tiny, "--devices", "cpu", "--max-restarts", "2", "--steps", "1")
    assert code == 2 and "--max-restarts restarts torchrun's workers" in err


def test_a_worker_on_gpus_takes_its_local_ranks_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """'--devices cuda' in a worker's command is one GPU per worker, not cuda:0 for all of them."""
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")
    assert worker_devices("cuda", num_gpus=8) == Devices("cuda", 8)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
    assert worker_devices("cuda", num_gpus=1) == Devices("cuda", 1, index=0)


def test_elastic_nodes_use_the_c10d_rendezvous() -> None:
    from gpuwise.train.config import TrainConfig
    from gpuwise.train.launch import Nodes, build_launch

    nodes = Nodes(count=4, min_count=2, master_addr="node0", master_port=29400)
    launch = build_launch(TrainConfig.of(workload="resnet50"), Devices("cuda", 8), nodes, python="py", max_restarts=3)
    argv = list(launch.argv)
    assert argv[3:10] == ["--nnodes=2:4", "--nproc-per-node=8", "--max-restarts=3", "--rdzv-backend=c10d",
                          "--rdzv-endpoint=node0:29400", "--rdzv-id=gpuwise-train", "-m"]
    assert not any(a.startswith("--node-rank") for a in argv)


def test_elastic_nodes_on_the_command_line() -> None:
    code, out, err = run_cli("train", "resnet50", "--nodes", "2:4", "--master-addr", "node0", "--devices", "8",
                             "--steps", "10", "--dry-run")
    assert code == 0, err
    assert "--nnodes=2:4" in out and "--rdzv-endpoint=node0:29500" in out
    for bad, message in (("3:2", "--nodes 3:2: give MIN:MAX with 1 <= MIN <= MAX"),
                         ("two", "--nodes must be a positive integer or MIN:MAX, got 'two'"),
                         ("0", "--nodes must be a positive integer, got 0")):
        code, _, err = run_cli("train", "resnet50", "--nodes", bad, "--master-addr", "h", "--dry-run")
        assert code == 2 and message in err, err
