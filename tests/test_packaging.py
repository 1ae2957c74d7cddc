"""What an installed gpuwise carries: its license, its type marker, the data its commands read, a torch range."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _shipped(path: str) -> bool:
    """Whether setuptools' package-data globs for the gpuwise package take this file (relative to gpuwise/)."""
    return any(fnmatch.fnmatch(path, pattern) for pattern in PYPROJECT["tool"]["setuptools"]["package-data"]["gpuwise"])


def test_the_wheel_carries_the_license_the_type_marker_and_the_zoo_index() -> None:
    project = PYPROJECT["project"]
    assert project["license"] == "Apache-2.0"
    assert all((ROOT / f).is_file() for f in project["license-files"])
    assert "Apache License" in (ROOT / "LICENSE").read_text()
    for path in ("py.typed", "data/workloads.json"):
        assert (ROOT / "gpuwise" / path).is_file() and _shipped(path), path


def test_torch_is_a_range_from_the_tested_version_ci_pins() -> None:
    pins = dict(re.findall(r"^(torch|torchvision)==(\S+)$", (ROOT / "constraints.txt").read_text(), re.M))
    deps = {re.split(r"[<>=!~ ]", d, maxsplit=1)[0]: d for d in PYPROJECT["project"]["dependencies"]}
    for name in ("torch", "torchvision"):
        assert f">={pins[name]}" in deps[name] and "==" not in deps[name], deps[name]
        assert "<" in deps[name]  # and below the next major version
