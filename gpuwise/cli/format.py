"""Human units for tables. Rendering only: no arithmetic beyond unit scaling."""

from __future__ import annotations


def si(value: float, unit: str = "") -> str:
    """1.23e9 -> '1.23 G' + unit."""
    for factor, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}".rstrip()


def gib(nbytes: float) -> str:
    if abs(nbytes) >= 1024**3:
        return f"{nbytes / 1024**3:.2f} GiB"
    return f"{nbytes / 1024**2:.1f} MiB"


def count(n: int) -> str:
    return f"{n:,}"
