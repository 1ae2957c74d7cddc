"""The input pipeline as a ceiling: how many images a GPU's share of the CPU can decode and augment.

An image-classification run that reads JPEGs (``gpuwise train --data DIR``: PIL decode,
RandomResizedCrop, flip, normalize, one DataLoader worker per CPU thread) cannot train faster than
its CPU threads prepare images: rate per thread × threads per GPU × GPUs. The rate per thread is
measured (``benchmarks/input_pipeline.py`` writes ``input_pipeline.json``); the threads per GPU are
the user's (``--cpu-cores-per-gpu``), else the vCPUs per GPU of the cloud instances each class of
GPU is rented in (``CPU_THREADS_PER_GPU``). A pipeline that decodes on the GPU (NVIDIA DALI), or
pre-decoded or synthetic data, is not bound by it; the model says which bound it applied.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gpuwise.hardware.catalog import GPU

RATE_FILE = "input_pipeline.json"
IMAGE_FAMILY = "image classification"

# vCPUs per GPU of the instances each class of GPU is typically rented in (AWS EC2 instance type pages,
# accelerated computing, their published vCPU and GPU counts, not re-read in this session; the user's own
# machine: --cpu-cores-per-gpu):
# - Hopper/Blackwell boards: p5.48xlarge, 192 vCPUs for 8 H100 (p5e/p5en, H200: the same) -> 24
# - A100 boards: p4d.24xlarge, 96 vCPUs for 8 A100 -> 12
# - V100 boards: p3.16xlarge, 64 vCPUs for 8 V100 -> 8
# - PCIe data-center cards (L40S, L4, A10G): g6e/g6/g5.48xlarge, 192 vCPUs for 8 GPUs -> 24
# - T4: g4dn.12xlarge, 48 vCPUs for 4 T4 -> 12
# - anything else (GeForce, workstation, AMD): an assumption, a 16-thread desktop CPU per GPU -> 16
CPU_THREADS_PER_GPU = {"hopper+": 24, "ampere-board": 12, "volta-board": 8, "datacenter-pcie": 24, "t4": 12,
                       "other": 16}


@dataclass(frozen=True)
class InputRate:
    images_per_s_per_thread: float
    image_size: int
    source: str


def shipped_input_rate() -> InputRate:
    data = json.loads(resources.files("gpuwise.predict").joinpath(RATE_FILE).read_text())
    return InputRate(images_per_s_per_thread=float(data["images_per_s_per_thread"]),
                     image_size=int(data["image_size"]), source=str(data["source"]))


def default_cpu_threads(gpu: GPU) -> tuple[int, str]:
    """The stated default vCPUs per GPU for a catalog GPU, and the instance class it comes from."""
    family = gpu.generation.lower()
    if gpu.nvlink_gbps and family in ("hopper", "blackwell"):
        return CPU_THREADS_PER_GPU["hopper+"], "AWS p5: 192 vCPUs for 8 GPUs"
    if gpu.nvlink_gbps and family == "ampere":
        return CPU_THREADS_PER_GPU["ampere-board"], "AWS p4d: 96 vCPUs for 8 A100"
    if gpu.nvlink_gbps and family == "volta":
        return CPU_THREADS_PER_GPU["volta-board"], "AWS p3.16xlarge: 64 vCPUs for 8 V100"
    if gpu.name == "T4":
        return CPU_THREADS_PER_GPU["t4"], "AWS g4dn.12xlarge: 48 vCPUs for 4 T4"
    if gpu.vendor == "nvidia" and gpu.name.startswith(("L4", "L40", "A10", "H100-PCIe", "H100-NVL", "A100-PCIe")):
        return CPU_THREADS_PER_GPU["datacenter-pcie"], "AWS g6e/g6/g5.48xlarge: 192 vCPUs for 8 GPUs"
    return CPU_THREADS_PER_GPU["other"], "assumed: a 16-thread desktop CPU per GPU"


def input_ceiling(family: str, sample_unit: str, threads_per_gpu: int, num_gpus: int,
                  rate: InputRate | None = None) -> float | None:
    """Images per second the CPU threads can feed ``num_gpus`` GPUs; None where no decode is modelled
    (workloads other than image classification)."""
    if family != IMAGE_FAMILY or sample_unit != "image":
        return None
    rate = rate or shipped_input_rate()
    return rate.images_per_s_per_thread * threads_per_gpu * num_gpus
