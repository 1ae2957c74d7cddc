"""plan/predict: invariants that survive formatting (cost = time × price × GPUs, the front is
non-dominated, unfit options are never recommended), the selection rules, and the CLI's one-line errors.

The CPU's ceilings are a fixed record (no calibration), its RAM a fixed size, and the catalog the
shipped one plus test GPUs, so every number here is arithmetic on resnet18 / the example model.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

import gpuwise.plan as plan_module
from gpuwise.errors import GpuwiseError
from gpuwise.hardware.catalog import PACKAGED_LABEL, Catalog, parse_catalog_text
from gpuwise.plan import (
    CPU_ENOUGH_S,
    TIE,
    Option,
    Plan,
    PlanConfig,
    PredictConfig,
    ProfileCache,
    pareto_front,
    plan,
    predict,
    recommend,
)
from gpuwise.predict import memory
from gpuwise.profile import Profile
from gpuwise.units import HOUR_S, parse_duration, parse_money, parse_positive, step_time
from tests.helpers import CEILINGS, RAM_BYTES, run_cli, stored_result

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = str(ROOT / "examples" / "my_model.py") + ":build"
# resnet18 with AdamW: 178 MiB of weights + gradients + optimizer state, ~21 MiB per sample more.
# "Tiny" cannot hold that state beside the CUDA context (0.6 GiB), so it needs FSDP (which also holds the
# largest block, layer4, gathered whole: 8.4M parameters, so only 8 ranks fit at all); "Small"
# holds the state but not batch 16.
TEST_GPUS = """
[Tiny]
vendor = "test"
memory_gb = 0.78
memory_bandwidth_gbps = 100
fp32_tflops = 5
nvlink_gbps = 100
price_usd_per_hour = 0.10

[Small]
vendor = "test"
memory_gb = 1.0
memory_bandwidth_gbps = 200
fp32_tflops = 10
pcie_gen = 4
price_usd_per_hour = 0.20
"""
GPUS = ("T4", "L4", "RTX-4090", "H100-SXM5-80GB", "Tiny", "Small")
MakePlan = Callable[..., Plan]


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    text = resources.files("gpuwise.hardware").joinpath("data", "gpus.toml").read_text(encoding="utf-8")
    return parse_catalog_text(TEST_GPUS, "test", base=parse_catalog_text(text, PACKAGED_LABEL))


@pytest.fixture(scope="module")
def profiles() -> ProfileCache:
    return ProfileCache()  # shared by the module: each batch is profiled once


@pytest.fixture(autouse=True)
def fixed_cpu(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(plan_module, "cached_ceilings", lambda device, store_path=None, **kw: CEILINGS)
    monkeypatch.setattr(plan_module, "_ram_bytes", lambda: RAM_BYTES)
    yield


@pytest.fixture
def make_plan(catalog: Catalog, profiles: ProfileCache, tmp_path: Path) -> MakePlan:
    def make(**overrides: Any) -> Plan:
        # fp32 and a batch per GPU: the numbers here were worked out for them (precision auto and the global batch,
        # the defaults since, are tested in test_defaults.py)
        settings: dict[str, Any] = dict(workload="resnet18", dataset_size=1e6, epochs=10, batch_size=16, gpus=GPUS,
                                        precision="fp32")
        settings.update(overrides)
        return plan(PlanConfig.of(**settings), catalog, tmp_path / "results.db", profiles=profiles)

    return make


def fitting(p: Plan) -> list[Option]:
    return [o for o in p.options if o.run is not None]


def total(o: Option) -> float:
    assert o.run is not None
    return o.run.total_s


def cost(o: Option) -> float:
    assert o.run is not None and o.run.cost_usd is not None
    return o.run.cost_usd


# ------------------------------------------------------------------ invariants


def test_cost_is_total_hours_times_gpus_times_price(make_plan: MakePlan) -> None:
    p = make_plan()
    priced = [o for o in fitting(p) if o.is_gpu and o.price_usd_per_hour is not None]
    assert len(priced) > 10
    for o in priced:
        assert o.run is not None and o.price_usd_per_hour is not None
        assert cost(o) == pytest.approx(o.run.total_s / 3600 * o.num_gpus * o.price_usd_per_hour, rel=1e-12)
        assert o.run.total_s == pytest.approx(o.run.total_steps * o.step.step_s if o.step else 0, rel=1e-12)
        assert o.run.steps_per_epoch == math.ceil(1e6 / (o.batch_size * o.num_gpus))
        assert o.run.total_low_s < o.run.total_s < o.run.total_high_s
    cpu = next(o for o in p.options if not o.is_gpu)
    assert cpu.run is not None and cpu.run.cost_usd == 0.0


def test_more_gpus_never_increase_the_per_step_compute(make_plan: MakePlan) -> None:
    p = make_plan()
    for gpu in GPUS:
        same = sorted((o for o in fitting(p) if o.device == gpu), key=lambda o: o.num_gpus)
        assert same, gpu
        for a, b in itertools.pairwise(same):
            assert b.step is not None and a.step is not None and a.run is not None and b.run is not None
            if a.batch_size == b.batch_size:
                assert b.step.compute_s <= a.step.compute_s * (1 + 1e-9), (a.label, b.label)
            assert b.run.steps_per_epoch <= a.run.steps_per_epoch


def test_options_that_do_not_fit_are_flagged_and_never_recommended(make_plan: MakePlan) -> None:
    p = make_plan(budget_usd=1000.0)
    tiny_one = next(o for o in p.options if o.device == "Tiny" and o.num_gpus == 1)
    assert not tiny_one.fits and tiny_one.bound == "VRAM" and tiny_one.step is None and tiny_one.run is None
    assert tiny_one.memory_per_gpu_bytes > tiny_one.capacity_bytes
    for o in p.options:
        assert o.fits == (o.run is not None)
        if o.fits:
            assert o.memory_per_gpu_bytes <= o.capacity_bytes
    assert all(o.fits for o in p.pareto)
    assert p.recommendation.option is not None and p.recommendation.option.fits
    # recommend() never picks an unfit option, even when it is the only one left
    assert recommend([tiny_one]).option is None


def test_a_smaller_batch_when_the_requested_one_does_not_fit(make_plan: MakePlan, profiles: ProfileCache) -> None:
    p = make_plan()
    small = next(o for o in p.options if o.device == "Small" and o.num_gpus == 1)
    assert small.fits and small.batch_reduced and small.strategy == "single"
    assert small.batch_size == memory.round_batch(small.batch_size)
    need = memory.device_bytes(p_at(profiles, 16), on_gpu=True)
    assert need > small.capacity_bytes >= small.memory_per_gpu_bytes
    h100 = next(o for o in p.options if o.device == "H100-SXM5-80GB" and o.num_gpus == 1)
    assert h100.batch_size == 16 and not h100.batch_reduced


def p_at(profiles: ProfileCache, batch: int) -> Profile:
    from gpuwise.config import OptimizerName, Precision
    from gpuwise.workloads import get_workload

    return profiles.get(get_workload("resnet18"), batch_size=batch, precision=Precision.FP32,
                        optimizer=OptimizerName.ADAMW, seq_len=None, image_size=None)


def test_fsdp_when_the_state_alone_exceeds_the_gpu(make_plan: MakePlan, profiles: ProfileCache) -> None:
    p = make_plan()
    state = memory.state_bytes(p_at(profiles, 16))
    tiny = sorted((o for o in p.options if o.device == "Tiny"), key=lambda o: o.num_gpus)
    assert state * (1 + memory.ALLOCATOR_OVERHEAD) + memory.CUDA_CONTEXT_BYTES > tiny[0].capacity_bytes
    sharded = [o for o in tiny if o.fits]
    assert sharded and all(o.strategy == "FSDP" for o in sharded)
    eight = next(o for o in tiny if o.num_gpus == 8)
    assert eight.fits and eight.step is not None and eight.step.communication_s > 0
    per_rank = [o.memory_per_gpu_bytes for o in sharded if o.batch_size == eight.batch_size]
    assert per_rank == sorted(per_rank, reverse=True)  # more ranks, smaller shards


def test_the_pareto_front_is_non_dominated_and_has_both_ends(make_plan: MakePlan) -> None:
    p = make_plan()
    front = p.pareto
    priced = [o for o in fitting(p) if o.run is not None and o.run.cost_usd is not None]
    assert len(front) >= 2

    def dominates(a: Option, b: Option) -> bool:
        return total(a) <= total(b) and cost(a) <= cost(b) and (total(a) < total(b) or cost(a) < cost(b))

    for a in front:
        assert not any(dominates(b, a) for b in priced), a.label
    for o in priced:
        if o not in front:
            assert any(total(f) <= total(o) and cost(f) <= cost(o) for f in front), o.label
    assert min(total(o) for o in priced) == total(front[0])
    assert min(cost(o) for o in priced) == min(cost(o) for o in front)
    assert [total(o) for o in front] == sorted(total(o) for o in front)
    assert pareto_front(list(reversed(p.options))) == front


# ------------------------------------------------------------------ selection rules


def test_deadline_picks_the_cheapest_that_meets_it(make_plan: MakePlan) -> None:
    p = make_plan(deadline_s=2 * HOUR_S)
    r = p.recommendation
    assert r.met and r.option is not None and r.option.is_gpu
    assert total(r.option) <= 2 * HOUR_S
    meeting = [o for o in fitting(p) if o.run and o.run.cost_usd is not None and total(o) <= 2 * HOUR_S]
    assert cost(r.option) <= min(cost(o) for o in meeting) * (1 + TIE)
    assert "2.0 h deadline" in r.reason


def test_budget_picks_the_fastest_within_it(make_plan: MakePlan) -> None:
    p = make_plan(budget_usd=2.0)
    r = p.recommendation
    assert r.met and r.option is not None and cost(r.option) <= 2.0
    within = [o for o in fitting(p) if o.run and o.run.cost_usd is not None and cost(o) <= 2.0]
    assert total(r.option) <= min(total(o) for o in within) * (1 + TIE)
    assert "fastest option within the $2.00 budget" in r.reason


def test_deadline_and_budget_together(make_plan: MakePlan) -> None:
    p = make_plan(deadline_s=2 * HOUR_S, budget_usd=5.0)
    r = p.recommendation
    assert r.met and r.option is not None
    assert total(r.option) <= 2 * HOUR_S and cost(r.option) <= 5.0
    both = [o for o in fitting(p) if o.run and o.run.cost_usd is not None and total(o) <= 2 * HOUR_S
            and cost(o) <= 5.0]
    assert cost(r.option) <= min(cost(o) for o in both) * (1 + TIE)
    for other in r.also:  # the fastest within the budget, when it is another option
        assert cost(other) <= 5.0 and total(other) <= total(r.option)


def test_constraints_nothing_meets_name_the_closest_and_the_miss(make_plan: MakePlan) -> None:
    p = make_plan(deadline_s=1.0, budget_usd=0.01)
    r = p.recommendation
    assert not r.met and r.option is None
    assert r.headline.startswith("Nothing meets the 1 s deadline and the $0.01 budget. Closest:")
    assert {s.constraint for s in r.closest} == {"deadline", "budget"}
    for s in r.closest:
        assert s.option.fits and s.miss > 0
    # within the budget only the CPU ($0): it misses the deadline by the least of those
    in_budget = next(s for s in r.closest if s.constraint == "deadline" and not s.option.is_gpu)
    assert in_budget.miss == pytest.approx(total(in_budget.option) - 1.0)
    # nothing meets the deadline at any price: the fastest option is the nearest, over the budget too
    fastest = min(total(o) for o in fitting(p) if o.run and o.run.cost_usd is not None)
    over = next(s for s in r.closest if s.constraint == "budget")
    assert total(over.option) == fastest and over.miss == pytest.approx(cost(over.option) - 0.01)
    assert "past the deadline" in r.headline and "over the budget" in r.headline


def test_no_gpu_needed_for_a_tiny_workload(make_plan: MakePlan) -> None:
    p = make_plan(workload=EXAMPLE, dataset_size=2000, epochs=1, batch_size=None)
    r = p.recommendation
    assert r.met and r.option is not None and not r.option.is_gpu
    assert r.headline.startswith("No GPU needed: this finishes on your CPU in ")
    assert total(r.option) <= CPU_ENOUGH_S
    assert "at most 1.0 h" in r.reason
    # the same workload with 10,000× the data takes the CPU too long, and a GPU is recommended
    big = make_plan(workload=EXAMPLE, dataset_size=2e7, epochs=1, batch_size=None)
    assert big.recommendation.option is not None and big.recommendation.option.is_gpu


def test_nothing_fits_is_a_result_not_an_error(make_plan: MakePlan, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plan_module, "_ram_bytes", lambda: 100 * 2**20)
    p = make_plan(gpus=("Tiny",), max_gpus=1)
    assert [o.fits for o in p.options] == [False, False]
    r = p.recommendation
    assert not r.met and r.headline.startswith("Nothing fits") and r.closest
    assert all(s.constraint == "memory" and s.miss > 0 for s in r.closest)
    assert p.pareto == ()


def test_max_gpus_and_counts(make_plan: MakePlan) -> None:
    p = make_plan(gpus=("T4",), max_gpus=16)
    assert [o.num_gpus for o in p.options if o.is_gpu] == [1, 2, 4, 8, 16]
    sixteen = p.options[-1]
    assert sixteen.num_nodes == 2 and sixteen.step is not None and "network" in (sixteen.step.link or "")


def test_measured_and_extrapolated_provenance(make_plan: MakePlan, tmp_path: Path, catalog: Catalog) -> None:
    from gpuwise.store import open_store

    h100_name = catalog.get("H100-SXM5-80GB").device_names[0]
    with open_store(tmp_path / "results.db") as store:
        store.add(stored_result("cuda:0", h100_name, 0.050))
    p = make_plan()
    h100 = next(o for o in p.options if o.device == "H100-SXM5-80GB" and o.num_gpus == 1)
    assert h100.provenance == "measured here" and h100.step is not None
    assert h100.step.compute_s == pytest.approx(0.050) and h100.band == plan_module.BAND["measured"]
    l4 = next(o for o in p.options if o.device == "L4" and o.num_gpus == 1)
    assert l4.provenance == "extrapolated from a measurement on H100-SXM5-80GB" and l4.step is not None
    assert l4.step.compute_s == pytest.approx(0.050 * l4.step.model_compute_s / h100.step.model_compute_s)
    small = next(o for o in p.options if o.device == "Small" and o.num_gpus == 1)
    assert small.provenance == "analytical"  # measured at batch 16; Small runs a smaller batch


def test_tokens_unit_divides_by_the_sequence_length(make_plan: MakePlan) -> None:
    with pytest.raises(GpuwiseError, match=r"--unit token: workload 'resnet18' counts images, not tokens"):
        make_plan(unit="token")


def test_plan_is_json_ready(make_plan: MakePlan) -> None:
    data = json.loads(json.dumps(make_plan(deadline_s=HOUR_S).to_dict()))
    assert data["config"]["dataset_size"] == 1e6 and data["constants"]["band"] == plan_module.BAND
    # The config's nested step is written flat, as the flags are: workload, batch, precision... beside the rest.
    assert "step" not in data["config"] and data["config"]["precision"] == "fp32"
    assert data["config"]["workload"] == "resnet18" and "activation_checkpointing" in data["config"]["settings"]
    assert {"total_s", "cost_usd", "total_low_s"} <= set(data["recommendation"]["option"]["run"])


def test_predict_gives_one_option_in_full(catalog: Catalog, profiles: ProfileCache, tmp_path: Path) -> None:
    o = predict(PredictConfig.of(workload="resnet18", gpu="H100-SXM5-80GB", num_gpus=4, batch_size=16), catalog,
                tmp_path / "r.db", profiles=profiles)
    assert o.fits and o.step is not None and o.run is None and o.strategy == "DDP"
    assert o.step.sync_s > 0  # four GPUs wait for the slowest
    assert o.step.step_s == pytest.approx(o.step.compute_s + o.step.communication_s + o.step.sync_s)
    assert o.step.samples_per_s == pytest.approx(16 * 4 / o.step.step_s)
    assert o.step.link == "NVLink"


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"dataset_size": 0}, r"--dataset-size must be a number above zero"),
        ({"epochs": -1.0}, r"--epochs must be a number above zero"),
        ({"epochs": math.nan}, r"--epochs must be a number above zero"),
        ({"max_gpus": 0}, r"--max-gpus must be a positive integer, got 0"),
        ({"unit": "bytes"}, r"unknown unit 'bytes': use --unit sample \| token"),
        ({"deadline_s": 0.0}, r"--deadline must be a number above zero"),
    ],
)
def test_plan_config_rejects_bad_values(overrides: dict[str, Any], message: str) -> None:
    settings: dict[str, Any] = dict(workload="resnet18", dataset_size=1e6, epochs=1)
    with pytest.raises(GpuwiseError, match=message):
        PlanConfig.of(**{**settings, **overrides})


# ------------------------------------------------------------------ units


def test_parsing_durations_money_and_sizes() -> None:
    assert parse_duration("48h") == 48 * 3600
    assert parse_duration("90m") == 5400
    assert parse_duration("3600s") == 3600
    assert parse_duration("2d") == 2 * 86400
    assert parse_duration("1h30m") == 5400
    assert parse_money("$5,000") == 5000 and parse_money("5k") == 5000
    assert parse_positive("2e9", "--dataset-size") == 2e9
    assert parse_positive("1,281,167", "--dataset-size") == 1_281_167
    for bad in ("48", "h", "48x", "-1h", "0h", ""):
        with pytest.raises(GpuwiseError, match="--deadline"):
            parse_duration(bad)


def test_one_step_time_formatter_for_every_table() -> None:
    """plan's step column (minutes from 10 s), predict's breakdown and train's measured step (three decimals)."""
    assert step_time(0.0095) == "9.5 ms" and step_time(1.25) == "1.25 s" and step_time(12.0) == "12.00 s"
    assert step_time(1.2346, places=3) == "1.235 s"
    assert step_time(12.0, duration_from_s=10) == "12 s" and step_time(600.0, duration_from_s=10) == "10 min"


def test_round_batch_and_the_memory_line() -> None:
    assert [memory.round_batch(n) for n in (0, 1, 2, 3, 5, 7, 178, 200, 256)] == [0, 1, 2, 3, 4, 6, 128, 192, 256]
    line = memory.MemoryLine.through(8, 1000, 16, 1800)
    assert line.at(8) == 1000 and line.at(16) == 1800
    assert line.largest_batch(1400, upto=16) == 12 and line.largest_batch(100, upto=16) == 0


# ------------------------------------------------------------------ the command line

cli = run_cli


@pytest.mark.parametrize(
    "args, message",
    [
        (["--dataset-size", "0", "--epochs", "1"], r"--dataset-size must be a number of samples above zero"),
        (["--dataset-size", "lots", "--epochs", "1"], r"--dataset-size must be .*got 'lots'"),
        (["--dataset-size", "1e6", "--epochs", "-2"], r"--epochs must be a number of passes above zero"),
        (["--dataset-size", "1e6", "--epochs", "1", "--deadline", "2 weeks"], r"--deadline '2 weeks' is not a dur"),
        (["--dataset-size", "1e6", "--epochs", "1", "--budget", "cheap"], r"--budget must be an amount of US doll"),
        (["--dataset-size", "1e6", "--epochs", "1", "--gpus", "T5"], r"unknown GPU 'T5': did you mean T4"),
        (["--dataset-size", "1e6", "--epochs", "1", "--max-gpus", "0"], r"--max-gpus must be a positive integer"),
        (["--dataset-size", "1e6", "--epochs", "1", "--max-gpus", "two"], r"--max-gpus must be a positive integer"),
        (["--dataset-size", "1e6", "--epochs", "1", "--unit", "bytes"], r"unknown unit 'bytes'"),
    ],
)
def test_plan_cli_mistakes_are_one_line(args: list[str], message: str) -> None:
    import re

    code, out, err = cli("plan", "resnet18", *args)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpuwise: error: ")
    assert re.search(message, lines[0]), lines[0]


@pytest.mark.parametrize("value", ["0", "x", "-3"])
def test_predict_cli_rejects_a_bad_gpu_count(value: str) -> None:
    code, _, err = cli("predict", "resnet18", "--gpu", "T4", "--num-gpus", value)
    assert code == 2 and err.startswith("gpuwise: error: --num-gpus must be a positive integer")


def test_plan_cli_parses_2e9_and_prints_json(tmp_path: Path) -> None:
    code, out, _ = cli("plan", EXAMPLE, "--dataset-size", "2e9", "--epochs", "1", "--gpus", "T4,L4",
                       "--max-gpus", "2", "--db", str(tmp_path / "r.db"), "--json")
    assert code == 0
    data = json.loads(out)
    assert data["config"]["dataset_size"] == 2e9 and data["samples_per_epoch"] == 2e9
    assert [o["label"] for o in data["options"]] == ["your CPU (Test CPU)", "1× T4", "2× T4", "1× L4", "2× L4"]


def test_plan_cli_table_and_unmet_constraints_exit_2(tmp_path: Path) -> None:
    db = str(tmp_path / "r.db")
    code, out, err = cli("plan", EXAMPLE, "--dataset-size", "2000", "--epochs", "1", "--gpus", "T4", "--db", db,
                         "--all")
    assert code == 0 and "No GPU needed: this finishes on your CPU in" in out and "every option" in out
    code, out, err = cli("plan", EXAMPLE, "--dataset-size", "2e9", "--epochs", "1", "--gpus", "T4", "--max-gpus",
                         "1", "--deadline", "1m", "--db", db)
    assert code == 2
    assert err.strip().splitlines() == [err.strip()] and err.startswith("gpuwise: error: Nothing meets the 1 min")
    assert "past the deadline" in err


def test_predict_cli_shows_the_parts(tmp_path: Path) -> None:
    code, out, _ = cli("predict", "resnet18", "--gpu", "l4", "--num-gpus", "2", "--batch-size", "16",
                       "--db", str(tmp_path / "r.db"))
    assert code == 0
    for part in ("fits:", "ops bound by compute", "ops bound by memory bandwidth", "kernel launch latency",
                 "host dispatch", "exposed communication over PCIe", "throughput over 2 GPUs"):
        assert part in out


def test_the_whole_catalog_is_planned_from_the_profiles_already_made(make_plan: MakePlan,
                                                                    profiles: ProfileCache) -> None:
    """A second plan reuses every profile (its speed is benchmarks/plan_speed.py's job, not a unit test's)."""
    make_plan(gpus=None)  # profiles whatever batches the whole catalog needs
    made = len(profiles)
    p = make_plan(gpus=None)
    assert len(profiles) == made
    assert len(p.options) > 100


def test_a_measurement_stands_only_for_its_own_run_settings(make_plan: MakePlan, tmp_path: Path,
                                                            catalog: Catalog) -> None:
    from gpuwise.config import RunSettings
    from gpuwise.store import open_store

    h100_name = catalog.get("H100-SXM5-80GB").device_names[0]
    with open_store(tmp_path / "results.db") as store:
        store.add(stored_result("cuda:0", h100_name, 0.200, grad_accum=2, origin="train"))

    def h100(p: Plan) -> Option:
        return next(o for o in p.options if o.device == "H100-SXM5-80GB" and o.num_gpus == 1)

    assert h100(make_plan()).provenance == "analytical"  # two micro batches a step is not the plain step
    accumulated = h100(make_plan(settings=RunSettings(grad_accum=2)))
    assert accumulated.provenance == "measured here" and accumulated.step is not None
    assert accumulated.step.compute_s == pytest.approx(0.200) and accumulated.global_batch_size == 32
    assert h100(make_plan(settings=RunSettings(grad_accum=2, activation_checkpointing="full"))).provenance == (
        "analytical")


def test_band_keys_are_the_provenance_kinds() -> None:
    kinds = {k for k in plan_module.BAND if ":" not in k}
    assert kinds == {"measured", "extrapolated", "analytical", "analytical-cpu"}
    generations = {k.split(":", 1)[1] for k in plan_module.BAND if k.startswith("analytical:")}
    assert "unchecked" in generations and {"Volta", "Ampere", "Hopper"} <= generations
    assert all(0 < v < 1 for v in plan_module.BAND.values())


def test_an_analytical_band_is_its_generations(make_plan: MakePlan) -> None:
    p = make_plan()
    band = {o.device: o.band for o in p.options if o.is_gpu and o.fits and o.provenance_kind == "analytical"}
    assert band["H100-SXM5-80GB"] == plan_module.BAND["analytical:Hopper"]
    assert band["T4"] == plan_module.BAND["analytical:Turing"]  # FP32 rows on two GeForce/Titan cards check it
    assert not any(k.startswith("analytical:CDNA") for k in plan_module.BAND)  # AMD's: unchecked
    assert band["L4"] == plan_module.BAND["analytical:Ada"]
    text = plan_module.bands_text()
    hopper = plan_module.BAND["analytical:Hopper"]
    assert f"±{hopper:.0%} Hopper" in text and "±70% other generations" in text and "on your CPU ±30%" in text


def test_the_cpu_option_is_priced_on_the_cpus_own_profile(catalog: Catalog, profiles: ProfileCache,
                                                            tmp_path: Path) -> None:
    # A GPU runs GPT-2's attention as one fused kernel; the CPU runs it unfused (matmuls, softmax,
    # dropout, and their saved seq x seq matrices). The CPU option must be priced on what the CPU runs.
    from gpuwise.config import OptimizerName, Precision
    from gpuwise.predict.option import OptionMaker
    from gpuwise.predict.step import cpu_step
    from gpuwise.profile import ops
    from gpuwise.workloads import get_workload

    maker = OptionMaker(
        get_workload("gpt2"), batch_size=1, precision=Precision.FP32, optimizer=OptimizerName.SGD, seq_len=64,
        image_size=None, network_gbits=200.0, catalog=catalog, store_path=tmp_path / "r.db", profiles=profiles,
        bands=plan_module.BAND,
    )
    on_gpu, on_cpu = maker.profile(1), maker.profile(1, on_gpu=False)
    assert any(g.kind == ops.ATTENTION for g in on_gpu.ops)
    assert not any(g.kind == ops.ATTENTION for g in on_cpu.ops)
    option = maker.cpu_option(CEILINGS, RAM_BYTES)
    assert option.step is not None
    assert option.step.model_compute_s == pytest.approx(cpu_step(on_cpu, CEILINGS).step_s)
    assert option.step.model_compute_s != pytest.approx(cpu_step(on_gpu, CEILINGS).step_s)


def test_a_model_with_dropout_is_priced_on_the_cpus_own_dropout(catalog: Catalog, profiles: ProfileCache,
                                                                 tmp_path: Path) -> None:
    # No attention or recurrent layer, but a dropout: a GPU runs it as one native_dropout kernel, the
    # CPU as bernoulli_/div_/mul. The CPU option must be priced on the CPU's ops.
    import torch
    from torch import nn

    from gpuwise.config import OptimizerName, Precision
    from gpuwise.predict.option import OptionMaker
    from tests.helpers import make_workload

    w = make_workload(lambda: nn.Sequential(nn.Linear(64, 64), nn.Dropout(0.1)), lambda n: torch.randn(n, 64),
                      lambda m, x: m(x).sum(), name="dropout-mlp")
    maker = OptionMaker(
        w, batch_size=2, precision=Precision.FP32, optimizer=OptimizerName.SGD, seq_len=None, image_size=None,
        network_gbits=200.0, catalog=catalog, store_path=tmp_path / "r.db", profiles=profiles, bands=plan_module.BAND,
    )
    on_gpu, on_cpu = maker.profile(2), maker.profile(2, on_gpu=False)
    assert any(g.op == "aten.native_dropout.default" for g in on_gpu.ops)
    assert not any(g.op.startswith("aten.native_dropout") for g in on_cpu.ops)
    assert any("bernoulli" in g.op for g in on_cpu.ops)
