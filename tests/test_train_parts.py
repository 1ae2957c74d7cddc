"""The named parts of the training loop, each on its own: where a resumed run continues, the batches of an
epoch, restoring a checkpoint, and the parameter digests that tell whether ranks (and runs) agree."""

from __future__ import annotations

import random
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from gpuwise.config import Strategy
from gpuwise.train import checkpoint
from gpuwise.train.distributed import Ranks
from gpuwise.train.loop import epoch_batches, parameter_digests
from gpuwise.train.resume import next_epoch, restore, resume_position, seed_everything

ONE = Ranks()


def _record(step: int, epoch: int, batch_in_epoch: int, world_size: int | None = 1) -> dict[str, object]:
    """A checkpoint manifest as ``checkpoint.save`` writes it (a run before world_size was recorded at the top
    has it in its settings)."""
    top = {"world_size": world_size} if world_size is not None else {}
    return {"step": step, "epoch": epoch, "batch_in_epoch": batch_in_epoch, **top, "settings": {"world_size": 2}}


def test_an_epoch_with_less_left_than_a_step_continues_at_the_next_epoch() -> None:
    assert next_epoch(0, 3, micro_per_epoch=5, grad_accum=2) == (0, 3)  # two micro batches left: one more step
    assert next_epoch(0, 4, micro_per_epoch=5, grad_accum=2) == (1, 0)  # one left: dropped, as the sampler does
    assert next_epoch(2, 5, micro_per_epoch=5, grad_accum=1) == (3, 0)


def test_a_resume_on_as_many_processes_continues_where_the_checkpoint_stopped() -> None:
    position, note, theirs = resume_position(_record(7, 1, 3), world_size=1, batch_size=4, micro_per_epoch=10,
                                             grad_accum=1)
    assert position == {"step": 7, "epoch": 1, "batch_in_epoch": 3} and note == "" and theirs == 1


def test_a_resume_of_a_finished_epoch_starts_the_next() -> None:
    position, _, _ = resume_position(_record(10, 0, 10), world_size=1, batch_size=4, micro_per_epoch=10,
                                     grad_accum=1)
    assert position == {"step": 10, "epoch": 1, "batch_in_epoch": 0}


def test_a_resume_on_other_processes_continues_the_same_samples() -> None:
    # 2 batches of 4 on each of 2 processes: 16 samples, which 4 processes reach after 1 batch each.
    position, note, theirs = resume_position(_record(2, 0, 2, world_size=2), world_size=4, batch_size=4,
                                             micro_per_epoch=10, grad_accum=1)
    assert position == {"step": 2, "epoch": 0, "batch_in_epoch": 1} and theirs == 2
    assert "exactly where it stopped" in note


def test_an_old_manifest_gives_its_world_size_in_the_settings() -> None:
    _, note, theirs = resume_position(_record(2, 0, 2, world_size=None), world_size=2, batch_size=4,
                                      micro_per_epoch=10, grad_accum=1)
    assert theirs == 2 and note == ""


def test_the_batches_of_a_resumed_epoch_are_the_rest_of_the_uninterrupted_ones() -> None:
    order = list(range(100, 123))  # 23 samples: 5 whole batches of 4, the rest dropped
    whole = epoch_batches(order, 4, micro_per_epoch=5, done_in_epoch=0)
    assert whole == [order[i:i + 4] for i in range(0, 20, 4)]
    assert epoch_batches(order, 4, micro_per_epoch=5, done_in_epoch=2) == whole[2:]
    assert epoch_batches(order, 4, micro_per_epoch=5, done_in_epoch=5) == []


def _model(seed: int) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    return model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


def test_parameter_digests_tell_models_apart_and_ignore_buffers() -> None:
    a, opt_a = _model(0)
    b, opt_b = _model(0)
    (digest,) = parameter_digests(a, opt_a, ONE, Strategy.DDP)
    assert parameter_digests(b, opt_b, ONE, Strategy.DDP) == (digest,)
    b[1].running_mean += 1.0  # DDP leaves each rank its own BatchNorm statistics: not a disagreement
    assert parameter_digests(b, opt_b, ONE, Strategy.DDP) == (digest,)
    with torch.no_grad():
        b[0].weight[0, 0] += 1e-3
    assert parameter_digests(b, opt_b, ONE, Strategy.DDP) != (digest,)


def _saved(folder: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, step: int) -> Path:
    """A one-process checkpoint as the loop writes it, taken after a step drew from the RNGs."""
    state = {"format": checkpoint.FORMAT, "step": step, "epoch": 0, "batch_in_epoch": step, "settings": {},
             "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scaler": None,
             "rng": [checkpoint.rng_state()]}
    return checkpoint.save(folder, step, state, keep=2, info={"step": step, "epoch": 0, "batch_in_epoch": step})


def _train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    model(torch.randn(8, 4)).pow(2).mean().backward()
    optimizer.step()
    optimizer.zero_grad()


@pytest.mark.parametrize("their_world_size", [1, 2])
def test_restore_brings_back_the_model_optimizer_and_rng_streams(tmp_path: Path, their_world_size: int) -> None:
    model, optimizer = _model(0)
    _train_step(model, optimizer)
    path = _saved(tmp_path, model, optimizer, step=1)
    expected_draw = torch.rand(3)  # what the run draws next, had it gone on
    (digest,) = parameter_digests(model, optimizer, ONE, Strategy.DDP)

    fresh, fresh_optimizer = _model(1)
    random.seed(99)
    restore(path, fresh, fresh_optimizer, SimpleNamespace(scaler=None), ONE, Strategy.DDP,  # type: ignore[arg-type]
            seed=5, step=1, their_world_size=their_world_size)
    assert parameter_digests(fresh, fresh_optimizer, ONE, Strategy.DDP) == (digest,)
    assert fresh_optimizer.state_dict()["state"][0]["momentum_buffer"].equal(
        optimizer.state_dict()["state"][0]["momentum_buffer"])
    draw = torch.rand(3)
    if their_world_size == 1:  # the same processes: this rank's stream continues
        assert draw.equal(expected_draw)
    else:  # other processes: every rank starts anew from (seed, step, rank), the same each time
        seed_everything((5 * 1_000_003 + 1 * 1_009 + 0) % 2**63)
        assert draw.equal(torch.rand(3)) and not draw.equal(expected_draw)
