"""One option in full: a workload on N GPUs of one kind (``gpuwise predict``), without a data set.

``plan`` makes many options and prices their runs; this makes one, with the same ``OptionMaker``
(``gpuwise.predict.option``) and bands (``gpuwise.predict.bands``). ``gpuwise.plan`` re-exports both names.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

from gpuwise.config import (
    Precision,
    RunSettings,
    StepConfig,
    Strategy,
    WithStep,
    check_batch_size,
    check_count,
    check_positive,
)
from gpuwise.errors import GpuwiseError
from gpuwise.hardware.catalog import Catalog, load_catalog
from gpuwise.predict.bands import BAND
from gpuwise.predict.option import Option, OptionMaker, modellable
from gpuwise.predict.parallel import check_gpus_per_node
from gpuwise.predict.precision import gpu_precision as auto_gpu
from gpuwise.predict.precision import resolve
from gpuwise.predict.roofline import Efficiency
from gpuwise.predict.step import ProfileCache
from gpuwise.workloads import get_workload


@dataclass(frozen=True)
class PredictConfig(WithStep):
    """One option of a plan: a step of a workload on ``num_gpus`` GPUs of one kind.
    ``PredictConfig.of(workload=..., gpu=...)`` takes the step's fields flat; its precision defaults to auto
    (by the GPU: ``gpuwise.predict.precision``)."""

    STEP_DEFAULTS: ClassVar[dict[str, Any]] = {"precision": Precision.AUTO}

    step: StepConfig
    gpu: str
    num_gpus: int = 1
    network_gbits: float | None = None  # None: the stated default of the GPU's class
    catalog_path: Path | None = None
    settings: RunSettings = field(default_factory=RunSettings)
    cpu_threads_per_gpu: int | None = None  # decoding images (gpuwise.predict.inputs); None: by GPU class
    gpus_per_node: int | None = None  # GPUs in one host, beyond which the ring crosses the network; None: 8
    # The all-reduce bus bandwidth measured within one node, GB/s (nccl-tests); None: the catalog link × its share
    busbw_gbs: float | None = None

    def __post_init__(self) -> None:
        check_gpus_per_node(self.gpus_per_node)
        if self.cpu_threads_per_gpu is not None:
            check_count(self.cpu_threads_per_gpu, "--cpu-cores-per-gpu")
        if isinstance(self.num_gpus, bool) or not isinstance(self.num_gpus, int) or self.num_gpus < 1:
            raise GpuwiseError(f"--num-gpus must be a positive integer, got {self.num_gpus!r}")
        if self.batch_size is not None:
            check_batch_size(self.batch_size)
        if self.network_gbits is not None:
            check_positive(self.network_gbits, "--network-gbps", "Gb/s per GPU")
        if self.busbw_gbs is not None:
            check_positive(self.busbw_gbs, "--busbw", "GB/s, as nccl-tests' all_reduce_perf prints busbw")
        if self.settings.strategy is Strategy.FSDP and self.num_gpus == 1:
            raise GpuwiseError("--strategy fsdp shards over several GPUs: use --num-gpus N with N >= 2, "
                               "or --strategy ddp")


def predict(
    config: PredictConfig, catalog: Catalog | None = None, store_path: Path | None = None, *,
    profiles: ProfileCache | None = None, efficiency: Efficiency | None = None,
) -> Option:
    """One option of a plan in full: ``config.num_gpus`` × ``config.gpu`` (no data set: ``run`` is None).
    ``efficiency``: other constants than the shipped ones (the fit tries them)."""
    catalog = catalog if catalog is not None else load_catalog(config.catalog_path)
    gpu = catalog.get(config.gpu)
    if not modellable(gpu):
        raise GpuwiseError(f"cannot predict {gpu.name}: the catalog gives no FP32 rate for it; "
                           "add fp32_tflops in your catalog file (--catalog PATH)")
    precision, reason = resolve(config.precision, auto_gpu(gpu))
    planner = OptionMaker(
        get_workload(config.workload), batch_size=config.batch_size, precision=precision,
        optimizer=config.optimizer, seq_len=config.seq_len, image_size=config.image_size,
        network_gbits=config.network_gbits, catalog=catalog, store_path=store_path,
        profiles=profiles if profiles is not None else ProfileCache(), bands=BAND, settings=config.settings,
        efficiency=efficiency, cpu_threads_per_gpu=config.cpu_threads_per_gpu, gpus_per_node=config.gpus_per_node,
        busbw_gbs=config.busbw_gbs,
    )
    return replace(planner.gpu_option(gpu, config.num_gpus), precision_reason=reason)
