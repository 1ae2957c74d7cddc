"""What was measured, and on what: frozen records that bench and train make, the results database stores and
``gpuwise.hardware.local`` fills in for this machine. They sit below all three (they import only ``display``), so
neither the store nor the hardware module imports ``gpuwise.bench``; ``gpuwise.bench.result`` re-exports them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from gpuwise.display import Displayed, gib, seconds


@dataclass(frozen=True)
class Hardware:
    """The machine a measurement was taken on."""

    cpu_model: str
    cpu_cores: int  # physical cores
    cpu_threads: int  # logical CPUs torch may use
    ram_bytes: int
    gpu_name: str | None = None  # the measured GPU, None for a CPU measurement
    gpu_memory_bytes: int | None = None
    gpu_count: int = 0  # GPUs on the machine
    gpu_driver: str | None = None
    cuda_version: str | None = None


@dataclass(frozen=True)
class Software:
    torch: str
    torchvision: str
    gpuwise: str
    python: str


@dataclass(frozen=True)
class Ceilings:
    """Achievable rates of one device, measured by `gpuwise calibrate`."""

    device: str  # "cpu", "cuda:0"
    device_name: str
    matmul_tflops: dict[str, float]  # dtype name ("float32", "tf32", "bfloat16", "float16") -> dense GEMM TFLOP/s
    memory_gbps: float  # copy bandwidth, bytes read + written per second / 1e9
    measured_at: str  # ISO 8601, UTC
    # A CPU's last-level cache (sysfs), read with the rates so that a prediction from stored ceilings
    # reads no hardware; None for a GPU, and on records stored before the field (filled on load).
    cache_bytes: int | None = None


@dataclass(frozen=True)
class Timing:
    """Step times of the timed steps (warm-up excluded), in seconds."""

    median_s: float
    p10_s: float
    p90_s: float
    num_steps: int
    num_warmup: int
    step_times_s: tuple[float, ...] = field(default=())

    @property
    def spread(self) -> float:
        """(p90 - p10) / median."""
        return (self.p90_s - self.p10_s) / self.median_s if self.median_s else 0.0


@dataclass(frozen=True, repr=False)
class BenchResult(Displayed):
    """One `gpuwise bench` measurement of one workload on one device."""

    workload: str
    family: str
    sample_unit: str
    batch_size: int
    seq_len: int | None
    image_size: int | None
    precision: str
    optimizer: str
    device: str  # "cpu" or "cuda:N"
    device_name: str
    timing: Timing
    samples_per_s: float  # batch_size / median step time
    tokens_per_s: float | None  # for sequence workloads
    training_flops_per_step: int  # from the profile (matrix products, fwd + bwd)
    achieved_tflops: float  # training_flops_per_step / median step time / 1e12
    peak_tflops: float | None  # the device's measured ceiling at this precision
    mfu: float | None  # achieved / peak
    peak_memory_bytes: int  # CUDA: max_memory_allocated; CPU: live-tensor tracker
    peak_reserved_bytes: int | None  # CUDA: max_memory_reserved
    hardware: Hardware
    software: Software
    created_at: str  # ISO 8601, UTC
    batch_size_auto: bool = False  # found by --batch-size auto
    origin: str = "bench"  # "bench": `gpuwise bench` on a fixed batch; "train": `gpuwise train` on its data
    num_devices: int = 1  # processes that trained together (train with DDP/FSDP); batch_size is per device
    predicted_step_s: float | None = None  # train: the prediction for this hardware (plan's model), if any
    prediction_provenance: str | None = None  # "measured here", "extrapolated ...", "analytical ..."
    # How the step ran (train's run settings; a bench step is one eager micro batch without recompute):
    # a step is grad_accum micro batches of batch_size and one optimizer update.
    activation_checkpointing: str = "none"
    grad_accum: int = 1
    compiled: bool = False
    fp8: bool = False  # the blocks' linear layers in FP8 (train --fp8)
    log_path: str | None = None  # train: the run's per-step metrics (metrics.jsonl), if it kept them
    id: int | None = None  # row id once stored

    def _summary(self) -> list[tuple[str, str]]:
        t = self.timing
        return [
            ("workload", repr(self.workload)), ("device", repr(f"{self.device} ({self.device_name})")),
            ("batch_size", str(self.batch_size)), ("precision", repr(self.precision)),
            ("step", f"{seconds(t.median_s)} (p10 {seconds(t.p10_s)}, p90 {seconds(t.p90_s)})"),
            ("samples_per_s", f"{self.samples_per_s:,.1f}"), ("achieved", f"{self.achieved_tflops:.3g} TFLOP/s"),
            ("mfu", f"{self.mfu:.0%}" if self.mfu is not None else "None"),
            ("peak_memory", gib(self.peak_memory_bytes)),
        ]

    def _rows(self) -> list[dict[str, Any]]:
        """One row: the measurement, timing fields flattened."""
        data = self.to_dict()
        timing, hardware, software = data.pop("timing"), data.pop("hardware"), data.pop("software")
        return [{**data, **{f"timing_{k}": v for k, v in timing.items()}, "cpu_model": hardware["cpu_model"],
                 "torch": software["torch"]}]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["timing"].pop("step_times_s", None)
        data["timing"]["spread"] = self.timing.spread
        return data
