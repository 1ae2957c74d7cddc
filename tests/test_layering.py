"""Imports run one way: the runtime loads the shipped constants, the fitting programs import the runtime."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNTIME = ("gpuwise.predict.step", "gpuwise.predict.option", "gpuwise.predict.single", "gpuwise.plan",
           "gpuwise.predict.constants")
FITTING = ("gpuwise.predict.fit", "gpuwise.predict.cpu_fit")


def _modules_after_import(*names: str) -> set[str]:
    """The modules loaded by importing ``names`` in a fresh interpreter (this one has imported everything)."""
    code = (f"import importlib, json, sys\nfor n in {names!r}: importlib.import_module(n)\n"
            "print(json.dumps(sorted(sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return set(json.loads(proc.stdout))


def test_the_runtime_does_not_import_the_fitting_programs() -> None:
    loaded = _modules_after_import(*RUNTIME)
    assert "gpuwise.predict.step" in loaded  # the import happened
    assert loaded.isdisjoint(FITTING), sorted(loaded & set(FITTING))


def test_the_fitting_programs_read_the_same_constants_as_the_runtime() -> None:
    from gpuwise.predict import constants, cpu_fit, fit

    assert fit.shipped_efficiency() == constants.shipped_efficiency()
    assert cpu_fit.shipped_cpu_efficiency() == constants.shipped_cpu_efficiency()
    assert cpu_fit.DEFAULT == constants.CPU_DEFAULT
