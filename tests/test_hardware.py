"""Local machine detection and --device validation."""

from __future__ import annotations

import platform
import shutil
import socket
import subprocess
import sys

import pytest
import torch

import gpuwise
from gpuwise.errors import GpuwiseError
from gpuwise.hardware.local import (
    available_devices,
    check_device,
    free_memory_bytes,
    gpu_driver_version,
    local_hardware,
    local_software,
    machine_key,
)

GIB = 1024**3
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU (torch.cuda is unavailable)")


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


@pytest.fixture
def two_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: ["NVIDIA H100", "NVIDIA A100"][i])


def test_cpu_is_always_a_device() -> None:
    assert available_devices()[0] == "cpu"
    assert check_device("cpu") == "cpu"
    assert check_device(" CPU ") == "cpu"


@pytest.mark.usefixtures("no_gpu")
@pytest.mark.parametrize("name", ["cuda", "cuda:0", "cuda:1"])
def test_cuda_without_a_gpu_names_the_cpu(name: str) -> None:
    assert available_devices() == ["cpu"]
    with pytest.raises(GpuwiseError, match=rf"^unknown device '{name}': this machine has cpu only; use --device cpu$"):
        check_device(name)


@pytest.mark.usefixtures("no_gpu")
@pytest.mark.parametrize("name", ["tpu", "cuda:x", "cuda:-1", "cuda0", "", "gpu"])
def test_malformed_device_says_what_a_device_looks_like(name: str) -> None:
    with pytest.raises(GpuwiseError, match=r"a device is cpu, cuda or cuda:N; this machine has cpu only"):
        check_device(name)


@pytest.mark.usefixtures("two_gpus")
def test_cuda_names_on_a_two_gpu_machine() -> None:
    assert available_devices() == ["cpu", "cuda:0", "cuda:1"]
    assert check_device("cuda") == "cuda:0"
    assert check_device("CUDA:1") == "cuda:1"
    with pytest.raises(GpuwiseError, match=r"unknown device 'cuda:3': this machine has cpu, cuda:0, cuda:1; use"):
        check_device("cuda:3")


def test_cpu_hardware_is_plausible() -> None:
    hw = local_hardware("cpu")
    assert hw.cpu_model and hw.cpu_model != "unknown CPU"
    assert hw.cpu_cores >= 1
    assert hw.cpu_threads == torch.get_num_threads() >= 1
    assert hw.ram_bytes > 1 * GIB
    assert hw.gpu_name is None and hw.gpu_memory_bytes is None


def test_software_versions() -> None:
    sw = local_software()
    assert sw.torch == torch.__version__
    assert sw.gpuwise == gpuwise.__version__
    assert sw.python == platform.python_version()
    assert sw.torchvision[0].isdigit()


def test_free_memory_is_within_ram() -> None:
    assert 0 < free_memory_bytes("cpu") <= local_hardware("cpu").ram_bytes


def test_machine_key_is_stable_and_names_the_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    cpu_only = machine_key()
    assert cpu_only == machine_key()
    assert socket.gethostname() in cpu_only
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "NVIDIA H100")
    with_gpu = machine_key()
    assert with_gpu != cpu_only
    assert "NVIDIA H100" in with_gpu


def test_driver_version_is_none_without_nvml_or_nvidia_smi(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert gpu_driver_version() is None


def test_a_hanging_nvidia_smi_is_cut_off(monkeypatch: pytest.MonkeyPatch) -> None:
    def hang(cmd: list[str], **kwargs: object) -> None:
        assert kwargs["timeout"] is not None
        raise subprocess.TimeoutExpired(cmd, float(str(kwargs["timeout"])))

    monkeypatch.setitem(sys.modules, "pynvml", None)
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/nvidia-smi")
    monkeypatch.setattr(subprocess, "run", hang)
    assert gpu_driver_version() is None


def test_driver_version_from_nvidia_smi(monkeypatch: pytest.MonkeyPatch) -> None:
    def smi(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        assert "--query-gpu=driver_version" in cmd
        return subprocess.CompletedProcess(cmd, 0, stdout="570.86.15\n570.86.15\n", stderr="")

    monkeypatch.setitem(sys.modules, "pynvml", None)
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/nvidia-smi")
    monkeypatch.setattr(subprocess, "run", smi)
    assert gpu_driver_version() == "570.86.15"


@pytest.mark.cuda
@needs_cuda
def test_gpu_hardware_is_plausible() -> None:
    hw = local_hardware("cuda")
    assert hw.gpu_name
    assert hw.gpu_memory_bytes is not None and hw.gpu_memory_bytes > 1 * GIB
    assert hw.gpu_count == torch.cuda.device_count() >= 1
    assert hw.cuda_version == torch.version.cuda
    assert 0 < free_memory_bytes("cuda:0") <= hw.gpu_memory_bytes
    assert "cuda:0" in available_devices()
