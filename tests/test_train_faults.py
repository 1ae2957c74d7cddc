"""gpuwise train against the faults of issue 18's hostile sweep: resume restores the run, the checkpoint folder is
checked before any model is built, a full disk or a crafted checkpoint loses nothing, one line for every refusal."""

from __future__ import annotations

import contextlib
import hashlib
import json
import signal
import time
from pathlib import Path

import pytest
import torch

from gpuwise.train import checkpoint
from tests.helpers import TINY, run_cli, tmpfs


def train(*args: str) -> tuple[int, str, str]:
    return run_cli("train", *args)


def one_line_error(code: int, err: str, *expected: str) -> None:
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for text in expected:
        assert text in err, err


# ------------------------------------------------------------------ 1. resume restores the run


def test_a_bare_resume_keeps_the_steps_and_the_checkpoint_interval(tiny: str, db: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    common = ("--synthetic-samples", "40", "--db", str(db))  # 10 steps per epoch
    assert train(tiny, "--steps", "14", "--checkpoint-every", "2", "--keep-checkpoints", "20",
                 "--checkpoint-dir", str(run), *common)[0] == 0
    for step in range(6, 15, 2):  # as if stopped after step 4
        path = checkpoint.checkpoint_path(run, step)
        path.unlink()
        path.with_suffix(".json").unlink()
    code, out, err = train("--resume", str(run), "--db", str(db), "--json")
    assert code == 0, err
    result = json.loads(out)
    assert (result["start_step"], result["end_step"], result["total_steps"]) == (4, 14, 14)  # not one epoch
    assert checkpoint.steps_in(run) == [2, 4, 6, 8, 10, 12, 14]  # every 2 steps after the resume too


def test_the_length_given_on_resume_replaces_the_checkpoints(tiny: str, db: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert train(tiny, "--steps", "2", "--synthetic-samples", "40", "--checkpoint-dir", str(run),
                 "--db", str(db))[0] == 0
    code, out, err = train("--resume", str(run), "--epochs", "1", "--db", str(db), "--json")
    assert code == 0, err
    assert json.loads(out)["end_step"] == 10


# ------------------------------------------------------------------ 2. the checkpoint folder, checked first


def test_a_checkpoint_dir_that_is_a_file_is_refused_before_training(tiny: str, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    code, out, err = train(tiny, "--steps", "2", "--checkpoint-dir", str(tmp_path / "file"))
    one_line_error(code, err, "is a file, not a folder")
    assert "trained" not in out
    code, _, err = train(tiny, "--steps", "2", "--checkpoint-dir", str(tmp_path / "file" / "sub"))
    one_line_error(code, err, "is a file, not a folder")


def test_a_read_only_or_full_checkpoint_dir_is_refused_before_training(tiny: str, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", "1m", "ro") as ro:
        code, out, err = train(tiny, "--steps", "2", "--checkpoint-dir", str(ro / "run"))
        one_line_error(code, err, "cannot write in", "Read-only file system")
        assert "trained" not in out
    with tmpfs(tmp_path / "full", "512k") as full:
        with contextlib.suppress(OSError):
            (full / "filler").write_bytes(b"\0" * (1 << 20))
        code, _, err = train(tiny, "--steps", "2", "--checkpoint-dir", str(full / "run"))
        one_line_error(code, err, "no space left on device")
        assert not (full / "run").exists()


# ------------------------------------------------------------------ 3. a full disk while saving

BIG = TINY.replace("nn.Linear(16, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 4)",
                   "nn.Linear(16, 4096), nn.ReLU(), nn.Dropout(0.3), nn.Linear(4096, 4)")  # ~1 MB a checkpoint


def test_a_full_disk_while_saving_keeps_the_previous_checkpoint(db: Path, tmp_path: Path) -> None:
    (tmp_path / "big.py").write_text(BIG)
    with tmpfs(tmp_path / "disk", "1600k") as disk:
        run = disk / "run"
        code, _, err = train(f"{tmp_path / 'big.py'}:build", "--steps", "6", "--checkpoint-every", "1",
                             "--checkpoint-dir", str(run), "--db", str(db))
        one_line_error(code, err, "no space left on device", "is intact", f"--resume {run}")
        found = checkpoint.find(run)
        assert found is not None and found.step >= 1 and not found.skipped  # the last good one, whole
        assert not [p.name for p in run.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_a_short_write_is_told_as_a_full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """torch reports the OSError of a short write as RuntimeError('... unexpected pos'): the cause is found."""
    checkpoint.save(tmp_path, 1, {"format": checkpoint.FORMAT, "w": torch.zeros(4)}, keep=3)

    def full(*args: object, **kwargs: object) -> None:
        try:
            raise OSError(28, "No space left on device")
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 768 vs 662") from None

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(checkpoint.GpuwiseError, match=r"no space left on device.*step-000000001\.pt is intact"):
        checkpoint.save(tmp_path, 2, {"format": checkpoint.FORMAT}, keep=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-000000001.json", "step-000000001.pt"]


def test_a_short_write_gathered_from_another_rank_is_a_full_disk() -> None:
    """DCP pickles each rank's error to gather it, which drops the OSError a short write came from: the
    RuntimeError torch raised for it, alone, is still read as a full disk; another error is not."""
    from torch.distributed.checkpoint.api import CheckpointException, _wrap_exception

    short = RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")
    assert checkpoint._disk_full(CheckpointException("save", {1: _wrap_exception(short)}))
    other = RuntimeError("CUDA error: an illegal memory access was encountered")
    assert not checkpoint._disk_full(CheckpointException("save", {0: _wrap_exception(other)}))


# ------------------------------------------------------------------ 4. one run per folder


def test_a_folder_with_another_runs_checkpoints_is_refused(tiny: str, db: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert train(tiny, "--steps", "2", "--checkpoint-dir", str(run), "--db", str(db))[0] == 0
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    code, _, err = train(tiny, "--steps", "3", "--seed", "1", "--checkpoint-dir", str(run), "--db", str(db))
    one_line_error(code, err, "holds the checkpoints of another run", "up to step 2", f"--resume {run}")
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before  # nothing overwritten
    other = tmp_path / "other"
    assert train(tiny, "--steps", "1", "--checkpoint-dir", str(other), "--db", str(db))[0] == 0
    code, _, err = train("--resume", str(run), "--steps", "3", "--checkpoint-dir", str(other), "--db", str(db))
    one_line_error(code, err, f"--checkpoint-dir {other} holds the checkpoints of another run")


# ------------------------------------------------------------------ 5, 6. checkpoints that cannot be trusted

def _craft(path: Path) -> None:
    """Replace a checkpoint by a pickle weights_only refuses, and vouch for its bytes in the manifest."""
    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (print, ("pwned",))

    torch.save({"format": checkpoint.FORMAT, "x": Payload()}, path)
    record = json.loads(path.with_suffix(".json").read_text())
    record.update(bytes=path.stat().st_size, sha256=hashlib.sha256(path.read_bytes()).hexdigest())
    path.with_suffix(".json").write_text(json.dumps(record))


def test_a_checkpoint_torch_will_not_load_is_passed_over(tiny: str, db: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert train(tiny, "--steps", "4", "--checkpoint-every", "2", "--checkpoint-dir", str(run),
                 "--db", str(db))[0] == 0
    _craft(checkpoint.checkpoint_path(run, 4))
    found = checkpoint.find(run)
    assert found is not None and found.step == 2
    assert "step-000000004.pt: torch will not load it safely" in found.skipped[0]
    code, out, err = train("--resume", str(run), "--steps", "6", "--db", str(db))
    assert code == 0, err
    assert "(step 2)" in out and "skipped newer checkpoint step-000000004.pt: torch will not load it safely" in out


def test_checkpoints_without_manifests_say_what_manifests_are(tiny: str, db: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert train(tiny, "--steps", "2", "--checkpoint-dir", str(run), "--db", str(db))[0] == 0
    for manifest in run.glob("*.json"):
        manifest.unlink()
    code, _, err = train("--resume", str(run), "--steps", "4", "--db", str(db))
    one_line_error(code, err, "have no manifests", "sha256", "copy the .json files")


# ------------------------------------------------------------------ 7, 8. nothing to train, another plan


def test_resume_past_the_target_does_nothing(tiny: str, db: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert train(tiny, "--steps", "4", "--checkpoint-dir", str(run), "--db", str(db))[0] == 0
    before = sorted(p.name for p in run.iterdir())
    code, out, err = train("--resume", str(run), "--steps", "2", "--db", str(db))
    one_line_error(code, err, "at step 4, already at or past the target (--steps 2)")
    assert "trained" not in out and sorted(p.name for p in run.iterdir()) == before


def test_a_plan_for_another_workload_is_refused(tiny: str, db: Path) -> None:
    (db.parent / "last-plan.json").write_text(json.dumps({
        "workload": "resnet50", "batch_size": 256, "precision": "fp32", "optimizer": "adamw", "seq_len": None,
        "image_size": None, "epochs": 1, "samples_per_epoch": 1000, "device": "cpu", "label": "your CPU",
        "num_gpus": 1, "num_nodes": 1, "strategy": "DDP",
    }))
    code, _, err = train(tiny, "--plan", "--db", str(db))
    one_line_error(code, err, "the saved plan is for workload resnet50", "gpuwise plan")


# ------------------------------------------------------------------ 9. corrupt images in loader workers


def test_a_corrupt_image_is_one_line_with_loader_workers(db: Path, tmp_path: Path) -> None:
    from gpuwise.train.toydata import make_images

    folder = make_images(tmp_path / "shapes", n=16, size=32)
    bad = sorted(folder.glob("*/*.png"))[3]
    bad.write_bytes(b"not a png at all")
    lines = set()
    for workers in ("0", "2"):
        code, _, err = train("resnet18", "--data", str(folder), "--image-size", "32", "--batch-size", "8",
                             "--steps", "2", "--workers", workers, "--db", str(db))
        one_line_error(code, err, f"cannot read image {bad}")
        lines.add(err)
    assert len(lines) == 1  # the same line with workers as without


# ------------------------------------------------------------------ 14. seeds


def test_seeds_are_bounded_and_the_largest_trains(tiny: str, db: Path) -> None:
    for bad in ("99999999999999999999", str(2**63), "-1"):
        code, _, err = train(tiny, "--seed", bad, "--dry-run")
        one_line_error(code, err, "--seed")
    code, _, err = train(tiny, "--seed", str(2**63 - 1), "--steps", "1", "--db", str(db))
    assert code == 0, err


# ------------------------------------------------------------------ 4, continued: two runs at the same time


def test_a_second_run_into_a_folder_being_written_is_refused(tiny: str, db: Path, tmp_path: Path) -> None:
    from tests.helpers import finish, gpuwise

    run = tmp_path / "run"
    first = gpuwise("train", tiny, "--steps", "30", "--checkpoint-dir", str(run), "--db", str(db),
                    env={"GPUWISE_TEST_STEP_SLEEP_S": "0.1"})
    try:
        deadline = time.monotonic() + 120
        while not (run / checkpoint.LOCK_NAME).exists():  # the first run holds the folder, no checkpoint yet
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.05)
        code, _, err = train(tiny, "--steps", "3", "--checkpoint-dir", str(run), "--db", str(db))
        one_line_error(code, err, "is being written by another run now")
    finally:
        first.send_signal(signal.SIGTERM)
        finish(first)
    assert checkpoint.find(run) is not None and not (run / checkpoint.LOCK_NAME).exists()  # saved, and released


@pytest.mark.slow
def test_a_full_disk_while_fsdp_saves_its_shards_is_one_line_and_keeps_the_previous(db: Path, tmp_path: Path) -> None:
    """Sharded checkpoints (FSDP, each rank its shards through DCP): a full disk on any rank is one line on
    every rank, none left waiting at a barrier, the temporary folder removed, the last good one intact."""
    (tmp_path / "big.py").write_text(BIG)
    with tmpfs(tmp_path / "disk", "2400k") as disk:
        run = disk / "run"
        code, _, err = train(f"{tmp_path / 'big.py'}:build", "--devices", "cpu:2", "--strategy", "fsdp", "--steps", "6",
                             "--checkpoint-every", "1", "--checkpoint-dir", str(run), "--db", str(db))
        one_line_error(code, err, "no space left on device", "is intact", f"--resume {run}")
        found = checkpoint.find(run)
        assert found is not None and found.step >= 1 and found.path.suffix == ".dcp" and not found.skipped
        assert not [p.name for p in run.iterdir() if p.name.startswith(".")]  # no temporary folder left
