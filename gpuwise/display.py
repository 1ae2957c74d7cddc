"""How result objects show themselves in Python: a one-line ``repr``, a notebook table, a DataFrame.

The results (``Profile``, ``Option``, ``Plan``, ``BenchResult``) are frozen dataclasses; each says
which numbers are its key ones (``_summary``) and which rows make its table (``_rows``), and this
mixin does the rest. ``repr(profile)`` is one line, not every field of every op; ``to_dict()`` has
everything. Nothing here imports torch, and pandas only when ``to_pandas`` is called.
"""

from __future__ import annotations

import enum
import html
from pathlib import Path
from typing import Any

from gpuwise.errors import GpuwiseError
from gpuwise.units import step_time


class Displayed:
    """A one-line ``__repr__``, ``_repr_html_`` for notebooks and ``to_pandas()`` from a result's key numbers."""

    def _summary(self) -> list[tuple[str, str]]:
        """The key numbers: (name, value as a person reads it)."""
        raise NotImplementedError

    def _rows(self) -> list[dict[str, Any]]:
        """The result as table rows (plain values, units in the column names), for ``to_pandas``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v}' for k, v in self._summary())})"

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th><td style='text-align:left'>"
                       f"{html.escape(v)}</td></tr>" for k, v in self._summary())
        return f"<table><caption style='text-align:left'>{type(self).__name__}</caption>{rows}</table>"

    def to_pandas(self) -> Any:
        """The result's table as a ``pandas.DataFrame`` (pandas is not a dependency of gpuwise)."""
        try:
            import pandas
        except ImportError:
            raise GpuwiseError("to_pandas() needs pandas: pip install pandas (or use to_dict())") from None
        return pandas.DataFrame(self._rows())


def jsonable(value: Any) -> Any:
    """Plain JSON types all the way down: enums by value, paths as text, tuples as lists."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    return value


def si(value: float, unit: str = "") -> str:
    """1.23e9 -> '1.23 G' + unit."""
    for factor, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}".rstrip()


# MFU divides by the ceiling ``gpuwise calibrate`` measured; a step that beats it ran kernels calibrate does not time.
ABOVE_CEILING = ("† MFU above 100%: the step ran faster than the matmul ceiling gpuwise calibrate measured on that "
                 "device, so that ceiling is not this step's (on a CPU without bf16 units, oneDNN's bf16 "
                 "convolutions outrun its bf16 GEMM)")


def above_ceiling(mfu: float | None) -> bool:
    """Whether an MFU exceeds 100%: the step beat the ceiling it is divided by (``ABOVE_CEILING``)."""
    return mfu is not None and mfu > 1


def mfu_text(mfu: float | None, missing: str = "") -> str:
    """An MFU as a percentage, marked † above 100% (``ABOVE_CEILING`` says why); ``missing`` where none."""
    if mfu is None:
        return missing
    return f"{mfu:.1%}" + (" †" if above_ceiling(mfu) else "")


def gib(num_bytes: float) -> str:
    return f"{num_bytes / 2**30:.2f} GiB" if abs(num_bytes) >= 2**30 else f"{num_bytes / 2**20:.1f} MiB"


def seconds(value: float) -> str:
    """A step's time: milliseconds below a second (``gpuwise.units.step_time``)."""
    return step_time(value)
