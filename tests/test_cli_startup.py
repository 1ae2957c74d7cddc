"""The command starts fast and talks: no torch for help, version, gpus and workloads; typed flags; progress."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from gpuwise.cli.progress import working
from tests.helpers import run_cli

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = ("profile", "workloads", "bench", "results", "calibrate", "gpus", "predict", "plan", "validate", "train",
            "report")


def _run_gpuwise(*args: str, columns: int = 80) -> subprocess.CompletedProcess[str]:
    """``python -X importtime -m gpuwise ARGS`` in a fresh process, as a user runs it."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "COLUMNS": str(columns), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-X", "importtime", "-m", "gpuwise", *args], capture_output=True,
                          text=True, timeout=120, env=env, cwd=ROOT)


def _imported(stderr: str) -> set[str]:
    return {line.rsplit("|", 1)[1].strip() for line in stderr.splitlines() if line.startswith("import time:")}


@pytest.mark.parametrize("args", [["--help"], ["-h"], ["--version"], ["gpus"], ["workloads"],
                                  *([c, "--help"] for c in COMMANDS)], ids=" ".join)
def test_no_torch_for_help_version_gpus_and_workloads(args: list[str]) -> None:
    proc = _run_gpuwise(*args)
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = _imported(proc.stderr)
    assert "typer" in imported  # the import log was read
    assert "torch" not in imported


def test_version_and_python_m_gpuwise() -> None:
    from gpuwise import __version__

    proc = _run_gpuwise("--version")
    assert proc.stdout.strip() == f"gpuwise {__version__}"


@pytest.mark.parametrize("args", [["gpus"], ["workloads"], ["gpus", "--min-memory", "80"]], ids=" ".join)
def test_tables_fit_80_columns(args: list[str]) -> None:
    proc = _run_gpuwise(*args, columns=80)
    assert proc.returncode == 0
    assert max(len(line) for line in proc.stdout.splitlines()) <= 80
    assert "…" not in proc.stdout  # nothing cut: narrow layouts leave columns out instead


@pytest.mark.parametrize(
    ("command", "flags"),
    [("profile", ("--batch-size", "--seq-len", "--image-size", "--top")),
     ("train", ("--batch-size", "--grad-accum", "--steps", "--seed")),
     ("launch", ("--max-gpus", "--batch-size", "--seq-len", "--grad-accum", "--nodes", "--steps", "--checkpoint-every",
                 "--max-restarts", "--rdzv-port"))],
)
def test_integer_options_are_typed_in_the_help(command: str, flags: tuple[str, ...],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # each flag and its metavar on one line
    code, out, _ = run_cli(command, "--help")
    assert code == 0
    for flag in flags:
        assert re.search(rf"{flag} <int>", out), flag


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["plan", "resnet18", "--dataset-size", "10", "--epochs", "1", "--max-gpus", "two"],
         "--max-gpus must be a positive integer, got 'two'"),
        (["bench", "resnet18", "--steps", "0"], "--steps must be a positive integer, got 0"),
        (["train", "resnet18", "--seed", "-1"], "--seed must be a whole number of at least 0, got -1"),
        (["predict", "resnet18", "--gpu", "T4", "--num-gpus", "1.5"],
         "--num-gpus must be a positive integer, got '1.5'"),
        (["launch", "resnet18", "--target", "slurm", "--data", "synthetic", "--checkpoint-dir", "c", "--steps", "two"],
         "--steps must be a positive integer, got 'two'"),
    ],
)
def test_a_bad_integer_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    code, out, err = run_cli(*args)
    assert (code, out) == (2, "")
    assert err.strip() == f"gpuwise: error: {message}"


@pytest.mark.parametrize(
    "args",
    [["predict", "resnet18", "--gpus", "T4"], ["plan", "resnet18", "--gpu", "T4", "--dataset-size", "1",
                                               "--epochs", "1"],
     ["bench", "resnet18", "--devices", "cpu"], ["train", "resnet18", "--device", "cpu"],
     ["calibrate", "--devices", "cpu"]],
    ids=" ".join,
)
def test_both_spellings_of_device_and_gpu_parse(args: list[str]) -> None:
    import typer

    from gpuwise.cli.app import get_app

    group = typer.main.get_command(get_app())
    with group.context_class(group, info_name="gpuwise") as parent:
        command = group.get_command(parent, args[0])  # type: ignore[attr-defined]
        ctx = command.make_context(args[0], args[1:], parent=parent)
    assert "T4" in ctx.params.values() or "cpu" in ctx.params.values() or ["cpu"] in ctx.params.values()


def test_every_command_takes_both_spellings() -> None:
    import typer

    from gpuwise.cli.app import get_app

    group = typer.main.get_command(get_app())
    pairs = ({"--gpu", "--gpus"}, {"--device", "--devices"})
    with group.context_class(group, info_name="gpuwise") as parent:
        for name in group.list_commands(parent):  # type: ignore[attr-defined]
            for param in group.get_command(parent, name).params:  # type: ignore[attr-defined]
                names = set(param.opts)
                for pair in pairs:
                    assert not names & pair or pair <= names, f"gpuwise {name} {param.opts}: give both {pair}"


def test_every_command_that_profiles_or_measures_shows_progress_and_takes_quiet() -> None:
    import inspect

    import typer

    from gpuwise.cli.app import get_app

    group = typer.main.get_command(get_app())
    with group.context_class(group, info_name="gpuwise") as parent:
        for name in ("profile", "predict", "plan", "report", "bench", "calibrate", "validate"):
            command = group.get_command(parent, name)  # type: ignore[attr-defined]
            assert any("--quiet" in p.opts for p in command.params), f"gpuwise {name} has no --quiet"
            assert "working(" in inspect.getsource(command.callback), f"gpuwise {name} shows no progress"


def _terminal(buffer: io.StringIO, *, terminal: bool) -> Console:
    return Console(file=buffer, force_terminal=terminal, width=80)


def test_progress_shows_on_a_terminal_only_and_not_when_quiet() -> None:
    shown = io.StringIO()
    with working("profiling the step", quiet=False, console=_terminal(shown, terminal=True)) as say:
        say("planning every option")
    assert "planning every option" in shown.getvalue() or "profiling the step" in shown.getvalue()
    for terminal, quiet in ((False, False), (True, True)):
        silent = io.StringIO()
        with working("profiling the step", quiet=quiet, console=_terminal(silent, terminal=terminal)) as say:
            say("planning every option")
        assert silent.getvalue() == ""


def test_prose_is_not_highlighted() -> None:
    from gpuwise.cli.format import console

    out = console()
    with out.capture() as captured:
        out.print("costs $2.49/h in 2026")
    assert captured.get() == "costs $2.49/h in 2026\n"
    assert out.highlighter is not None and not out._highlight  # rich's switch for numbers and symbols in prose


@pytest.mark.parametrize("columns", [80, 200])
def test_the_plan_reads_at_80_columns_and_shows_everything_when_wide(
    columns: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import importlib

    from tests.helpers import CEILINGS, RAM_BYTES

    plan_module = importlib.import_module("gpuwise.plan")  # the module (gpuwise.plan is also the API's function)
    monkeypatch.setattr(plan_module, "cached_ceilings", lambda device, store_path=None, **kw: CEILINGS)
    monkeypatch.setattr(plan_module, "_ram_bytes", lambda: RAM_BYTES)
    monkeypatch.setenv("COLUMNS", str(columns))
    code, out, _ = run_cli("plan", str(ROOT / "examples" / "my_model.py") + ":build", "--dataset-size", "2e6",
                           "--epochs", "1", "--gpus", "T4,L4,H100-SXM5-80GB", "--db", str(tmp_path / "r.db"))
    assert code == 0
    assert max(len(line) for line in out.splitlines()) <= columns
    assert "…" not in out  # nothing cut: the narrow layout leaves whole columns out, and says so
    header = next(line for line in out.splitlines() if "option" in line and "memory/GPU" in line).split()
    wide_only = {"global", "step", "epoch", "source"}
    if columns < 140:
        assert "narrow terminal (80 columns)" in out and not wide_only & set(header)
    else:
        assert wide_only <= set(header) and "narrow terminal" not in out


def test_gpus_are_listed_through_nvidia_smi_without_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    """`gpuwise gpus` reads nvidia-smi where its numbering is CUDA's; where it may not be, CUDA answers."""
    from gpuwise.hardware import local
    from gpuwise.hardware.catalog import load_catalog
    from gpuwise.hardware.local import detect_gpus

    catalog = load_catalog()
    name = catalog.get("H100-SXM5-80GB").device_names[0]
    answers = {"out": f"{name}, 81559\n{name}, 81559"}
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(local.shutil, "which", lambda cmd: "/usr/bin/nvidia-smi")
    monkeypatch.setattr(local, "_run", lambda cmd: answers["out"])
    monkeypatch.setattr(local, "Path", lambda p: type("P", (), {"exists": lambda self: False})())
    found = detect_gpus(catalog)
    assert [(g.device, g.catalog_name, g.memory_bytes) for g in found] == [
        ("cuda:0", "H100-SXM5-80GB", 81559 * 2**20), ("cuda:1", "H100-SXM5-80GB", 81559 * 2**20)]

    answers["out"] = f"{name}, 81559\nNVIDIA A100-SXM4-80GB, 81920"  # mixed: CUDA orders them, not the PCI bus
    assert local.nvidia_smi_gpus() is None
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")  # renumbered: only CUDA knows
    answers["out"] = f"{name}, 81559"
    assert local.nvidia_smi_gpus() is None
