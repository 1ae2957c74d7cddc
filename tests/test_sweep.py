"""The hostile-input sweep of issue 18, kept: bad input across every command is refused with exit status 2,
one line on stderr ("gpuwise: error: ..."), no traceback, and no file left behind.

Every command line runs as a process of its own (``tests/sweep.py`` forks one per command from one
interpreter that has imported gpuwise once: a second saved per command) in an empty working folder,
with HOME, the XDG folders and $GPUWISE_DB pointing into a sandbox that is compared before and after.
``test_the_sweep_matches_the_real_command`` runs a sample through ``python -m gpuwise.cli`` itself.
The faults that need a disk of their own (full, read-only) are in tests/test_train_faults.py and
tests/test_paths_faults.py; kill -9 and concurrent writers in tests/test_train_processes.py and
tests/test_store.py.

``python -m pytest tests/test_sweep.py -s`` prints how many command lines were tried and how many behaved
(the count benchmarks/RESULTS.md records).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ITEM_MODEL, TINY

ROOT = Path(__file__).resolve().parent.parent

def make_inputs(root: Path) -> dict[str, str]:
    """The files and folders the command lines refer to, as {name}: made once, read-only by intent."""
    inputs = root / "inputs"
    (inputs / "dir").mkdir(parents=True)
    (inputs / "empty").mkdir()
    (inputs / "notes.txt").write_text("not a model, not a catalog, not a database\n")
    (inputs / "bad.toml").write_text("[T4\nvendor = \n")
    (inputs / "absurd.toml").write_text('[MyGPU]\nvendor = "nvidia"\nmemory_gb = 80\n'
                                        'memory_bandwidth_gbps = 1e-9\nfp32_tflops = 60\nprice_usd_per_hour = 2\n')
    (inputs / "zero.toml").write_text('[T4]\nfp32_tflops = 0\n')
    (inputs / "notdb.db").write_bytes(b"definitely not sqlite" * 100)
    (inputs / "published.csv").write_text("this,is\nnot,the,published,layout\n")
    (inputs / "tiny.py").write_text(TINY)
    (inputs / "item.py").write_text(ITEM_MODEL)
    (inputs / "broken.py").write_text("def build(:\n")
    nomanifest = inputs / "nomanifest"
    nomanifest.mkdir()
    (nomanifest / "step-000000001.pt").write_bytes(b"PK\x03\x04 not really")
    names = {p.stem if p.is_file() else p.name: str(p) for p in inputs.iterdir()}
    names["tiny"] = f"{inputs / 'tiny.py'}:build"
    names["item"] = f"{inputs / 'item.py'}:build"
    names["nofactory"] = f"{inputs / 'tiny.py'}:nope"
    names["broken"] = f"{inputs / 'broken.py'}:build"
    return names


PLAN = ["--dataset-size", "1e6", "--epochs", "1"]
SLOW = True  # the command profiles or builds a model before it refuses: seconds, so only in the slow run

# (command line, text the one line must hold[, SLOW]). {name} is one of make_inputs' paths.
CASES: list[tuple[Any, ...]] = [
    # --- profile
    (["profile", "RESNT50"], "did you mean resnet50"),
    (["profile", "resnet50", "--precision", "fp64"], "fp64"),
    (["profile", "resnet50", "--optimizer", "lion"], "lion"),
    (["profile", "resnet50", "--image-size", "-1"], "--image-size"),
    (["profile", "resnet50", "--image-size", "abc"], "--image-size"),
    (["profile", "resnet50", "--batch-size", "0"], "--batch-size"),
    (["profile", "resnet50", "--batch-size", "2.5"], "--batch-size"),
    (["profile", "resnet50", "--top", "0"], "--top"),
    (["profile", "gpt2", "--seq-len", "0"], "--seq-len"),
    (["profile", "resnet50", "--activation-checkpointing", "some"], "--activation-checkpointing"),
    (["profile", "/no/such/model.py:build"], "no such file"),
    (["profile", "{nofactory}"], "nope"),
    (["profile", "{broken}"], "SyntaxError"),
    (["profile", "{notes}:build"], "notes"),
    (["profile", "{item}"], "item.py:M.forward:12", SLOW),
    # --- bench
    (["bench", "RESNT50"], "did you mean resnet50"),
    (["bench", "resnet18", "--device", "tpu"], "tpu"),
    (["bench", "resnet18", "--device", "cuda:7"], "cuda"),
    (["bench", "resnet18", "--steps", "0"], "--steps"),
    (["bench", "resnet18", "--warmup", "-1"], "--warmup"),
    (["bench", "resnet18", "--batch-size", "0"], "--batch-size"),
    (["bench", "resnet18", "--precision", "bogus"], "bogus"),
    (["bench", "resnet18", "--db", "{dir}"], "is a directory"),
    (["bench", "resnet18", "--db", "{notdb}"], "not a gpuwise results database"),
    # --- calibrate
    (["calibrate", "--db", "{dir}"], "is a directory"),
    (["calibrate", "--db", "{notdb}"], "not a gpuwise results database"),
    # --- gpus
    (["gpus", "--catalog", "{dir}"], "is a directory"),
    (["gpus", "--catalog", "/no/such/gpus.toml"], "does not exist"),
    (["gpus", "--catalog", "{bad}"], "not valid TOML"),
    (["gpus", "--catalog", "{absurd}"], "outside the physical range"),
    (["gpus", "--catalog", "{zero}"], "must be positive"),
    (["gpus", "--catalog", "{notes}"], "not valid TOML"),
    (["gpus", "--vendor", "intel"], "intel"),
    (["gpus", "--min-memory", "abc"], "--min-memory"),
    (["gpus", "--min-memory", "-5"], "--min-memory"),
    # --- plan
    (["plan", "RESNT50", *PLAN], "did you mean resnet50"),
    (["plan", "resnet50", "--dataset-size", "0", "--epochs", "1"], "--dataset-size"),
    (["plan", "resnet50", "--dataset-size", "abc", "--epochs", "1"], "--dataset-size"),
    (["plan", "resnet50", "--dataset-size", "1e300", "--epochs", "1e300"], "--dataset-size"),
    (["plan", "resnet50", "--dataset-size", "1e30", "--epochs", "1"], "--dataset-size"),
    (["plan", "resnet50", "--dataset-size", "nan", "--epochs", "1"], "--dataset-size"),
    (["plan", "resnet50", "--dataset-size", "inf", "--epochs", "1"], "--dataset-size"),
    (["plan", "resnet50", "--dataset-size", "1e6", "--epochs", "-1"], "--epochs"),
    (["plan", "resnet50", "--dataset-size", "1e6", "--epochs", "1e300"], "--epochs"),
    (["plan", "resnet50", *PLAN, "--deadline", "yesterday"], "--deadline"),
    (["plan", "resnet50", *PLAN, "--deadline", "-3h"], "--deadline"),
    (["plan", "resnet50", *PLAN, "--budget", "-5"], "--budget"),
    (["plan", "resnet50", *PLAN, "--budget", "lots"], "--budget"),
    (["plan", "resnet50", *PLAN, "--gpus", "NOPE"], "unknown GPU 'NOPE'"),
    (["plan", "resnet50", *PLAN, "--gpus", ","], "--gpus"),
    (["plan", "resnet50", *PLAN, "--max-gpus", "0"], "--max-gpus"),
    (["plan", "resnet50", *PLAN, "--unit", "bytes"], "bytes"),
    (["plan", "resnet50", *PLAN, "--strategy", "zero3"], "zero3"),
    (["plan", "resnet50", *PLAN, "--grad-accum", "0"], "--grad-accum"),
    (["plan", "resnet50", *PLAN, "--cpu-cores-per-gpu", "0"], "--cpu-cores-per-gpu"),
    (["plan", "resnet50", *PLAN, "--network-gbits", "-1"], "--network-gbits"),
    (["plan", "resnet50", *PLAN, "--catalog", "{dir}"], "is a directory"),
    (["plan", "resnet50", *PLAN, "--catalog", "{absurd}"], "outside the physical range"),
    (["plan", "resnet50", *PLAN, "--batch-size", "-8"], "--batch-size"),
    (["plan", "resnet50", *PLAN, "--db", "{dir}"], "is a directory", SLOW),
    # --- predict
    (["predict", "RESNT50", "--gpu", "T4"], "did you mean resnet50"),
    (["predict", "resnet50", "--gpu", "NOPE"], "unknown GPU 'NOPE'"),
    (["predict", "resnet50", "--gpu", "T4", "--num-gpus", "0"], "--num-gpus"),
    (["predict", "resnet50", "--gpu", "T4", "--num-gpus", "abc"], "--num-gpus"),
    (["predict", "resnet50", "--gpu", "T4", "--strategy", "fsdp"], "--strategy fsdp"),
    (["predict", "resnet50", "--gpu", "T4", "--batch-size", "0"], "--batch-size"),
    (["predict", "resnet50", "--gpu", "T4", "--precision", "fp8"], "fp8"),
    (["predict", "resnet50", "--gpu", "T4", "--catalog", "{dir}"], "is a directory"),
    (["predict", "resnet50", "--gpu", "MyGPU", "--catalog", "{absurd}"], "outside the physical range"),
    (["predict", "resnet50", "--gpu", "T4", "--network-gbits", "0"], "--network-gbits"),
    (["predict", "resnet50", "--gpu", "T4", "--busbw", "-1"], "--busbw"),
    # --- report
    (["report", "resnet50", "--dataset-size", "0", "--epochs", "1"], "--dataset-size"),
    (["report", "resnet50", "--dataset-size", "1e300", "--epochs", "1e300"], "--dataset-size"),
    (["report", "RESNT50", *PLAN], "did you mean resnet50"),
    (["report", "resnet50", *PLAN, "--gpus", "NOPE"], "unknown GPU 'NOPE'"),
    # --- results
    (["results", "--db", "no/such/dir/r.db"], "no results database at"),
    (["results", "--db", "{dir}"], "is a directory"),
    (["results", "--db", "{notdb}"], "not a gpuwise results database"),
    (["results", "--export", "out.txt"], "--export"),
    # --- validate
    (["validate", "--published", "/no/such.csv"], "/no/such.csv"),
    (["validate", "--published", "{published}"], "published.csv"),
    (["validate", "--catalog", "{dir}"], "is a directory"),
    (["validate", "--db", "{notdb}"], "not a gpuwise results database"),
    # --- train
    (["train"], "name the workload"),
    (["train", "RESNT50"], "did you mean resnet50"),
    (["train", "{tiny}", "--steps", "0"], "--steps"),
    (["train", "{tiny}", "--epochs", "1", "--steps", "3"], "not both"),
    (["train", "{tiny}", "--checkpoint-every", "2"], "--checkpoint-dir"),
    (["train", "{tiny}", "--checkpoint-dir", "{notes}"], "is a file, not a folder"),
    (["train", "{tiny}", "--seed", "99999999999999999999", "--dry-run"], "--seed"),
    (["train", "{tiny}", "--seed", "-1"], "--seed"),
    (["train", "--resume", "/no/such/run"], "no such folder"),
    (["train", "--resume", "{empty}"], "it is empty"),
    (["train", "--resume", "{nomanifest}"], "have no manifests"),
    (["train", "--resume", "{notes}"], "is a file, not a folder"),
    (["train", "{tiny}", "--devices", "8"], "more GPUs than exist"),
    (["train", "{tiny}", "--devices", "tpu"], "--devices"),
    (["train", "{tiny}", "--strategy", "fsdp"], "--strategy fsdp"),
    (["train", "{tiny}", "--data", "/no/such/folder"], "--data", SLOW),
    (["train", "{tiny}", "--grad-accum", "0"], "--grad-accum"),
    (["train", "{tiny}", "--keep-checkpoints", "0"], "--keep-checkpoints"),
    (["train", "{tiny}", "--batch-size", "abc"], "--batch-size"),
    (["train", "{tiny}", "--warmup", "0"], "--warmup"),
    (["train", "{tiny}", "--devices", "cpu:2", "--nodes", "2", "--node-rank", "2", "--master-addr", "h"],
     "--node-rank"),
    (["train", "--plan", "--db", "{dir}/fresh.db"], "no plan saved yet"),
    (["train", "{item}", "--steps", "1"], "item.py:M.forward:12", SLOW),
]

# Mistakes click itself finds (a flag's name misspelt, a required one missing, no such command): one line in
# click's words with the command's help to look at (``gpuwise.cli.app.main``), exit 2, no traceback.
USAGE_CASES: list[tuple[Any, ...]] = [
    (["plan", "resnet50", "--epoch", "1", "--dataset-size", "1e6"], "No such option: --epoch"),
    (["predict", "resnet50"], "Missing option '--gpu'"),
    (["nosuchcommand"], "No such command"),
    (["profile"], "Missing argument"),
]


def _fill(args: list[str], names: dict[str, str]) -> list[str]:
    return [a.format(**names) for a in args]


def _run(sandbox: Path, lines: list[list[str]]) -> list[dict[str, Any]]:
    env = {**os.environ, "HOME": str(sandbox / "home"), "XDG_DATA_HOME": str(sandbox / "home" / "data"),
           "XDG_CONFIG_HOME": str(sandbox / "home" / "config"), "XDG_CACHE_HOME": str(sandbox / "home" / "cache"),
           "GPUWISE_DB": str(sandbox / "state" / "results.db"), "HF_HUB_OFFLINE": "1", "COLUMNS": "200",
           "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, str(ROOT / "tests" / "sweep.py"), str(sandbox)], input=json.dumps(lines),
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    results: list[dict[str, Any]] = json.loads(done.stdout)
    return results


def _problems(result: dict[str, Any], expected: str, *, usage: bool = False) -> list[str]:
    err = result["stderr"]
    found = []
    if result["code"] != 2:
        found.append(f"exit {result['code']}")
    if "Traceback" in err or "Traceback" in result["stdout"]:
        found.append("traceback")
    if not usage and (err.count("\n") != 1 or not err.startswith("gpuwise: error: ")):
        found.append(f"{err.count(chr(10))} lines on stderr")
    if expected not in err:
        found.append(f"no {expected!r}")
    if result["left"]:
        found.append(f"left {result['left']}")
    return found


def _sweep(tmp_path: Path, *, slow: bool) -> None:
    names = make_inputs(tmp_path)
    cases = [(case, False) for case in CASES if (len(case) > 2) == slow]
    cases += [(case, False) for case in USAGE_CASES if not slow]
    results = _run(tmp_path, [_fill(case[0], names) for case, _ in cases])
    failures = []
    for result, (case, usage) in zip(results, cases, strict=True):
        problems = _problems(result, case[1], usage=usage)
        if problems:
            failures.append(f"gpuwise {' '.join(result['args'])}: {'; '.join(problems)}\n    {result['stderr'][-600:]}")
    print(f"\nsweep{' (slow part)' if slow else ''}: {len(results)} command lines tried, "
          f"{len(results) - len(failures)} behaved")
    for r in sorted(results, key=lambda r: -r["seconds"])[:5]:
        print(f"  {r['seconds']:6.2f} s  gpuwise {' '.join(r['args'])[:100]}")
    assert not failures, "\n".join(failures)


def test_every_bad_input_is_one_line_exit_2_and_leaves_nothing(tmp_path: Path) -> None:
    _sweep(tmp_path, slow=False)


@pytest.mark.slow
def test_bad_input_found_after_profiling_is_refused_the_same_way(tmp_path: Path) -> None:
    _sweep(tmp_path, slow=True)


@pytest.mark.slow
def test_the_sweep_matches_the_real_command(tmp_path: Path) -> None:
    """A sample of the sweep through ``python -m gpuwise.cli`` itself, one interpreter per command: the forked
    runs above see what a user sees."""
    names = make_inputs(tmp_path)
    sample = [case for case in CASES if len(case) == 2][::12]
    forked = _run(tmp_path, [_fill(args, names) for args, _ in sample])
    env = {**os.environ, "HOME": str(tmp_path / "home"), "GPUWISE_DB": str(tmp_path / "state" / "results.db"),
           "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1", "COLUMNS": "200",
           "CUDA_VISIBLE_DEVICES": ""}
    for (args, expected), seen in zip(sample, forked, strict=True):
        done = subprocess.run([sys.executable, "-m", "gpuwise.cli", *_fill(args, names)], capture_output=True,
                              text=True, env=env, cwd=tmp_path, timeout=300)
        assert done.returncode == seen["code"] == 2, done.stderr
        assert done.stderr == seen["stderr"] and expected in done.stderr
