"""Shared fixtures. Tests run offline (transformers must never reach for the hub) and never touch the user's own
results database, saved plan or GPU catalog: every test gets its own data and config folders."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from tests.helpers import TINY

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", default=False,
                     help="rewrite tests/golden/*.txt from the commands' output instead of comparing with them")


@pytest.fixture(autouse=True)
def user_folders(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """$GPUWISE_DB and the platformdirs data/config folders (XDG on Linux) point into a temporary folder, so the
    results database, the saved plan (beside the database) and the user's gpus.toml are this test's own. The cache
    folder is left alone: the offline Hugging Face and torch caches live there."""
    home = tmp_path_factory.mktemp("user")
    monkeypatch.setenv("GPUWISE_DB", str(home / "data" / "gpuwise" / "results.db"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    return home


@pytest.fixture
def tiny(tmp_path: Path) -> str:
    """The tiny training script (tests.helpers.TINY) as a ``path/to/file.py:factory`` workload."""
    path = tmp_path / "tiny.py"
    path.write_text(TINY)
    return f"{path}:build"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A results database with this CPU's ceilings stored, so no test spends time calibrating."""
    from gpuwise.bench.result import Ceilings
    from gpuwise.hardware.local import device_name, machine_key
    from gpuwise.store import open_store

    path = tmp_path / "results.db"
    ceilings = Ceilings("cpu", device_name("cpu"), {"float32": 0.2, "bfloat16": 0.2, "float16": 0.1}, 10.0,
                        dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    with open_store(path) as store:
        store.put_ceilings(ceilings, machine_key())
    return path
