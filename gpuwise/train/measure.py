"""A run's measured throughput beside the prediction for this hardware, stored in the results database.

The prediction is the one ``gpuwise plan`` would make for the same step on the same devices: the
CPU option (calibrated on this CPU), or n × the catalog GPU this one reports itself as (DDP or FSDP
over n). Several CPU processes are not an option plan models, so they get no prediction, and say so.
The error is on throughput, as ``gpuwise validate`` defines it: (predicted − measured) / measured.

The prediction is made with the run's own settings (``RunSettings``: DDP or FSDP as run, activation
checkpointing, ``--grad-accum N`` micro batches and one optimizer update, torch.compile), as
``gpuwise predict`` makes it, and the stored result records them: plan's "measured here" uses a
measurement only for the same settings.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from gpuwise.config import ActivationCheckpointing, StepConfig, Strategy
from gpuwise.records import BenchResult, Ceilings
from gpuwise.train.config import TrainConfig
from gpuwise.train.loop import TrainResult
from gpuwise.workloads import Workload

if TYPE_CHECKING:
    from gpuwise.validate import LocalCheck


@dataclass(frozen=True)
class Comparison:
    predicted_step_s: float | None
    provenance: str | None  # where the prediction comes from, or why there is none
    error: float | None  # (predicted − measured) / measured throughput
    achieved_tflops: float | None  # per device
    mfu: float | None
    stored_id: int | None


def compare_and_store(config: TrainConfig, result: TrainResult, store_path: Path | None,
                      workload: Workload) -> Comparison:
    """Predict, compare and store one finished run (rank 0, after the processes are done); ``workload`` is
    ``config.workload`` resolved (the CLI's, so the user's code is not loaded again)."""
    from gpuwise.bench.calibrate import cached_ceilings
    from gpuwise.predict.step import measured_peak_tflops
    from gpuwise.store import open_store

    if result.timing is None:
        return Comparison(None, "no measurement: every step was a warm-up step; train longer than --warmup",
                          None, None, None, None)
    record, training_flops = _measured(config, result, workload)
    ceilings = cached_ceilings(result.device, store_path)
    check = _predicted(record, result, workload, ceilings if result.device == "cpu" else None, store_path)
    predicted, provenance = (check.predicted_step_s, check.provenance) if not isinstance(check, str) else (
        None, f"no prediction: {check}")
    peak_tflops = measured_peak_tflops(ceilings, config.precision)
    achieved = training_flops * result.grad_accum / record.timing.median_s / 1e12
    record = replace(record, achieved_tflops=achieved, peak_tflops=peak_tflops,
                     mfu=achieved / peak_tflops if peak_tflops else None, predicted_step_s=predicted,
                     prediction_provenance=provenance)
    with open_store(store_path) as db:
        stored = db.add(record)
    return Comparison(predicted, provenance, check.error if not isinstance(check, str) else None, achieved,
                      record.mfu, stored)


def _predicted(record: BenchResult, result: TrainResult, workload: Workload, cpu: Ceilings | None,
               store_path: Path | None) -> LocalCheck | str:
    """The step plan predicts for this run's devices and settings (``gpuwise.validate.predict_result``), with the
    store's measurements of the same setting standing for it where there are some, as in plan."""
    from gpuwise.hardware.catalog import load_catalog
    from gpuwise.predict.option import stored_results
    from gpuwise.predict.step import ProfileCache
    from gpuwise.validate import predict_result

    return predict_result(record, load_catalog(None), cpu, ProfileCache(), workload=workload,
                          measurements=stored_results(workload.name, store_path),
                          strategy=Strategy.FSDP if result.strategy == "FSDP" else Strategy.DDP)


def _measured(config: TrainConfig, result: TrainResult, w: Workload) -> tuple[BenchResult, int]:
    """The run as a stored result, before its prediction and its share of the peak; and the FLOPs of a micro
    batch (from the profile)."""
    from gpuwise.hardware.local import local_hardware, local_software
    from gpuwise.profile.run import profile_step

    assert result.timing is not None
    measured_s = result.timing.median_s
    estimate = profile_step(w, StepConfig(
        workload=w.name, batch_size=result.batch_size, precision=config.precision, optimizer=config.optimizer,
        seq_len=result.seq_len, image_size=result.image_size,
        activation_checkpointing=ActivationCheckpointing(result.activation_checkpointing),
    ))
    hardware = local_hardware(result.device)
    shape = w.resolve_shape(result.seq_len, result.image_size)
    tokens = estimate.tokens_per_step
    record = BenchResult(
        workload=w.name, family=w.family, sample_unit=w.sample_unit, batch_size=result.batch_size,
        seq_len=shape.seq_len, image_size=shape.image_size, precision=config.precision.value,
        optimizer=config.optimizer.value, device=result.device, device_name=hardware.gpu_name or hardware.cpu_model,
        timing=result.timing, samples_per_s=result.samples_per_s or 0.0,
        tokens_per_s=tokens * result.grad_accum * result.world_size / measured_s if tokens else None,
        training_flops_per_step=estimate.training_flops * result.grad_accum, achieved_tflops=0.0,
        peak_tflops=None, mfu=None,
        peak_memory_bytes=int(result.extra.get("peak_cuda_bytes") or result.extra.get("peak_rss_bytes") or 0),
        peak_reserved_bytes=None, hardware=hardware, software=local_software(),
        created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        origin="train", num_devices=result.world_size, activation_checkpointing=result.activation_checkpointing,
        grad_accum=result.grad_accum, compiled=result.compiled, fp8=result.fp8,
        log_path=result.extra.get("metrics_path"),
    )
    return record, estimate.training_flops
