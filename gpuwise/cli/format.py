"""Human units for tables. Rendering only: no arithmetic beyond unit scaling."""

from __future__ import annotations

from rich.console import Console

# The results' own formatters: one way to write a number.
from gpuwise.display import ABOVE_CEILING, above_ceiling, gib, mfu_text, si

__all__ = ["ABOVE_CEILING", "NARROW_BELOW_COLUMNS", "above_ceiling", "console", "count", "gib", "is_narrow", "mfu_text",
           "params_short", "si"]


def count(n: int) -> str:
    return f"{n:,}"


def console(*, stderr: bool = False, soft_wrap: bool = False) -> Console:
    """The terminal's width (rich's default: 80 columns when not a terminal, or $COLUMNS), and no colouring of
    numbers and words inside prose ("$/h", "2026"): tables and headlines mark up what they mean to.

    ``soft_wrap``: lines are never broken by rich, only by the terminal, so a log keeps each line whole (train's
    lines name paths and checkpoints that a reader searches for)."""
    return Console(stderr=stderr, highlight=False, soft_wrap=soft_wrap)


def is_narrow(c: Console) -> bool:
    """Too narrow for the full tables: render the narrow layout, which stays readable at 80 columns."""
    return c.width < NARROW_BELOW_COLUMNS


NARROW_BELOW_COLUMNS = 140


def params_short(n: int) -> str:
    """A parameter count as people write it: 11.7M, 1.1B."""
    for factor, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if n >= factor:
            return f"{n / factor:.3g}{suffix}"
    return str(n)
