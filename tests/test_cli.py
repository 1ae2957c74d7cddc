"""The command line: real output for good input, one line and exit 2 for every user mistake."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import run_cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = str(ROOT / "examples" / "my_model.py")
RAISING = str(ROOT / "tests" / "data" / "raising_model.py")
run = run_cli


def test_profile_json_has_units_in_field_names() -> None:
    code, out, _ = run("profile", "resnet18", "--batch-size", "2", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["params_total"] == 11_689_512
    assert data["memory"]["peak_bytes"] > data["memory"]["weights_bytes"] > 0
    assert data["derived"]["training_flops"] == data["forward_flops"] + data["backward_flops"]
    assert {k["kind"] for k in data["kinds"]} >= {"conv", "matmul", "normalization"}


def test_profile_table_shows_each_section() -> None:
    code, out, _ = run("profile", EXAMPLE + ":build", "--batch-size", "32", "--top", "3")
    assert code == 0
    for section in ("parameters: 412,682 total", "forward, as MACs", "activations saved for backward",
                    "peak", "by op kind", "top 3 layers", "not counted: none"):
        assert section in out


def test_workloads_lists_the_zoo() -> None:
    code, out, _ = run("workloads", "--json")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["resnet50"]["params"] == 25_557_032
    assert rows["resnet50"]["sample_unit"] == "image"
    assert rows["gpt2"]["seq_len"] is not None


@pytest.mark.parametrize(
    "args, message",
    [
        (["profile", "resnet5O"], r"unknown workload 'resnet5O': did you mean resnet50"),
        (["profile", "resnet18", "--batch-size", "0"], r"--batch-size must be a positive integer, got 0"),
        (["profile", "resnet18", "--batch-size", "-3"], r"--batch-size must be a positive integer, got -3"),
        (["profile", "resnet18", "--batch-size", "many"], r"--batch-size must be a positive integer, got 'many'"),
        (["profile", "resnet18", "--seq-len", "128"], r"--seq-len does not apply to workload 'resnet18'"),
        (["profile", "gpt2", "--image-size", "224"], r"--image-size does not apply to workload 'gpt2'"),
        (["profile", "resnet18", "--precision", "bf16"], r"unknown precision 'bf16'.*amp-bf16"),
        (["profile", "resnet18", "--optimizer", "lamb"], r"unknown optimizer 'lamb'.*--optimizer"),
        (["profile", "nowhere/model.py:build"], r"no such file 'nowhere/model.py'"),
        (["profile", EXAMPLE + ":make"], r"no factory 'make'.*callables there: .*build"),
        (["profile", RAISING + ":build"], r"the factory raised RuntimeError: checkpoint shape mismatch in layer 3"),
        (["profile", RAISING + ":not_a_workload"], r"returned int; return gpuwise.UserWorkload"),
        (["profile", EXAMPLE + ":build", "--seq-len", "16"], r"--seq-len does not apply"),
    ],
)
def test_user_mistakes_get_one_line_and_exit_2(args: list[str], message: str) -> None:
    code, _, err = run(*args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("gpuwise: error: ")
    import re

    assert re.search(message, lines[0]), lines[0]


def test_console_script_exits_2_without_traceback() -> None:
    # The installed entry point, in a fresh process, as a user runs it.
    proc = subprocess.run(
        [sys.executable, "-m", "gpuwise.cli", "profile", "resnet18", "--batch-size", "0"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip() == "gpuwise: error: --batch-size must be a positive integer, got 0"


# ------------------------------------------------------------------ a user's workload is loaded once

COUNTED = '''
import torch
from torch import nn
from gpuwise.workloads.user import UserWorkload

with open({log!r}, "a") as f:
    f.write("file\\n")

def build():
    with open({log!r}, "a") as f:
        f.write("factory\\n")
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
    return UserWorkload(model=model, make_batch=lambda n: (torch.randn(n, 16), torch.randint(0, 4, (n,))),
                        loss=lambda m, b: nn.functional.cross_entropy(m(b[0]), b[1]), default_batch_size=4)
'''


@pytest.mark.parametrize("command", [
    ("plan", "--dataset-size", "40", "--epochs", "1", "--gpus", "T4"),
    ("report", "--dataset-size", "40", "--epochs", "1", "--gpus", "T4", "-o", "{tmp}/r.html"),
    ("train", "--steps", "2"),
    ("predict", "--gpu", "T4"),
])
def test_a_user_workload_is_loaded_once_per_command(command: tuple[str, ...], db: Path, tmp_path: Path) -> None:
    """The command resolves the workload at its edge and passes the ``Workload`` down: the user's file runs once
    (each model the command builds calls the factory again, as it must)."""
    log = tmp_path / "loads.log"
    model = tmp_path / "counted.py"
    model.write_text(COUNTED.format(log=str(log)))
    name, *flags = command
    code, _, err = run(name, f"{model}:build", *(f.format(tmp=tmp_path) for f in flags), "--db", str(db))
    assert code == 0, err
    assert log.read_text().split().count("file") == 1


def test_a_user_workload_is_loaded_again_after_its_file_changes(tmp_path: Path) -> None:
    from gpuwise.workloads import get_workload

    log = tmp_path / "loads.log"
    model = tmp_path / "counted.py"
    model.write_text(COUNTED.format(log=str(log)))
    first = get_workload(f"{model}:build")
    assert get_workload(f"{model}:build") is first  # a training loop finds it by name: not run again
    model.write_text(COUNTED.format(log=str(log)) + "\n# edited\n")
    assert get_workload(f"{model}:build") is not first
    assert log.read_text().split().count("file") == 2
