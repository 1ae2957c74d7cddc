"""gpuwise train's per-step metrics (metrics.jsonl, TensorBoard events) and learning-rate schedule."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from gpuwise.train.metrics import FILE_NAME, read
from gpuwise.train.schedule import LRSchedule
from tests.helpers import run_cli


def test_warmup_then_each_schedule() -> None:
    warm = [LRSchedule(1.0, 4, "constant", 10).factor(s) for s in range(4)]
    assert warm == [0.25, 0.5, 0.75, 1.0]
    cosine = LRSchedule(2.0, 0, "cosine", 10)
    assert cosine.lr(0) == 2.0 and math.isclose(cosine.lr(5), 1.0) and cosine.lr(9) < 0.1
    linear = LRSchedule(1.0, 2, "linear", 12)
    assert linear.factor(2) == 1.0 and math.isclose(linear.factor(7), 0.5) and linear.factor(12) == 0.0
    assert LRSchedule(1.0, 0, "constant", 5).factor(4) == 1.0


def test_each_step_is_logged_with_the_scheduled_rate(tiny: str, db: Path, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    code, out, err = run_cli("train", tiny, "--steps", "10", "--synthetic-samples", "64", "--lr", "0.004",
                             "--warmup-steps", "3", "--lr-schedule", "cosine", "--weight-decay", "0.1",
                             "--log-dir", str(logs), "--db", str(db), "--json")
    assert code == 0, err
    result = json.loads(out)
    lines = read(logs / FILE_NAME)
    expected = LRSchedule(0.004, 3, "cosine", 10)
    assert [m["step"] for m in lines] == list(range(1, 11))
    assert [m["lr"] for m in lines] == pytest.approx([expected.lr(s) for s in range(10)])
    assert [m["loss"] for m in lines] == pytest.approx(result["losses"])
    assert all(m["samples_per_s"] > 0 and m["step_s"] > 0 and m["memory_bytes"] > 0 for m in lines)

    code, out, _ = run_cli("results", "--db", str(db), "--json")
    assert json.loads(out)[0]["log_path"] == str(logs / FILE_NAME)
    assert "logs" in run_cli("results", "--db", str(db))[1]


def test_tensorboard_gets_the_same_scalars(tiny: str, db: Path, tmp_path: Path) -> None:
    pytest.importorskip("tensorboard", reason="the tensorboard extra (pip install 'gpuwise[tensorboard]')")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logs = tmp_path / "tb"
    assert run_cli("train", tiny, "--steps", "4", "--synthetic-samples", "64", "--log-dir", str(logs),
                   "--db", str(db))[0] == 0
    events = EventAccumulator(str(logs))
    events.Reload()
    losses = [e.value for e in events.Scalars("train/loss")]
    assert losses == pytest.approx([m["loss"] for m in read(logs / FILE_NAME)], rel=1e-6)


def test_without_the_flags_the_rate_is_the_optimizers_and_the_header_says_so(tiny: str, db: Path,
                                                                            tmp_path: Path) -> None:
    run = tmp_path / "run"
    code, out, _ = run_cli("train", tiny, "--steps", "3", "--synthetic-samples", "64", "--checkpoint-dir", str(run),
                           "--db", str(db))
    assert code == 0
    assert "lr 0.001 (adamw's default) · constant schedule (default), 0 warm-up steps · weight decay 0.01 (default)" \
        in out
    assert {m["lr"] for m in read(run / FILE_NAME)} == {0.001}  # the checkpoint folder keeps the metrics


@pytest.mark.parametrize(("args", "message"), [
    (["--lr", "0"], "--lr must be a number above zero"),
    (["--lr", "fast"], "--lr must be a number, e.g. 3e-4, got 'fast'"),
    (["--lr-schedule", "step"], "unknown --lr-schedule 'step': use constant | cosine | linear"),
    (["--warmup-steps", "-2"], "--warmup-steps must be a whole number"),
    (["--weight-decay", "-0.1"], "--weight-decay must be a number of at least zero"),
])
def test_bad_schedule_flags_are_one_line(tiny: str, args: list[str], message: str) -> None:
    code, _, err = run_cli("train", tiny, "--steps", "1", *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_a_bare_resume_continues_the_schedule(tiny: str, db: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    schedule = ["--lr", "0.01", "--warmup-steps", "2", "--lr-schedule", "linear", "--weight-decay", "0.05"]
    assert run_cli("train", tiny, "--steps", "4", "--synthetic-samples", "64", *schedule, "--checkpoint-dir",
                   str(run), "--db", str(db))[0] == 0
    code, out, err = run_cli("train", "--resume", str(run), "--steps", "8", "--db", str(db))
    assert code == 0, err
    assert "lr 0.01 · linear schedule, 2 warm-up steps · weight decay 0.05" in out
    expected = LRSchedule(0.01, 2, "linear", 8)
    assert [m["lr"] for m in read(run / FILE_NAME)][4:] == pytest.approx([expected.lr(s) for s in range(4, 8)])
