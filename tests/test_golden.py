"""Golden files: the main CLI tables at fixed widths, compared line for line with tests/golden/*.txt.

What the tables show is the point of these tests (column choice, wrapping, footnotes), so a change to a table is
seen in review as a change to its golden file. Only output that is the same on any machine is compared: the local
machine's facts (its CPU's name and rates, its RAM, its GPUs) are pinned, and no command times anything.
Rewrite the files after an intended change with ``pytest tests/test_golden.py --update-golden``.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import run_cli

GOLDEN = Path(__file__).parent / "golden"
WIDTHS = (100, 80)
RAM_BYTES = 16 * 2**30

# name → the command's arguments; the same command is compared at each width in WIDTHS.
COMMANDS: dict[str, tuple[str, ...]] = {
    "workloads": ("workloads",),
    "gpus": ("gpus",),
    "predict": ("predict", "resnet18", "--gpu", "H100-SXM5-80GB", "--batch-size", "32", "--image-size", "64",
                "--precision", "amp-bf16"),
    "plan": ("plan", "resnet18", "--dataset-size", "100000", "--epochs", "2", "--image-size", "64",
             "--batch-size", "32", "--precision", "fp32", "--gpus", "H100-SXM5-80GB,A100-SXM4-80GB,L4",
             "--max-gpus", "2"),
}


@pytest.fixture
def pinned_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A results database whose CPU ceilings and cache are made up (no calibration, the same everywhere), and the
    local CPU, RAM and GPUs as these tests say: a 'Test CPU' with 16 GiB and no GPU."""
    from gpuwise import plan
    from gpuwise.bench import calibrate
    from gpuwise.bench.result import Ceilings
    from gpuwise.cli import gpus
    from gpuwise.hardware.local import LocalCPU, machine_key
    from gpuwise.store import open_store

    path = tmp_path / "results.db"
    # The cache too: left out, it would be read from this machine's sysfs (``calibrate.with_cache``).
    ceilings = Ceilings("cpu", "Test CPU", {"float32": 0.2, "bfloat16": 0.2, "float16": 0.1}, 10.0,
                        dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), cache_bytes=64 * 2**20)
    with open_store(path) as store:
        store.put_ceilings(ceilings, machine_key())
    monkeypatch.setattr(calibrate, "device_name", lambda device: "Test CPU")  # so the stored ceilings are this CPU's

    def no_calibration(device: str, **kw: object) -> Ceilings:
        raise AssertionError("a golden test must not calibrate: its timings would be this machine's")

    monkeypatch.setattr(calibrate, "calibrate", no_calibration)
    monkeypatch.setattr(plan, "_ram_bytes", lambda: RAM_BYTES)
    monkeypatch.setattr(gpus, "local_cpu_entry", lambda: LocalCPU("Test CPU", 4, 8, RAM_BYTES / 1e9))
    monkeypatch.setattr(gpus, "detect_gpus", lambda catalog: [])
    return path


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", list(COMMANDS))
def test_the_table_matches_its_golden_file(name: str, width: int, pinned_machine: Path,
                                          request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", str(width))
    args = COMMANDS[name]
    if name in ("plan", "predict"):
        args = (*args, "--db", str(pinned_machine))
    code, out, err = run_cli(*args)
    assert code == 0, err
    _matches_golden(out, f"{name}-{width}.txt", request)


# ------------------------------------------------------------------ validate, rendered from a fixed result

# validate takes minutes (it refits the model per held-out generation), so its tables are rendered from a small
# fixed Validation instead of by running it; at 80 columns (the narrow layout) and at 160 (the wide one).
VALIDATE_WIDTHS = (80, 160)


def fixed_validation() -> Any:
    from gpuwise.predict.published import PublishedRow
    from gpuwise.validate import (
        ALL,
        BANDWIDTH,
        BLEND,
        DLE_SOURCE,
        MODEL,
        PEAK,
        ErrorStats,
        GenerationCheck,
        LocalCheck,
        OtherFile,
        PairCheck,
        RowCheck,
        Validation,
    )
    from tests.helpers import stored_result

    def row(index: int, model: str, gpu: str, num_gpus: int, throughput: float, notes: str = "") -> PublishedRow:
        return PublishedRow(index=index, model=model, task="", gpu=gpu, num_gpus=num_gpus, precision="AMP-FP16",
                            batch_per_gpu=256, throughput=throughput, unit="images/s", source="test", notes=notes)

    rows = (RowCheck(row(2, "resnet50", "A100-SXM4-80GB", 8, 20000.0), "resnet50", 18000.0, "Ampere", "Ampere"),
            RowCheck(row(3, "efficientnet_b0", "V100-SXM2-16GB", 1, 1200.0), "efficientnet_b0", 1380.0, "Volta",
                     "Volta"),
            RowCheck(row(4, "ssd300", "V100-SXM2-32GB", 8, 2400.0, "SUSPECT: logged twice"), "ssd300", 2000.0,
                     "Volta", "Volta"))
    pairs = (PairCheck("resnet50", "amp-fp16 batch 256", "V100-SXM2-16GB", "A100-SXM4-80GB", 2500.0, 2400.0, 4000.0,
                       2800.0, 2700.0, "Ampere"),)

    nan = float("nan")

    def stats(count: int, median: float, p90: float) -> ErrorStats:
        return ErrorStats(count, median, p90)

    cross = {MODEL: stats(1, 0.04, 0.04), PEAK: stats(1, 0.6, 0.6), BANDWIDTH: stats(1, 0.12, 0.12),
             BLEND: stats(1, 0.08, 0.08)}
    local = (LocalCheck(replace(stored_result("cpu", "Test CPU", 0.25), id=1), "your CPU (Test CPU)", 0.2),)
    return Validation(
        rows=rows, skipped=((row(5, "mask_rcnn", "A100-SXM4-80GB", 8, 300.0), "no zoo workload for mask_rcnn"),),
        pairs=pairs, by_gpu={"A100-SXM4-80GB": stats(1, 0.1, 0.1), "V100-SXM2-16GB": stats(1, 0.15, 0.15)},
        by_workload={"efficientnet_b0": stats(1, 0.15, 0.15), "resnet50": stats(1, 0.1, 0.1)},
        by_family={"image classification": stats(2, 0.125, 0.145)}, by_gpu_count={"1 GPU": stats(1, 0.15, 0.15),
                                                                                   "several GPUs": stats(1, 0.1, 0.1)},
        overall=stats(2, 0.125, 0.145), cross_gpu=cross, fits={}, store="results.db", local=local,
        by_device={"your CPU (Test CPU)": stats(1, 0.25, 0.25)},
        by_generation={"Ampere": stats(1, 0.1, 0.1), "Volta": stats(1, 0.15, 0.15)},
        cross_gpu_by_generation={"Ampere": cross},
        other_files=(OtherFile("Ampere", "GeForce and Titan cards", "other.csv", stats(8, 0.2, 0.25), cross, "Ampere"),
                     OtherFile("Hopper", "MLPerf Training", "mlperf.csv", stats(29, 0.5, 0.527), cross),
                     OtherFile("Blackwell", "MLPerf Training", "mlperf.csv", stats(6, 0.4, 0.401), {})),
        every_generation={
            "Volta": GenerationCheck(stats(1, 0.15, 0.15), {m: stats(0, nan, nan) for m in cross}, (DLE_SOURCE,)),
            "Ampere": GenerationCheck(stats(9, 0.19, 0.25), cross, (DLE_SOURCE, "GeForce and Titan cards")),
            "Hopper": GenerationCheck(stats(29, 0.5, 0.527), cross, ("MLPerf Training",)),
            "Blackwell": GenerationCheck(stats(6, 0.4, 0.401), {m: stats(0, nan, nan) for m in cross},
                                         ("MLPerf Training",)),
            ALL: GenerationCheck(stats(45, 0.41, 0.52), cross,
                                 (DLE_SOURCE, "GeForce and Titan cards", "MLPerf Training")),
        },
    )


@pytest.mark.parametrize("width", VALIDATE_WIDTHS)
def test_the_validate_tables_match_their_golden_file(width: int, request: pytest.FixtureRequest) -> None:
    from rich.console import Console

    from gpuwise.cli.validate import render

    out = io.StringIO()
    render(fixed_validation(), Console(file=out, width=width, highlight=False), show_rows=True)  # every table
    assert max(len(line.rstrip()) for line in out.getvalue().splitlines()) <= width
    _matches_golden(out.getvalue(), f"validate-{width}.txt", request)


def _matches_golden(out: str, name: str, request: pytest.FixtureRequest) -> None:
    """``out`` (its lines' trailing padding dropped: rich pads lines to the width) equals the golden file
    ``name``, or is written there with ``--update-golden``."""
    got = "\n".join(line.rstrip() for line in out.splitlines()) + "\n"
    golden = GOLDEN / name
    if request.config.getoption("--update-golden"):
        golden.write_text(got)
        return
    assert golden.exists(), f"no {golden.name}: write it with pytest {Path(__file__).name} --update-golden"
    assert got == golden.read_text(), f"{name} changed: if meant, rerun with --update-golden"
