"""The machine gpuwise runs on: CPU, RAM, GPUs, driver and library versions.

This is the only module of ``gpuwise.hardware`` that does I/O (``/proc/cpuinfo``, NVML or
``nvidia-smi``, CUDA queries). Nothing runs at import; each function detects when called.
"""

from __future__ import annotations

import platform
import re
import shutil
import socket
import subprocess
from dataclasses import replace
from importlib import metadata

import psutil
import torch

from gpuwise.bench.result import Hardware, Software
from gpuwise.errors import GpuwiseError

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
    from gpuwise import __version__

    return Software(
        torch=torch.__version__,
        torchvision=metadata.version("torchvision"),
        gpuwise=__version__,
        python=platform.python_version(),
    )


def available_devices() -> list[str]:
    """``cpu`` and ``cuda:0``, ``cuda:1``, … for each visible GPU."""
    num_gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return ["cpu", *(f"cuda:{i}" for i in range(num_gpus))]


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
    device = check_device(device)
    return cpu_model() if device == "cpu" else torch.cuda.get_device_name(_cuda_index(device))


def machine_key() -> str:
    """A stable id of this host for caching its ceilings: hostname, CPU model and GPU names.

    Changing which GPUs are visible (``CUDA_VISIBLE_DEVICES``) changes the key, so a cached
    ``cuda:0`` ceiling is never read for a different card.
    """
    gpus = [torch.cuda.get_device_name(i) for i in range(len(available_devices()) - 1)]
    return " | ".join([socket.gethostname(), cpu_model(), ", ".join(gpus) if gpus else "no GPU"])


def free_memory_bytes(device: str) -> int:
    """Memory a new allocation can use now: available RAM for ``cpu``, free GPU memory for ``cuda:N``."""
    device = check_device(device)
    if device == "cpu":
        return int(psutil.virtual_memory().available)
    free_bytes, _total = torch.cuda.mem_get_info(_cuda_index(device))
    return int(free_bytes)


def _cuda_index(device: str) -> int:
    return int(device.partition(":")[2])


def _run(cmd: list[str]) -> str | None:
    """stdout of a short query command, or None if it fails or hangs (a wedged driver can)."""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=_QUERY_TIMEOUT_S, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None
