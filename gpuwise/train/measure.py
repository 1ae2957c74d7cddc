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
from dataclasses import dataclass
from pathlib import Path

from gpuwise.config import ActivationCheckpointing, RunSettings, StepConfig, Strategy
from gpuwise.records import BenchResult
from gpuwise.train.config import TrainConfig
from gpuwise.train.loop import TrainResult


@dataclass(frozen=True)
class Comparison:
    predicted_step_s: float | None
    provenance: str | None  # where the prediction comes from, or why there is none
    error: float | None  # (predicted − measured) / measured throughput
    achieved_tflops: float | None  # per device
    mfu: float | None
    stored_id: int | None


def predict_here(config: TrainConfig, result: TrainResult,
                 store_path: Path | None) -> tuple[float | None, str]:
    """The predicted step time for this run's devices, or None and the reason."""
    from gpuwise.bench.calibrate import cached_ceilings
    from gpuwise.hardware.catalog import load_catalog
    from gpuwise.hardware.local import device_name
    from gpuwise.plan import ProfileCache, _ram_bytes
    from gpuwise.predict.bands import BAND
    from gpuwise.predict.option import OptionMaker
    from gpuwise.workloads import get_workload

    if result.device == "cpu" and result.world_size > 1:
        return None, f"no prediction: plan does not model {result.world_size} CPU processes"
    catalog = load_catalog(None)
    maker = OptionMaker(
        get_workload(config.workload), batch_size=result.batch_size, precision=config.precision,
        optimizer=config.optimizer, seq_len=result.seq_len, image_size=result.image_size,
        network_gbits=None, catalog=catalog, store_path=store_path,
        profiles=ProfileCache(), bands=BAND,
        settings=RunSettings(
            strategy=Strategy.FSDP if result.strategy == "FSDP" else Strategy.DDP,
            activation_checkpointing=ActivationCheckpointing.parse(result.activation_checkpointing),
            grad_accum=result.grad_accum, compile=result.compiled,
        ),
    )
    if result.device == "cpu":
        option = maker.cpu_option(cached_ceilings("cpu", store_path), _ram_bytes())
    else:
        name = device_name(result.device)
        gpu = catalog.match_device(name)
        if gpu is None:
            return None, f"no prediction: {name} is not in the GPU catalog (add it with --catalog in gpuwise plan)"
        option = maker.gpu_option(gpu, result.world_size)
    if option.step is None or option.batch_size != result.batch_size:
        return None, f"no prediction: plan predicts batch {result.batch_size} does not fit {option.label}"
    return option.step.step_s, option.provenance  # one optimizer step: every micro batch, one update


def compare_and_store(config: TrainConfig, result: TrainResult, store_path: Path | None) -> Comparison:
    """Predict, compare and store one finished run (rank 0, after the processes are done)."""
    from gpuwise.bench.calibrate import cached_ceilings
    from gpuwise.hardware.local import local_hardware, local_software
    from gpuwise.predict.step import measured_peak_tflops
    from gpuwise.profile.run import profile_step
    from gpuwise.store import open_store
    from gpuwise.workloads import get_workload

    if result.timing is None:
        return Comparison(None, "no measurement: every step was a warm-up step; train longer than --warmup",
                          None, None, None, None)
    predicted, provenance = predict_here(config, result, store_path)
    measured_s = result.timing.median_s
    error = measured_s / predicted - 1 if predicted else None  # throughput ratio − 1

    w = get_workload(config.workload)
    estimate = profile_step(w, StepConfig(
        workload=w.name, batch_size=result.batch_size, precision=config.precision, optimizer=config.optimizer,
        seq_len=result.seq_len, image_size=result.image_size,
        activation_checkpointing=ActivationCheckpointing(result.activation_checkpointing),
    ))
    ceilings = cached_ceilings(result.device, store_path)
    peak_tflops = measured_peak_tflops(ceilings, config.precision)
    achieved = estimate.training_flops * result.grad_accum / measured_s / 1e12
    hardware = local_hardware(result.device)
    shape = w.resolve_shape(result.seq_len, result.image_size)
    tokens = estimate.tokens_per_step
    record = BenchResult(
        workload=w.name, family=w.family, sample_unit=w.sample_unit, batch_size=result.batch_size,
        seq_len=shape.seq_len, image_size=shape.image_size, precision=config.precision.value,
        optimizer=config.optimizer.value, device=result.device, device_name=hardware.gpu_name or hardware.cpu_model,
        timing=result.timing, samples_per_s=result.samples_per_s or 0.0,
        tokens_per_s=tokens * result.grad_accum * result.world_size / measured_s if tokens else None,
        training_flops_per_step=estimate.training_flops * result.grad_accum, achieved_tflops=achieved,
        peak_tflops=peak_tflops,
        mfu=achieved / peak_tflops if peak_tflops else None,
        peak_memory_bytes=int(result.extra.get("peak_cuda_bytes") or result.extra.get("peak_rss_bytes") or 0),
        peak_reserved_bytes=None, hardware=hardware, software=local_software(),
        created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        origin="train", num_devices=result.world_size, predicted_step_s=predicted,
        prediction_provenance=provenance, activation_checkpointing=result.activation_checkpointing,
        grad_accum=result.grad_accum, compiled=result.compiled, log_path=result.extra.get("metrics_path"),
    )
    with open_store(store_path) as db:
        stored = db.add(record)
    return Comparison(predicted, provenance, error, achieved, record.mfu, stored)
