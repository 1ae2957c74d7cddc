"""The machine gpuwise runs on: CPU, RAM, GPUs, driver and library versions.

Nothing runs at import; each function detects when called. torch is imported only by the functions
that ask CUDA, so describing the CPU and listing NVIDIA GPUs through ``nvidia-smi`` stay fast.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import socket
import subprocess
from dataclasses import asdict, dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from gpuwise.errors import GpuwiseError
from gpuwise.records import Hardware, Software

if TYPE_CHECKING:
    from gpuwise.hardware.catalog import Catalog

_QUERY_TIMEOUT_S = 5.0


def cpu_model() -> str:
    """The CPU's marketing name, e.g. 'AMD EPYC 9654 96-Core Processor'."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                # x86 names it "model name"; some ARM kernels only give "Model" or "Hardware".
                if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                    return value.strip()
    except OSError:
        pass  # not Linux: fall back to what platform knows
    if platform.system() == "Darwin":
        name = _run(["sysctl", "-n", "machdep.cpu.brand_string"])
        if name:
            return name
    return platform.processor() or platform.machine() or "unknown CPU"


def cpu_cache_bytes() -> int:
    """The CPU's last-level cache in bytes, from sysfs (Linux); 0 where it cannot be read."""
    from pathlib import Path

    best = (0, 0)  # (level, bytes)
    for index in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            level = int((index / "level").read_text())
            kind = (index / "type").read_text().strip()
            size = (index / "size").read_text().strip()
        except (OSError, ValueError):
            continue
        match = re.fullmatch(r"(\d+)([KMG]?)", size)
        if kind == "Instruction" or match is None:
            continue
        number = int(match[1]) << {"": 0, "K": 10, "M": 20, "G": 30}[match[2]]
        best = max(best, (level, number))
    return best[1]


def local_hardware(device: str = "cpu") -> Hardware:
    """Describe this machine; for a ``cuda:N`` device also that GPU."""
    import torch

    device = check_device(device)
    num_threads = torch.get_num_threads()
    cores = psutil.cpu_count(logical=False) or psutil.cpu_count(logical=True) or num_threads
    hardware = Hardware(
        cpu_model=cpu_model(),
        cpu_cores=int(cores),
        cpu_threads=num_threads,
        ram_bytes=int(psutil.virtual_memory().total),
        gpu_count=len(available_devices()) - 1,
    )
    if device == "cpu":
        return hardware
    props = torch.cuda.get_device_properties(_cuda_index(device))
    return replace(
        hardware,
        gpu_name=props.name,
        gpu_memory_bytes=int(props.total_memory),
        gpu_driver=gpu_driver_version(),
        cuda_version=torch.version.cuda,
    )


def gpu_driver_version() -> str | None:
    """The NVIDIA driver version via NVML if installed, else ``nvidia-smi``; None if neither answers."""
    try:
        import pynvml  # optional: nvidia-ml-py

        pynvml.nvmlInit()
        try:
            version = pynvml.nvmlSystemGetDriverVersion()
        finally:
            pynvml.nvmlShutdown()
        return version.decode() if isinstance(version, bytes) else str(version)
    except Exception:  # no module, no NVML library or no driver: try nvidia-smi
        pass
    if shutil.which("nvidia-smi") is None:
        return None
    out = _run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"])
    return out.splitlines()[0].strip() if out else None


def local_software() -> Software:
    import torch

    from gpuwise import __version__

    return Software(
        torch=torch.__version__,
        torchvision=metadata.version("torchvision"),
        gpuwise=__version__,
        python=platform.python_version(),
    )


def cuda_device_count() -> int:
    """The GPUs PyTorch can run on here (0 without CUDA): what bench and train place work on."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def available_devices() -> list[str]:
    """``cpu`` and ``cuda:0``, ``cuda:1``, … for each visible GPU."""
    return ["cpu", *(f"cuda:{i}" for i in range(cuda_device_count()))]


def check_device(name: str) -> str:
    """Validate a ``--device`` value; returns the canonical name (``cuda`` -> ``cuda:0``)."""
    wanted = name.strip().lower()
    if wanted == "cuda":
        wanted = "cuda:0"
    devices = available_devices()
    if wanted in devices:
        return wanted
    well_formed = wanted == "cpu" or re.fullmatch(r"cuda:\d+", wanted) is not None
    form = "" if well_formed else "a device is cpu, cuda or cuda:N; "
    if len(devices) == 1:
        raise GpuwiseError(f"unknown device '{name}': {form}this machine has cpu only; use --device cpu")
    raise GpuwiseError(
        f"unknown device '{name}': {form}this machine has {', '.join(devices)}; use --device with one of them"
    )


def device_name(device: str) -> str:
    """The CPU model for ``cpu``, the GPU's name for ``cuda:N``."""
    import torch

    device = check_device(device)
    return cpu_model() if device == "cpu" else torch.cuda.get_device_name(_cuda_index(device))


def machine_key() -> str:
    """A stable id of this host for caching its ceilings: hostname, CPU model and GPU names.

    Changing which GPUs are visible (``CUDA_VISIBLE_DEVICES``) changes the key, so a cached
    ``cuda:0`` ceiling is never read for a different card.
    """
    import torch

    gpus = [torch.cuda.get_device_name(i) for i in range(len(available_devices()) - 1)]
    return " | ".join([socket.gethostname(), cpu_model(), ", ".join(gpus) if gpus else "no GPU"])


def free_memory_bytes(device: str) -> int:
    """Memory a new allocation can use now: available RAM for ``cpu``, free GPU memory for ``cuda:N``."""
    device = check_device(device)
    if device == "cpu":
        return int(psutil.virtual_memory().available)
    import torch

    free_bytes, _total = torch.cuda.mem_get_info(_cuda_index(device))
    return int(free_bytes)


def physical_cores() -> int:
    return int(psutil.cpu_count(logical=False) or psutil.cpu_count(logical=True) or 1)


def logical_cpus() -> int:
    """The logical CPUs this process may run on (its affinity mask: a container's or taskset's share)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def ram_bytes() -> int:
    return int(psutil.virtual_memory().total)


def nvidia_smi_gpus() -> list[tuple[str, int]] | None:
    """The NVIDIA GPUs here as (name, memory bytes) in CUDA's numbering, read without initialising CUDA.

    ``[]`` when there is no NVIDIA driver and no ROCm device; ``None`` when only CUDA can tell: ROCm,
    ``CUDA_VISIBLE_DEVICES`` set (it renumbers), no ``nvidia-smi``, or GPUs of several kinds (CUDA puts
    the fastest first, ``nvidia-smi`` orders them by PCI bus).
    """
    if os.environ.get("CUDA_VISIBLE_DEVICES") is not None or Path("/dev/kfd").exists():
        return None
    has_driver = Path("/proc/driver/nvidia/gpus").exists()
    if shutil.which("nvidia-smi") is None:
        return None if has_driver else []
    out = _run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"])
    if out is None:
        return None if has_driver else []
    rows = []
    for line in out.splitlines():
        name, _, mib = line.rpartition(",")
        if not name or not mib.strip().isdigit():
            return None
        rows.append((name.strip(), int(mib) * 2**20))
    return rows if len({name for name, _ in rows}) <= 1 else None


def _cuda_index(device: str) -> int:
    return int(device.partition(":")[2])


def _run(cmd: list[str]) -> str | None:
    """stdout of a short query command, or None if it fails or hangs (a wedged driver can)."""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=_QUERY_TIMEOUT_S, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


# ------------------------------------------------------------------ the CPU and GPUs, as the catalog names them


@dataclass(frozen=True)
class LocalCPU:
    """The local CPU as a catalog-like entry (``gpuwise gpus --json``'s ``local.cpu``); the rates are None here."""

    model: str
    num_cores: int  # physical
    num_threads: int  # logical CPUs this process may run on
    memory_gb: float  # RAM, 1e9 bytes
    fp32_tflops: float | None = None  # measured dense float32 GEMM
    bf16_tflops: float | None = None  # measured dense bfloat16 GEMM (fast or emulated)
    memory_bandwidth_gbps: float | None = None  # measured copy, bytes read + written
    measured_at: str | None = None
    sources: dict[str, str] = field(default_factory=dict, hash=False)
    name: str = "cpu"
    vendor: str = "cpu"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def local_cpu_entry() -> LocalCPU:
    """This machine's CPU: model, cores and RAM detected now. The rates stay None: measuring them is
    ``gpuwise calibrate``'s (``gpuwise.bench.calibrate.cached_ceilings``), never a description's."""
    detected = "detected on this machine (/proc/cpuinfo or the OS, psutil)"
    sources = {"model": detected, "num_cores": detected, "memory_gb": detected,
               "num_threads": "os.sched_getaffinity: the logical CPUs this process may run on"}
    return LocalCPU(model=cpu_model(), num_cores=physical_cores(), num_threads=logical_cpus(),
                    memory_gb=ram_bytes() / 1e9, sources=sources)


@dataclass(frozen=True)
class DetectedGPU:
    """A GPU visible on this machine and the catalog entry it reports itself as, if any."""

    device: str  # "cuda:0"
    device_name: str
    memory_bytes: int
    catalog_name: str | None


def detect_gpus(catalog: Catalog) -> list[DetectedGPU]:
    """The CUDA devices visible now, each matched to a catalog entry by its reported name.

    ``nvidia-smi`` answers where it can (no CUDA initialised, no torch imported: ``gpuwise gpus`` stays
    fast); CUDA answers the rest (ROCm, ``CUDA_VISIBLE_DEVICES``, mixed GPUs).
    """
    listed = nvidia_smi_gpus()
    if listed is None:
        listed = _cuda_gpus()
    found = []
    for i, (name, memory_bytes) in enumerate(listed):
        match = catalog.match_device(name)
        found.append(DetectedGPU(device=f"cuda:{i}", device_name=name, memory_bytes=memory_bytes,
                                 catalog_name=match.name if match else None))
    return found


def _cuda_gpus() -> list[tuple[str, int]]:
    import torch

    if not torch.cuda.is_available():
        return []
    return [(torch.cuda.get_device_name(i), int(torch.cuda.get_device_properties(i).total_memory))
            for i in range(torch.cuda.device_count())]
