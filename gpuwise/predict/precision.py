"""``--precision auto``: the precision a practitioner would train in on each device, and why.

- A GPU with BF16 tensor cores (the catalog gives a BF16 rate: A100, H100, L4, RTX 3090 and later,
  MI250X/MI300X): amp-bf16, no loss scaling needed.
- A GPU with FP16 tensor cores but no BF16 (V100, T4, Turing workstation cards): amp-fp16 with a
  gradient scaler, as NVIDIA's own training recipes for those GPUs run.
- A GPU with neither: fp32.
- A CPU: amp-bf16 only where its bf16 matrix products are faster than its fp32 ones, as measured by
  ``gpuwise calibrate`` (AMX, AVX512-BF16); else fp32. A CPU that autocasts to bf16 without fast
  bf16 units runs slower than in fp32.

Each choice carries its reason, which the output states. An explicit precision is never changed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gpuwise.config import Precision

if TYPE_CHECKING:
    from gpuwise.hardware.catalog import GPU
    from gpuwise.records import Ceilings


def gpu_precision(gpu: GPU) -> tuple[Precision, str]:
    """What ``auto`` trains in on a catalog GPU, and why."""
    if gpu.bf16_tflops:
        return Precision.AMP_BF16, "BF16 tensor cores"
    if gpu.fp16_tflops:
        return Precision.AMP_FP16, "FP16 tensor cores, no BF16"
    return Precision.FP32, "no 16-bit tensor cores in the catalog"


def cpu_precision(ceilings: Ceilings) -> tuple[Precision, str]:
    """What ``auto`` trains in on a calibrated CPU, and why (its measured GEMM rates decide)."""
    fp32 = ceilings.matmul_tflops.get("float32", 0.0)
    bf16 = ceilings.matmul_tflops.get("bfloat16", 0.0)
    if bf16 > fp32 > 0:
        return Precision.AMP_BF16, f"its bf16 matmuls measured {bf16 / fp32:.1f}× its fp32 ones"
    return Precision.FP32, "its bf16 matmuls are measured no faster than fp32"


def cpu_precision_note(asked: Precision, ceilings: Ceilings) -> str:
    """A line for amp-bf16 asked for on a CPU whose bf16 matrix products measured slower than its fp32 ones
    (no AVX512-BF16 or AMX: oneDNN emulates bf16, and a bf16 LSTM or GRU runs a few ops per time step): the
    precision is kept as asked, and the user told before a step runs how much slower its products are. ''
    otherwise, and where ``calibrate`` measured no bf16 rate."""
    fp32 = ceilings.matmul_tflops.get("float32", 0.0)
    bf16 = ceilings.matmul_tflops.get("bfloat16", 0.0)
    if asked is not Precision.AMP_BF16 or not 0 < bf16 < fp32:
        return ""
    return (f"amp-bf16 on the CPU as asked, but its bf16 matmuls measured {bf16 / fp32:.2f}× its fp32 ones (no "
            "AVX512-BF16 or AMX): expect a slower step than fp32; --precision auto picks fp32 here")


def resolve(asked: Precision, choice: tuple[Precision, str]) -> tuple[Precision, str]:
    """``asked`` itself unless it is ``auto``; then the device's choice with the reason ('' when asked)."""
    return choice if asked is Precision.AUTO else (asked, "")
