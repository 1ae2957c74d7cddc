"""Durations and money: parsing what users type, and writing numbers the way people read them.

Pure functions, shared by the library's plain-words sentences (the plan's recommendation)
and the CLI's tables.
"""

from __future__ import annotations

import math
import re

from gpuwise.errors import GpuwiseError

MINUTE_S = 60.0
HOUR_S = 3600.0
DAY_S = 86400.0
YEAR_S = 365.25 * DAY_S

_DURATION_UNITS = {"s": 1.0, "m": MINUTE_S, "min": MINUTE_S, "h": HOUR_S, "d": DAY_S, "w": 7 * DAY_S}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(min|s|m|h|d|w)", re.IGNORECASE)


def parse_duration(text: str, flag: str = "--deadline") -> float:
    """'48h', '90m', '3600s', '2d', '1.5h', '1h30m' -> seconds; anything else names the fix."""
    cleaned = text.strip().lower().replace(" ", "")
    parts = _DURATION_PART.findall(cleaned)
    if not cleaned or "".join(n + u for n, u in parts) != cleaned:
        raise GpuwiseError(
            f"{flag} '{text}' is not a duration: give a number with a unit, e.g. 90m, 48h, 2d, 3600s, 1h30m"
        )
    seconds = sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)
    if seconds <= 0:
        raise GpuwiseError(f"{flag} must be longer than zero, got '{text}'")
    return seconds


def parse_positive(text: str, flag: str, what: str = "a positive number") -> float:
    """'2e9', '1281167', '1,281,167', '0.5' -> float > 0 (finite)."""
    try:
        value = float(text.strip().replace(",", "").replace("_", ""))
    except ValueError:
        raise GpuwiseError(f"{flag} must be {what}, got '{text}'") from None
    if not math.isfinite(value) or value <= 0:
        raise GpuwiseError(f"{flag} must be {what}, got '{text}'")
    return value


def parse_money(text: str, flag: str = "--budget") -> float:
    """'5000', '$5,000', '5k', '12.5' (US dollars) -> float > 0."""
    cleaned = text.strip().lstrip("$").replace(",", "").lower()
    scale = 1.0
    if cleaned.endswith("k"):
        cleaned, scale = cleaned[:-1], 1e3
    value = parse_positive(cleaned, flag, "an amount of US dollars above zero, e.g. 5000 or 5k") if cleaned else 0.0
    if value <= 0:
        raise GpuwiseError(f"{flag} must be an amount of US dollars above zero, e.g. 5000 or 5k, got '{text}'")
    return value * scale


def duration(seconds: float) -> str:
    """A duration in the unit a person would use: '42 s', '25 min', '3.1 h', '4.2 days', '1.3 years'."""
    if seconds < MINUTE_S:
        return f"{seconds:.2g} s" if seconds < 10 else f"{seconds:.0f} s"
    if seconds < HOUR_S:
        return f"{seconds / MINUTE_S:.0f} min"
    if seconds <= 2 * DAY_S:
        hours = seconds / HOUR_S
        return f"{hours:.1f} h" if hours < 10 else f"{hours:.0f} h"
    if seconds < YEAR_S:
        days = seconds / DAY_S
        return f"{days:.1f} days" if days < 10 else f"{days:.0f} days"
    return f"{seconds / YEAR_S:.1f} years"


def step_time(seconds: float, *, places: int = 2, duration_from_s: float = math.inf) -> str:
    """A step's time, as every table writes it: '9.5 ms' below a second, then seconds with ``places``
    decimals ('1.25 s'), and from ``duration_from_s`` on as ``duration`` writes it ('3 min')."""
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    if seconds < duration_from_s:
        return f"{seconds:.{places}f} s"
    return duration(seconds)


def _duration_unit(seconds: float) -> tuple[float, str]:
    if seconds < MINUTE_S:
        return 1.0, "s"
    if seconds < HOUR_S:
        return MINUTE_S, "min"
    if seconds <= 2 * DAY_S:
        return HOUR_S, "h"
    if seconds < YEAR_S:
        return DAY_S, "days"
    return YEAR_S, "years"


def duration_span(seconds: float, low_s: float, high_s: float) -> str:
    """'8.0 h (5.2–11 h)': the band in the unit of the central value."""
    scale, unit = _duration_unit(seconds)
    return f"{duration(seconds)} ({_number(low_s / scale)}–{_number(high_s / scale)} {unit})"


def _number(x: float) -> str:
    return f"{x:.0f}" if x >= 10 else f"{x:.2g}"


def money(usd: float) -> str:
    """'$0.42', '$5.80', '$1,240'."""
    if usd < 100:
        return f"${usd:,.2f}"
    return f"${usd:,.0f}"


def number(x: float) -> str:
    """A measured or predicted quantity as the tables print it, never in exponent form: '1,390', '12.3', '0.0954'."""
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if x == 0 or abs(x) >= 0.001:
        return f"{x:.3g}"
    return f"{x:.6f}".rstrip("0")
