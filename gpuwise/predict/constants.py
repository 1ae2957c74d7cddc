"""The fitted efficiency constants the prediction ships with, loaded where the runtime needs them.

The constants are JSON beside this module: ``efficiency.json`` (catalog GPUs, written by
``python -m gpuwise.predict.fit``) and ``cpu_efficiency.json`` (the calibrated CPU, written by
``python -m gpuwise.predict.cpu_fit``). The fitting programs are tools that import the runtime;
the runtime (``step``, ``option``, ``plan``) reads the constants from here and never imports them.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from importlib import resources
from pathlib import Path

from gpuwise.predict.roofline import Efficiency

FITTED_FILE = "efficiency.json"
CPU_FITTED_FILE = "cpu_efficiency.json"

# The CPU's constants before any fit, and the ones a fit leaves alone: attention (it runs unfused on the
# CPU, matmul + softmax ops, so the profile has no fused-attention op to fit), simt, and kernel latency
# (none on the host).
CPU_DEFAULT = Efficiency(
    matmul=0.8, conv=0.8, grouped_conv=0.1, attention=0.5, rnn=0.5, simt=1.0, bandwidth=0.6, kernel_latency_s=0.0,
    host_op_s=2e-5, cache_bandwidth=2.0, source="defaults relative to this CPU's measured ceilings (not fitted)",
)


def shipped_file(name: str) -> Path:
    """Where a shipped constants file lives (beside this module), for the fitting programs to write."""
    return Path(str(resources.files("gpuwise.predict").joinpath(name)))


def _load(name: str, default: Efficiency) -> Efficiency:
    resource = resources.files("gpuwise.predict").joinpath(name)
    if not resource.is_file():
        return default
    return Efficiency(**json.loads(resource.read_text()))


def shipped_efficiency() -> Efficiency:
    """The GPU constants fitted on every usable published row (made by ``python -m gpuwise.predict.fit``)."""
    return _load(FITTED_FILE, Efficiency())


def shipped_cpu_efficiency() -> Efficiency:
    """The CPU constants fitted on the committed CPU benches (``python -m gpuwise.predict.cpu_fit``)."""
    return _load(CPU_FITTED_FILE, CPU_DEFAULT)


def save(eff: Efficiency, path: Path) -> None:
    """Write constants as the shipped files hold them (what ``_load`` reads back)."""
    path.write_text(json.dumps(asdict(eff), indent=2) + "\n")
