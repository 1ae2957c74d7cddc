"""Golden files: the main CLI tables at fixed widths, compared line for line with tests/golden/*.txt.

What the tables show is the point of these tests (column choice, wrapping, footnotes), so a change to a table is
seen in review as a change to its golden file. Only output that is the same on any machine is compared: the local
machine's facts (its CPU's name and rates, its RAM, its GPUs) are pinned, and no command times anything.
Rewrite the files after an intended change with ``pytest tests/test_golden.py --update-golden``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

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
    """A results database whose CPU ceilings are made up (no calibration, the same rates everywhere), and the
    local CPU, RAM and GPUs as these tests say: a 'Test CPU' with 16 GiB and no GPU."""
    from gpuwise import plan
    from gpuwise.bench import calibrate
    from gpuwise.bench.result import Ceilings
    from gpuwise.cli import gpus
    from gpuwise.hardware.local import LocalCPU, machine_key
    from gpuwise.store import open_store

    path = tmp_path / "results.db"
    ceilings = Ceilings("cpu", "Test CPU", {"float32": 0.2, "bfloat16": 0.2, "float16": 0.1}, 10.0,
                        dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
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
    got = "\n".join(line.rstrip() for line in out.splitlines()) + "\n"  # rich pads lines to the width
    golden = GOLDEN / f"{name}-{width}.txt"
    if request.config.getoption("--update-golden"):
        golden.write_text(got)
        return
    assert golden.exists(), f"no {golden.name}: write it with pytest {Path(__file__).name} --update-golden"
    assert got == golden.read_text(), f"{name} at {width} columns changed: if meant, rerun with --update-golden"
