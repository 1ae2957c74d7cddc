"""``gpuwise report``: one self-contained HTML page of a plan (``data`` gathers, ``charts`` and ``html`` draw)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from gpuwise.errors import GpuwiseError
from gpuwise.plan import Plan
from gpuwise.predict.own import OwnPlan
from gpuwise.report.data import ReportData, gather

__all__ = ["ReportData", "check_writable", "gather", "write_report"]


def check_writable(path: Path, flag: str = "--output") -> None:
    """Fail now, before minutes of profiling, if ``path`` cannot be written.

    A real write test (a temporary file beside it), not permission bits: those say nothing about a
    read-only file system, and root passes every bit check.
    """
    if path.is_dir():
        raise GpuwiseError(f"{flag} {path} is a directory: give a file name, e.g. {path / 'report.html'}")
    parent = path.parent
    if not parent.is_dir():
        raise GpuwiseError(f"{flag} {path}: the folder {parent} does not exist; create it or write elsewhere")
    try:
        fd, probe = tempfile.mkstemp(dir=parent, prefix=".gpuwise-report-", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
        if path.exists() and not os.access(path, os.W_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as e:
        raise GpuwiseError(f"{flag} {path} cannot be written ({e.strerror or e}); choose another path") from None


def write_report(p: Plan, path: Path, *, store_path: Path | None = None, own: OwnPlan | None = None) -> ReportData:
    """Gather the page's data for plan ``p``, render it and write it atomically to ``path``; ``own``: the
    rent-or-buy comparison (``--own``), which adds its section and chart."""
    from gpuwise.report.html import render

    data = gather(p, store_path=store_path, own=own)
    page = render(data)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".gpuwise-report-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(page)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise GpuwiseError(f"cannot write {path} ({e.strerror or e}); choose another path") from None
    return data
