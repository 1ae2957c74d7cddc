"""The hardware catalog: GPUs as data with provenance, looked up by name.

The catalog is ``gpuwise/hardware/data/gpus.toml`` (shipped with the package), then the user's
own TOML file: ``--catalog PATH``, else ``gpus.toml`` in the user config directory if it exists.
A user entry with a known name overrides the fields it sets; a new name adds a GPU. Every number
carries its source (``GPU.sources``, one per field); peaks are dense, never sparse; a precision a
GPU lacks is absent (``None``), never 0. See the header of ``gpus.toml`` for the conventions.

Looking a spec up is pure: describing this machine (``local_cpu_entry``, ``detect_gpus``) is
``gpuwise.hardware.local``'s; nothing runs at import.
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

from gpuwise.errors import GpuwiseError

PACKAGED_LABEL = "gpuwise/hardware/data/gpus.toml"
USER_FILE_NAME = "gpus.toml"


@dataclass(frozen=True)
class GPU:
    """One catalog GPU. Rates are peak dense TFLOP/s; ``None`` = not supported or not published."""

    name: str  # the user-facing key, e.g. "H100-SXM5-80GB"
    vendor: str  # "nvidia", "amd"
    memory_gb: float  # GB as sold
    memory_bandwidth_gbps: float  # GB/s
    architecture: str = ""
    memory_type: str | None = None
    fp32_tflops: float | None = None  # non-tensor (vector) FP32
    tf32_tflops: float | None = None  # TF32 tensor
    fp16_tflops: float | None = None  # FP16 tensor, FP32 accumulate (what AMP gets)
    bf16_tflops: float | None = None  # BF16 tensor, FP32 accumulate
    fp8_tflops: float | None = None  # FP8 tensor, FP32 accumulate where it differs
    # Measured, not datasheet: the best dense BF16 matmul rate a microbenchmark reaches (mamf-finder).
    achievable_bf16_tflops: float | None = None
    # The same for FP16, for a GPU without BF16 tensor cores (V100, Turing): its share stands in for BF16's.
    achievable_fp16_tflops: float | None = None
    # Measured, not datasheet: a STREAM-like copy/triad's DRAM bandwidth (BabelStream Triad), GB/s.
    achievable_memory_gbps: float | None = None
    l2_cache_mb: float | None = None  # last-level cache (AMD: Infinity Cache)
    # Measured, not datasheet: the read bandwidth of data that stays in L2 (every SM streaming a buffer
    # that fits, gpu-benches' gpu-l2-cache), GB/s.
    achievable_l2_gbps: float | None = None
    sm_count: int | None = None  # SMs (NVIDIA) or compute units (AMD)
    boost_clock_mhz: int | None = None
    tdp_w: float | None = None
    nvlink_gbps: float | None = None  # total bidirectional GB/s per GPU across an NVLink/NVSwitch node
    nvlink_bridge_gbps: float | None = None  # a 2-GPU bridge on PCIe cards (pairs only)
    pcie_gen: int | None = None
    launch_year: int | None = None
    price_usd_per_hour: float | None = None  # typical on-demand price of one GPU-hour
    # Owning one (gpuwise.predict.own): US dollars as published, each with the date it was published.
    launch_msrp_usd: float | None = None  # the vendor's launch list price of one card
    launch_msrp_date: str | None = None  # "YYYY-MM-DD", "YYYY-MM" or "YYYY"
    street_price_usd: float | None = None  # a dated selling price of one new card (or a range's midpoint)
    street_price_date: str | None = None
    server_usd_per_gpu: float | None = None  # a typical server's list price / its GPU slots, GPUs included
    server_price_date: str | None = None
    training_power_w: float | None = None  # board power measured under training load; None: tdp_w is used
    segment: str | None = None  # "datacenter" | "workstation" | "consumer": a datacenter part pays its site's PUE
    device_names: tuple[str, ...] = ()  # as torch.cuda.get_device_name() reports them
    sources: dict[str, str] = field(default_factory=dict, hash=False)  # field -> where it was read
    notes: str = ""
    # Derived when the catalog is built (``achievable_fractions``), never read from a file: the share of
    # the datasheet tensor peaks a large matmul reaches on this GPU, and what that number rests on.
    achievable_fraction: float = 1.0
    achievable_basis: str = "the datasheet peak (no measurement)"
    achievable_bandwidth_fraction: float = 1.0
    achievable_bandwidth_basis: str = "the datasheet bandwidth (no measurement)"
    # Derived likewise: the L2 read bandwidth, the GPU's own measurement or its chip's or family's per SM
    # times its SMs (``l2_bandwidth``); 0: no cache model for this GPU.
    l2_gbps: float = 0.0
    l2_basis: str = "no L2 measurement for this GPU, its chip or its family: no cache model"

    @property
    def generation(self) -> str:
        """The architecture generation ("Hopper"): the first word of ``architecture``, else the first part
        of the name ("V100") for an entry that gives none. Fits, bands and defaults go by it."""
        words = self.architecture.split()
        return words[0] if words else self.name.split("-")[0]

    def to_dict(self) -> dict[str, Any]:
        """Every field, units in the names; what ``gpuwise gpus --json`` prints."""
        data = asdict(self)
        data["device_names"] = list(self.device_names)
        return data


# ------------------------------------------------------------------ the schema of a catalog entry

_STR_FIELDS = ("vendor", "architecture", "memory_type", "notes", "segment")
_DATE_FIELDS = ("launch_msrp_date", "street_price_date", "server_price_date")
SEGMENTS = ("datacenter", "workstation", "consumer")
_DATE = re.compile(r"(19|20)\d\d(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?)?")
_FLOAT_FIELDS = (
    "memory_gb", "memory_bandwidth_gbps", "fp32_tflops", "tf32_tflops", "fp16_tflops", "bf16_tflops",
    "fp8_tflops", "achievable_bf16_tflops", "achievable_fp16_tflops", "achievable_memory_gbps", "l2_cache_mb",
    "achievable_l2_gbps", "tdp_w",
    "nvlink_gbps",
    "nvlink_bridge_gbps", "price_usd_per_hour", "launch_msrp_usd", "street_price_usd", "server_usd_per_gpu",
    "training_power_w",
)
_INT_FIELDS = ("sm_count", "boost_clock_mhz", "pcie_gen", "launch_year")
NUMERIC_FIELDS = _FLOAT_FIELDS + _INT_FIELDS
REQUIRED_FIELDS = ("vendor", "memory_gb", "memory_bandwidth_gbps")
# What any GPU, past or foreseeable, has: generous bounds (a 2 GB card of 2016 to a hundred times today's
# largest) that catch a typo or a unit slip (1e-9 GB/s, TFLOP/s entered as FLOP/s) before it plans
# "64 GPUs for 137,167 years". Each with its unit, for the message.
PHYSICAL_RANGES: dict[str, tuple[float, float, str]] = {
    "memory_gb": (0.5, 10_000, "GB"), "memory_bandwidth_gbps": (10, 100_000, "GB/s"),
    "fp32_tflops": (0.1, 10_000, "TFLOP/s"), "tf32_tflops": (0.1, 100_000, "TFLOP/s"),
    "fp16_tflops": (0.1, 100_000, "TFLOP/s"), "bf16_tflops": (0.1, 100_000, "TFLOP/s"),
    "fp8_tflops": (0.1, 100_000, "TFLOP/s"), "achievable_bf16_tflops": (0.1, 100_000, "TFLOP/s"),
    "achievable_fp16_tflops": (0.1, 100_000, "TFLOP/s"),
    "achievable_memory_gbps": (10, 100_000, "GB/s"), "l2_cache_mb": (0.01, 100_000, "MB"),
    "achievable_l2_gbps": (10, 1_000_000, "GB/s"),
    "tdp_w": (1, 100_000, "W"), "nvlink_gbps": (1, 100_000, "GB/s"), "nvlink_bridge_gbps": (1, 100_000, "GB/s"),
    "price_usd_per_hour": (0.001, 1_000, "US$ per GPU-hour"), "sm_count": (1, 100_000, "SMs"),
    "boost_clock_mhz": (100, 10_000, "MHz"), "pcie_gen": (1, 10, ""), "launch_year": (1990, 2100, ""),
    "launch_msrp_usd": (1, 10_000_000, "US$"), "street_price_usd": (1, 10_000_000, "US$"),
    "server_usd_per_gpu": (1, 10_000_000, "US$"), "training_power_w": (1, 100_000, "W"),
}
assert set(PHYSICAL_RANGES) == set(NUMERIC_FIELDS), "every number has its physical range"
_ENTRY_FIELDS = (*_STR_FIELDS, *_DATE_FIELDS, *NUMERIC_FIELDS, "device_names", "sources")
_DERIVED_FIELDS = {"name", "achievable_fraction", "achievable_basis", "achievable_bandwidth_fraction",
                   "achievable_bandwidth_basis", "l2_gbps", "l2_basis"}
assert set(_ENTRY_FIELDS) == {f.name for f in fields(GPU)} - _DERIVED_FIELDS, "schema and GPU fields disagree"


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the text {value!r}"
    return f"{value!r}"


class _Entry:
    """Validates one ``[name]`` table of one file; errors name the file, entry and field."""

    def __init__(self, label: str, name: str) -> None:
        self.label, self.name = label, name

    def error(self, message: str, key: str | None = None) -> GpuwiseError:
        where = f"entry '{self.name}'" + (f", field '{key}'" if key is not None else "")
        return GpuwiseError(f"{self.label}: {where}: {message}")

    def parse(self, table: object) -> dict[str, Any]:
        """The entry's fields, converted; ``sources`` expanded to one key per field."""
        if not isinstance(table, dict):
            raise self.error(f"expected a table [{self.name}] of fields, got {_type_name(table)}")
        if not self.name.strip() or any(c.isspace() or c == "," for c in self.name):
            raise self.error("a GPU name may not be empty or contain spaces or commas (the CLI splits lists on "
                             "commas); use dashes, e.g. 'RTX-4090'")
        values: dict[str, Any] = {}
        for key, value in table.items():
            if key == "sources":
                values["sources"] = self._sources(value)
            elif key in _STR_FIELDS:
                values[key] = self._text(key, value)
            elif key in _DATE_FIELDS:
                values[key] = self._date(key, value)
            elif key in NUMERIC_FIELDS:
                values[key] = self._number(key, value)
            elif key == "device_names":
                values[key] = self._names(key, value)
            else:
                close = difflib.get_close_matches(key, _ENTRY_FIELDS, n=1)
                hint = f"did you mean '{close[0]}'?" if close else f"known fields: {', '.join(_ENTRY_FIELDS)}"
                raise self.error(f"unknown field ({hint})", key)
        return values

    def _text(self, key: str, value: object) -> str:
        if not isinstance(value, str):
            raise self.error(f"expected text in quotes, got {_type_name(value)}", key)
        if key == "vendor":
            if not value.strip():
                raise self.error("must not be empty (e.g. vendor = \"nvidia\")", key)
            return value.strip().lower()
        if key == "segment" and value not in SEGMENTS:
            raise self.error(f"must be one of {', '.join(SEGMENTS)}, got {value!r}", key)
        return value

    def _date(self, key: str, value: object) -> str:
        """A publication date as people write one: 2022-09-20, 2022-09 or 2022 (a date tells how stale a price is)."""
        if not isinstance(value, str) or not _DATE.fullmatch(value.strip()):
            raise self.error(f"expected a date in quotes, \"YYYY-MM-DD\", \"YYYY-MM\" or \"YYYY\", got "
                             f"{_type_name(value)}", key)
        return value.strip()

    def _number(self, key: str, value: object) -> float | int:
        whole = key in _INT_FIELDS
        if isinstance(value, bool) or not isinstance(value, int | float) or (whole and not isinstance(value, int)):
            kind = "a whole number" if whole else "a number"
            raise self.error(f"expected {kind}, got {_type_name(value)}", key)
        if not math.isfinite(value):
            raise self.error(f"must be a finite number, got {value}", key)
        if value <= 0:
            raise self.error(f"must be positive, got {value} (leave a field out when the GPU lacks it or "
                             "no source gives it; never 0)", key)
        low, high, unit = PHYSICAL_RANGES[key]
        if not low <= value <= high:
            units = f" {unit}" if unit else ""
            raise self.error(f"{value:g} is outside the physical range {low:,g} .. {high:,g}{units} (a typo or "
                             "another unit?)", key)
        return int(value) if whole else float(value)

    def _names(self, key: str, value: object) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(f"expected a list of names in quotes, got {_type_name(value)}", key)
        return tuple(value)

    def _sources(self, value: object) -> dict[str, str]:
        if not isinstance(value, dict):
            raise self.error(f"expected a table mapping fields to where they were read, got {_type_name(value)}",
                             "sources")
        out: dict[str, str] = {}
        for keys, text in value.items():
            if not isinstance(text, str) or not text.strip():
                raise self.error(f"the source of '{keys}' must be text naming the document and the date read",
                                 "sources")
            for key in (k.strip() for k in keys.split(",")):
                if key not in NUMERIC_FIELDS and key not in _STR_FIELDS and key != "device_names":
                    raise self.error(f"names '{key}', which is not a field", "sources")
                out[key] = text
        return out


def _read_toml(path: Path, label: str) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:  # its message carries the line and column
        raise GpuwiseError(f"{label}: not valid TOML: {e}") from None
    except UnicodeDecodeError:
        raise GpuwiseError(f"{label}: not valid TOML: the file is not UTF-8 text") from None
    except OSError as e:
        raise GpuwiseError(f"cannot read catalog file {label}: {e.strerror or e}") from None


def _merge(gpus: dict[str, GPU], data: dict[str, Any], label: str, *, user: bool) -> None:
    """Add the entries of one file to ``gpus`` (keyed by lower-case name): override or add."""
    seen: dict[str, str] = {}
    for name, table in data.items():
        entry = _Entry(label, name)
        values = entry.parse(table)
        key = name.lower()
        if key in seen:
            raise entry.error(f"the same GPU as entry '{seen[key]}' (names are case-insensitive)")
        seen[key] = name
        sources = values.pop("sources", {})
        default_source = f"user catalog {label}"
        for set_field in values:
            if user and set_field not in sources and set_field != "notes":
                sources[set_field] = default_source
        old = gpus.get(key)
        if old is not None:
            gpus[key] = replace(old, **values, sources={**old.sources, **sources})
            continue
        for required in REQUIRED_FIELDS:
            if required not in values:
                others = ", ".join(r for r in REQUIRED_FIELDS if r != required)
                near = Catalog(gpus=tuple(gpus.values())).nearest(name)
                hint = f"; to override a catalog GPU use its exact name, e.g. [{near[0]}]" if near else ""
                raise entry.error(f"required for a new GPU (also required: {others}){hint}", required)
        gpus[key] = GPU(name=name, **values, sources=sources)


# ------------------------------------------------------------------ achievable rates


def achievable_fractions(gpus: Iterable[GPU]) -> tuple[GPU, ...]:
    """Each GPU with the share of its datasheet that microbenchmarks reach: of its tensor peaks, a
    large matmul (``achievable_bf16_tflops`` / ``bf16_tflops``, or FP16's without BF16), applied to its
    TF32, FP16 and FP8 tensor peaks too (the same tensor cores at the same clocks); of its memory bandwidth, a
    STREAM-like triad (``achievable_memory_gbps`` / ``memory_bandwidth_gbps``). Each is the GPU's own
    measurement where one is published, else the mean of the measured GPUs of the same chip (the architecture
    text, e.g. "Ampere (GA100)"; for the matmul share, at the same board power first), else of the same
    family ("Ampere"), else of the same vendor, else of every measured GPU; 1 (the datasheet) if none is.
    The matmul share is borrowed within a card's side, consumer (GeForce) or not, while that side has a
    measurement. Pure: derived from the entries, stated in the ``*_basis`` fields."""
    gpus = tuple(gpus)
    matmul = {g.name: share for g in gpus if (share := _matmul_share(g)) is not None}
    memory = {g.name: g.achievable_memory_gbps / g.memory_bandwidth_gbps for g in gpus
              if g.achievable_memory_gbps and g.memory_bandwidth_gbps}
    out = []
    for g in gpus:
        # Clocks are a segment's: GeForce cards boost past their rated clock (a measured matmul reaches 101-114%
        # of the datasheet), power-capped data-center and workstation parts fall short of it; a card borrows the
        # matmul share of its own side (consumer or not) while that side has a measurement.
        side = tuple(h for h in gpus if _consumer(h) == _consumer(g))
        own_side = any(h.name in matmul for h in side)
        measured = (f"measured: {g.achievable_bf16_tflops} of {g.bf16_tflops} TFLOP/s" if g.achievable_bf16_tflops
                    else f"measured: FP16 {g.achievable_fp16_tflops} of {g.fp16_tflops} TFLOP/s")
        mm_share, mm_basis = _share(g, side if own_side else gpus, matmul, measured,
                                    "the datasheet peak (no measurement)",
                                    kind="consumer " if own_side and _consumer(g) else "", by_power=True)
        bw_share, bw_basis = _share(g, gpus, memory, f"measured: {g.achievable_memory_gbps} of "
                                    f"{g.memory_bandwidth_gbps} GB/s", "the datasheet bandwidth (no measurement)")
        l2, l2_basis = l2_bandwidth(g, gpus)
        out.append(replace(g, achievable_fraction=mm_share, achievable_basis=mm_basis,
                           achievable_bandwidth_fraction=bw_share, achievable_bandwidth_basis=bw_basis,
                           l2_gbps=l2, l2_basis=l2_basis))
    return tuple(out)


def l2_per_sm(gpus: Iterable[GPU]) -> dict[str, float]:
    """The measured L2 read bandwidth per SM (GB/s) of each GPU that has both figures, by name."""
    return {g.name: g.achievable_l2_gbps / g.sm_count for g in gpus if g.achievable_l2_gbps and g.sm_count}


def l2_bandwidth(g: GPU, gpus: tuple[GPU, ...]) -> tuple[float, str]:
    """The L2 read bandwidth of ``g`` (GB/s) and what it rests on: its own measurement, else the L2
    bandwidth per SM of the measured GPUs of its chip (the same L2 slices and crossbar), else of its
    family, times its SMs; 0 without an L2 size, an SM count or a measurement to borrow (then no op is
    priced at cache bandwidth). Not the vendor: AMD's Infinity Cache and NVIDIA's L2 share nothing."""
    if not g.l2_cache_mb:
        return 0.0, "no L2 size in the catalog: no cache model"
    if g.achievable_l2_gbps:
        return g.achievable_l2_gbps, f"measured: {g.achievable_l2_gbps:.0f} GB/s"
    if not g.sm_count:
        return 0.0, "no SM count to scale a measured L2 by: no cache model"
    borrowed = _kin_mean(g, gpus, l2_per_sm(gpus), vendor_wide=False)
    if borrowed is None:
        return 0.0, "no L2 measurement for this GPU, its chip or its family: no cache model"
    per_sm, kin = borrowed
    gbps = per_sm * g.sm_count
    return gbps, f"the measured {kin} GPUs' L2 bandwidth per SM × {g.sm_count} SMs ({gbps:.0f} GB/s)"


def _matmul_share(g: GPU) -> float | None:
    """The measured share of the tensor peak: BF16's, else FP16's (a GPU without BF16 tensor cores)."""
    if g.achievable_bf16_tflops and g.bf16_tflops:
        return g.achievable_bf16_tflops / g.bf16_tflops
    if g.achievable_fp16_tflops and g.fp16_tflops:
        return g.achievable_fp16_tflops / g.fp16_tflops
    return None


def _kin_mean(g: GPU, gpus: tuple[GPU, ...], measured: dict[str, float], *, vendor_wide: bool,
              by_power: bool = False) -> tuple[float, str] | None:
    """The mean of ``measured`` over the GPUs nearest ``g`` that have one: its chip (the architecture text),
    else its family, else (``vendor_wide``) its vendor, else every GPU; with the name of that kin.

    ``by_power`` (the matmul share): a chip's sustained clock is set by its board power (the 350 W H100 PCIe
    reaches 66% of its tensor peak, the 700 W SXM boards 80%; the 70 W T4 65%), so its chip at the same
    power comes first, and past the chip, GPUs of a like power (within 1.5×) before the rest."""
    same_chip = [h for h in gpus if g.architecture and h.architecture == g.architecture]
    family = [h for h in gpus if g.architecture and h.generation == g.generation]
    vendor = [h for h in gpus if h.vendor == g.vendor]
    levels: list[tuple[str, list[GPU]]] = []
    if by_power and g.tdp_w:
        levels.append((f"{g.architecture} {g.tdp_w:g} W", [h for h in same_chip if h.tdp_w == g.tdp_w]))
    levels.append((g.architecture, same_chip))
    if by_power and g.tdp_w:
        like = f"{g.tdp_w / _LIKE_POWER:.0f}-{g.tdp_w * _LIKE_POWER:.0f} W"
        levels += [(f"{g.generation} {like}", [h for h in family if _like_power(h, g)])]
        if vendor_wide:
            levels.append((f"{g.vendor} {like}", [h for h in vendor if _like_power(h, g)]))
    levels.append((g.generation, family))
    if vendor_wide:
        levels += [(g.vendor, vendor), ("", list(gpus))]
    for kin, members in levels:
        values = [measured[h.name] for h in members if h.name in measured]
        if values:
            return sum(values) / len(values), kin
    return None


_LIKE_POWER = 1.5  # board powers within this factor of each other borrow each other's matmul share


def _like_power(h: GPU, g: GPU) -> bool:
    return bool(h.tdp_w and g.tdp_w and 1 / _LIKE_POWER <= h.tdp_w / g.tdp_w <= _LIKE_POWER)


def _consumer(g: GPU) -> bool:
    return g.segment == "consumer"


def _share(g: GPU, gpus: tuple[GPU, ...], measured: dict[str, float], own: str, none: str, kind: str = "",
           *, by_power: bool = False) -> tuple[float, str]:
    if g.name in measured:
        return measured[g.name], own
    borrowed = _kin_mean(g, gpus, measured, vendor_wide=True, by_power=by_power)
    if borrowed is None:
        return 1.0, none
    share, kin = borrowed
    label = f"the mean of the measured {kind}{kin} GPUs" if kin else f"the mean of every measured {kind}GPU"
    return share, f"{label} ({share:.0%})"


# ------------------------------------------------------------------ the catalog


@dataclass(frozen=True)
class Catalog:
    """The GPUs gpuwise knows, in file order; ``files`` are the catalog files read."""

    gpus: tuple[GPU, ...]
    files: tuple[str, ...] = (PACKAGED_LABEL,)

    def all(self) -> list[GPU]:
        return list(self.gpus)

    def names(self) -> list[str]:
        return [g.name for g in self.gpus]

    def has(self, name: str) -> bool:
        return self._find(name) is not None

    def get(self, name: str) -> GPU:
        """The GPU called ``name`` (case-insensitive); an unknown name gets the nearest names."""
        gpu = self._find(name)
        if gpu is not None:
            return gpu
        near = self.nearest(name)
        hint = f"did you mean {', '.join(near)}? " if near else ""
        raise GpuwiseError(
            f"unknown GPU '{name}': {hint}run gpuwise gpus for the list, or add it to your catalog file "
            f"(--catalog PATH or {USER_FILE_NAME} in the gpuwise config directory)"
        )

    def sm_stream_gbps(self) -> float:
        """How fast one NVIDIA SM streams data (GB/s), measured: the mean over the catalog's GPUs with a
        measured L2 read bandwidth (every SM reading at once, te42kyfo/gpu-benches: 31 GB/s per SM on a V100
        to 74 on an H200) of that bandwidth per SM; 0 without one (``Efficiency.sm_stream_gbps``)."""
        per_sm = list(l2_per_sm(g for g in self.gpus if g.vendor == "nvidia").values())
        return sum(per_sm) / len(per_sm) if per_sm else 0.0

    def nearest(self, name: str, n: int = 3) -> list[str]:
        """Up to ``n`` catalog names close to ``name``: those containing it first, then by similarity."""
        wanted = name.strip().lower()
        lower = {g.name.lower(): g.name for g in self.gpus}
        containing = [real for low, real in lower.items() if wanted and wanted in low]
        similar = [lower[m] for m in difflib.get_close_matches(wanted, list(lower), n=n, cutoff=0.5)]
        return list(dict.fromkeys(containing + similar))[:n]

    def filter(self, min_memory_gb: float | None = None, vendor: str | None = None) -> list[GPU]:
        """The GPUs with at least ``min_memory_gb`` of memory and of ``vendor`` (either may be None)."""
        chosen = self.all()
        if vendor is not None:
            vendors = sorted({g.vendor for g in self.gpus})
            wanted = vendor.strip().lower()
            if wanted not in vendors:
                raise GpuwiseError(f"unknown vendor '{vendor}': use --vendor {' | '.join(vendors)}")
            chosen = [g for g in chosen if g.vendor == wanted]
        if min_memory_gb is not None:
            chosen = [g for g in chosen if g.memory_gb >= min_memory_gb]
        return chosen

    def match_device(self, device_name: str) -> GPU | None:
        """The catalog GPU a local device reports itself as (``torch.cuda.get_device_name``), if any."""
        wanted = device_name.strip().lower()
        for g in self.gpus:
            if wanted == g.name.lower() or any(wanted == d.lower() for d in g.device_names):
                return g
        return None

    def match_written(self, name: str) -> GPU | list[GPU]:
        """The catalog GPU a name as published tables write it stands for ("A100 80GB SXM4", "Tesla
        V100-SXM2-16GB", "GeForce RTX 3090", "RTX A6000", "H100 PCIe"): its catalog or device name, else
        the GPU whose name has the same words (brand words dropped, case and separators ignored), else the
        GPUs whose names differ from it only in details (a memory size, a form factor, "Gen5", "HBM3", "RTX"),
        never in a word that names another card ("Ti", "Super", "Ada"). The candidates when that is not one
        GPU ("A100 PCIe": 40 or 80 GB), none when none."""
        exact = self.match_device(name)
        if exact is not None:
            return exact
        wanted = _words(name)
        if not wanted:
            return []
        named = [(g, words) for g in self.gpus for words in (_words(n) for n in (g.name, *g.device_names))]
        same = list(dict.fromkeys(g for g, w in named if w == wanted))
        if not same:  # the same model word ("h100"), differing in details only; the most words shared win
            shared: dict[str, tuple[int, GPU]] = {}
            for g, w in named:
                if _details_agree(w, wanted):
                    shared[g.name] = max(shared.get(g.name, (0, g)), (len(w & wanted), g), key=lambda t: t[0])
            most = max((n for n, _ in shared.values()), default=0)
            same = [g for n, g in shared.values() if n == most]
        return same[0] if len(same) == 1 else same

    def _find(self, name: str) -> GPU | None:
        wanted = name.strip().lower()
        return next((g for g in self.gpus if g.name.lower() == wanted), None)


# Words a published table adds to a GPU's name that name no particular GPU.
_BRAND_WORDS = frozenset({"nvidia", "geforce", "tesla", "amd", "instinct", "gpu", "tensor", "core"})


# Words that tell boards of one GPU apart (memory size, form factor, bus generation, memory type), or are
# decoration, never two different GPUs: two names may differ in them where one name leaves the kind out,
# not where both give it ("PCIe" is not "SXM5").
_DETAILS = tuple(re.compile(p) for p in (r"\d+gb", r"pcie\d*|sxm\d*", r"gen\d+", r"hbm\d*e?|gddr\d+x?",
                                          r"nvlink", r"rtx"))


def _detail(word: str) -> bool:
    return any(d.fullmatch(word) for d in _DETAILS)


def _details_agree(a: frozenset[str], b: frozenset[str]) -> bool:
    """Whether two names' words differ in details only, and in no detail both give."""
    if not all(_detail(x) for x in a ^ b) or not any(not _detail(x) for x in a & b):
        return False
    for kind in _DETAILS:
        in_a, in_b = {x for x in a if kind.fullmatch(x)}, {x for x in b if kind.fullmatch(x)}
        if in_a and in_b and not in_a & in_b:
            return False
    return True


def _words(name: str) -> frozenset[str]:
    """A GPU name's words for matching: lower case, split at anything but letters and digits, a memory size
    joined to its unit ("80 GB" -> "80gb"), brand words dropped; a form factor with a generation ("sxm5")
    also reads as the bare form factor ("sxm"), so "H100 SXM" finds the SXM5 boards."""
    parts = re.findall(r"[a-z0-9]+", name.lower())
    words: list[str] = []
    for part in parts:
        if part in ("gb", "g") and words and words[-1].isdigit():
            words[-1] += "gb"
        elif part not in _BRAND_WORDS:
            words.append(part)
    extra = [m.group(1) for w in words if (m := re.fullmatch(r"(sxm|pcie)\d+", w))]
    return frozenset(words + extra)


def default_user_catalog() -> Path:
    """Where a user's own catalog lives when ``--catalog`` is not given."""
    import platformdirs

    return Path(platformdirs.user_config_dir("gpuwise")) / USER_FILE_NAME


def parse_catalog_text(text: str, label: str, base: Catalog | None = None) -> Catalog:
    """A catalog from TOML text, on top of ``base`` (entries there are overridden or kept)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise GpuwiseError(f"{label}: not valid TOML: {e}") from None
    gpus = {g.name.lower(): g for g in base.gpus} if base else {}
    _merge(gpus, data, label, user=base is not None)
    return Catalog(gpus=achievable_fractions(gpus.values()), files=(*(base.files if base else ()), label))


def load_catalog(user_file: Path | None = None) -> Catalog:
    """The packaged catalog, then ``user_file`` (``--catalog``), else the config-dir file if it exists."""
    text = resources.files("gpuwise.hardware").joinpath("data", "gpus.toml").read_text(encoding="utf-8")
    catalog = parse_catalog_text(text, PACKAGED_LABEL)
    if user_file is None:
        default = default_user_catalog()
        if not default.is_file():
            return catalog
        user_file = default
    elif user_file.is_dir():
        raise GpuwiseError(f"--catalog {user_file} is a directory: pass a TOML file, e.g. {user_file / USER_FILE_NAME}")
    elif not user_file.is_file():
        raise GpuwiseError(f"catalog file {user_file} does not exist: pass an existing TOML file to --catalog")
    gpus = {g.name.lower(): g for g in catalog.gpus}
    _merge(gpus, _read_toml(user_file, str(user_file)), str(user_file), user=True)
    return Catalog(gpus=achievable_fractions(gpus.values()), files=(*catalog.files, str(user_file)))


_MOVED_TO_LOCAL = ("LocalCPU", "local_cpu_entry", "DetectedGPU", "detect_gpus")


def __getattr__(name: str) -> Any:
    """The descriptions of this machine moved to ``gpuwise.hardware.local``; importing them from here still
    works, lazily, so that loading the catalog detects nothing."""
    if name in _MOVED_TO_LOCAL:
        from gpuwise.hardware import local

        return getattr(local, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
