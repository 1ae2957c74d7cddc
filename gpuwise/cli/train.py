"""``gpuwise train``: run the training — in this process on one device, through torchrun on several.

Flags map onto ``TrainConfig``; with ``--resume`` or ``--plan`` the settings not given on the
command line come from the checkpoint or the saved plan. A torchrun worker is this same command
with ``GPUWISE_TRAIN_WORKER=1`` set (``gpuwise.train.launch``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from gpuwise.cli.app import DB_OPTION, app, positive_int, user_errors, whole_number
from gpuwise.config import ActivationCheckpointing, OptimizerName, Precision, Strategy
from gpuwise.errors import GpuwiseError
from gpuwise.train.config import Devices, TrainConfig, parse_devices
from gpuwise.train.launch import WORKER_ENV, Launch, Nodes, build_launch, execute, format_launch

EXIT_BY_SIGNAL = {"SIGINT": 130, "SIGTERM": 143}


@app.command("train")
@user_errors
def train_command(
    workload: str = typer.Argument(None, help="A zoo name or path/to/file.py:factory [with --resume/--plan: "
                                              "taken from the checkpoint or the plan]."),
    data: str = typer.Option(None, "--data", help="'synthetic' or a folder/file in the workload's layout "
                                                  "[default: synthetic]."),
    devices_text: str = typer.Option("auto", "--devices", help="auto | cpu | cpu:N (N CPU processes) | N (GPUs) "
                                                               "| cuda:K."),
    epochs: str = typer.Option(None, "--epochs", help="Passes over the data [default: 1]."),
    steps: str = typer.Option(None, "--steps", help="Optimizer steps in all (instead of --epochs)."),
    batch_size: str = typer.Option(None, "--batch-size", "-b", help="Per device [default: the workload's]."),
    precision: str = typer.Option(None, "--precision", help="fp32 | tf32 | amp-bf16 | amp-fp16 [default: fp32]."),
    optimizer: str = typer.Option(None, "--optimizer", help="sgd | sgd-momentum | adam | adamw [default: the "
                                                            "workload's own, else adamw]."),
    seq_len: str = typer.Option(None, "--seq-len", help="Sequence length (sequence workloads)."),
    image_size: str = typer.Option(None, "--image-size", help="Image side in pixels (vision workloads)."),
    seed: str = typer.Option(None, "--seed", help="Model initialisation and data order [default: 0]."),
    warmup: str = typer.Option(None, "--warmup", help="Steps not timed, as in bench [default: 3]."),
    strategy: str = typer.Option(None, "--strategy", help="auto | ddp | fsdp (several devices) [default: auto: "
                                                          "DDP, or what --plan recommends]."),
    grad_accum: str = typer.Option(None, "--grad-accum", help="Micro batches of --batch-size per optimizer step "
                                                              "(gradients synchronised on the last) [default: 1]."),
    activation_checkpointing: str = typer.Option(None, "--activation-checkpointing",
                                                 help="none | selective | full: recompute each block's activations "
                                                      "in backward [default: none]."),
    compile_model: bool | None = typer.Option(None, "--compile/--no-compile", help="torch.compile each block "
                                                                                 "[default: off]."),
    synthetic_samples: str = typer.Option(None, "--synthetic-samples", help="Samples per epoch of synthetic "
                                                                            "data [default: 10000]."),
    workers: str = typer.Option(None, "--workers", help="Data-loading processes per device [default: 0 for "
                                                        "synthetic, else up to 4, no more than the cores]."),
    checkpoint_dir: Path | None = typer.Option(None, "--checkpoint-dir", help="Write checkpoints here (at the end, "
                                                                              "on Ctrl-C/SIGTERM, every N steps)."),
    checkpoint_every: str = typer.Option(None, "--checkpoint-every", help="Also every N steps."),
    keep_checkpoints: str = typer.Option(None, "--keep-checkpoints", help="Keep the newest N [default: 3]."),
    resume: Path | None = typer.Option(None, "--resume", help="Continue exactly from the newest good checkpoint "
                                                              "in this folder."),
    use_plan: bool = typer.Option(False, "--plan", help="Run the option 'gpuwise plan' recommended last."),
    nodes: str = typer.Option("1", "--nodes", help="Nodes in the run (torchrun, one command per node)."),
    node_rank: str = typer.Option("0", "--node-rank", help="This node's rank, 0 .. nodes-1."),
    master_addr: str = typer.Option(None, "--master-addr", help="Host of node 0 (several nodes)."),
    master_port: str = typer.Option(str(Nodes.master_port), "--master-port", help="Port on node 0."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the launch (command, environment) and stop."),
    db: Path | None = DB_OPTION,
    as_json: bool = typer.Option(False, "--json", help="The result, machine-readable."),
) -> None:
    """Train for real: CPU, one GPU, or many through torchrun; checkpoints, exact resume, measured vs predicted."""
    import torch

    from gpuwise.train.loop import check_options, check_strategy, prepare, train

    given: dict[str, Any] = {
        "data": data, "batch_size": positive_int(batch_size, "--batch-size"),
        "precision": Precision.parse(precision) if precision is not None else None,
        "optimizer": OptimizerName.parse(optimizer) if optimizer is not None else None,
        "seq_len": positive_int(seq_len, "--seq-len"), "image_size": positive_int(image_size, "--image-size"),
        "seed": whole_number(seed, "--seed"), "epochs": positive_int(epochs, "--epochs"),
        "steps": positive_int(steps, "--steps"), "warmup": positive_int(warmup, "--warmup"),
        "strategy": Strategy.parse(strategy) if strategy is not None else None,
        "grad_accum": _grad_accum(grad_accum),
        "activation_checkpointing": ActivationCheckpointing.parse(activation_checkpointing)
        if activation_checkpointing is not None else None,
        "compile": compile_model,
        "synthetic_samples": positive_int(synthetic_samples, "--synthetic-samples"),
        "num_workers": whole_number(workers, "--workers"), "checkpoint_dir": checkpoint_dir,
        "checkpoint_every": positive_int(checkpoint_every, "--checkpoint-every"),
        "keep_checkpoints": positive_int(keep_checkpoints, "--keep-checkpoints"), "resume": resume,
        "store_path": db,
    }
    given = {k: v for k, v in given.items() if v is not None}
    num_gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    base, devices_text, note = _base(workload, use_plan, resume, devices_text, db, num_gpus, dry_run)
    if workload is not None:
        given["workload"] = workload
    config = dataclasses.replace(base, **given)
    if optimizer is None and resume is None and not use_plan:
        from gpuwise.workloads.registry import workload_optimizer

        named = workload_optimizer(config.workload)  # a user's UserWorkload(optimizer=...)
        if named is not None:
            config = dataclasses.replace(config, optimizer=OptimizerName.parse(named))

    if os.environ.get(WORKER_ENV) == "1":
        _worker(config, parse_devices(devices_text, num_gpus=num_gpus), as_json)
        return
    devices = parse_devices(devices_text, num_gpus=num_gpus, check=not dry_run)
    node_count = positive_int(nodes, "--nodes") or 1
    launch = build_launch(
        config, devices,
        Nodes(count=node_count, rank=whole_number(node_rank, "--node-rank") or 0, master_addr=master_addr,
              master_port=positive_int(master_port, "--master-port") or Nodes.master_port),
        python=sys.executable, cpu_threads=os.cpu_count() or 1, output_args=("--json",) if as_json else (),
    )
    check_strategy(config.strategy, devices.kind, launch.world_size)
    if dry_run:
        _print_launch(launch, devices, num_gpus, note)
        return
    prepared = prepare(config, launch.world_size)  # a bad folder or flag: one line here, not in every worker
    check_options(config, prepared, devices.kind)
    if not as_json:
        console = Console(highlight=False, width=140)
        console.print(_header(config, prepared, devices, launch))
        if note:
            console.print(note)
    if not launch.in_process:
        code = execute(launch)
        if code:
            raise typer.Exit(code)
        return
    with _Progress(enabled=not as_json) as progress:
        result = train(config, devices, on_step=progress.update)
    _finish(config, result, as_json)


def _grad_accum(text: str | None) -> int | None:
    from gpuwise.config import check_grad_accum

    if text is None:
        return None
    try:
        value: object = int(text)
    except ValueError:
        value = text
    return check_grad_accum(value)


def _base(workload: str | None, use_plan: bool, resume: Path | None, devices_text: str, db: Path | None,
          num_gpus: int, dry_run: bool) -> tuple[TrainConfig, str, str]:
    """The settings before the flags: from the saved plan, the checkpoint resumed, or the defaults."""
    from gpuwise.train.loop import resumed_config

    if use_plan:
        return _from_plan(db, devices_text, num_gpus, dry_run)
    if resume is not None and workload is None:
        return resumed_config(TrainConfig(workload="", resume=resume)), devices_text, ""
    if workload is None:
        raise GpuwiseError("name the workload to train (see 'gpuwise workloads'), or use --resume DIR or --plan")
    return TrainConfig(workload=workload), devices_text, ""


def _from_plan(db: Path | None, devices_text: str, num_gpus: int, dry_run: bool) -> tuple[TrainConfig, str, str]:
    import torch

    from gpuwise.hardware.catalog import load_catalog
    from gpuwise.train.recommended import check_here, load_recommendation

    rec = load_recommendation(db)
    names = [torch.cuda.get_device_name(i) for i in range(num_gpus)]
    catalog = load_catalog(None)
    matches = [(g.name if (g := catalog.match_device(n)) else None) for n in names]
    problem = check_here(rec, names, matches)
    if problem and not dry_run:
        raise GpuwiseError(problem)
    config = TrainConfig(
        workload=rec.workload, batch_size=rec.batch_size, precision=Precision(rec.precision),
        optimizer=OptimizerName(rec.optimizer), seq_len=rec.seq_len, image_size=rec.image_size,
        epochs=rec.whole_epochs, synthetic_samples=max(1, int(rec.samples_per_epoch)),
        strategy=Strategy.FSDP if rec.strategy == "FSDP" else Strategy.AUTO, grad_accum=rec.grad_accum,
    )
    if devices_text == "auto":
        devices_text = "cpu" if rec.device == "cpu" else str(rec.gpus_per_node)
    accumulated = f" × {rec.grad_accum} micro batches" if rec.grad_accum > 1 else ""
    note = f"from the plan: {rec.label}, batch {rec.batch_size}{accumulated} per device, {rec.whole_epochs} epoch(s)"
    return config, devices_text, note + (f"; note: {problem}" if problem else "")


def _worker(config: TrainConfig, devices: Devices, as_json: bool) -> None:
    """One torchrun worker: run the loop; rank 0 reports."""
    from gpuwise.train.distributed import Ranks
    from gpuwise.train.loop import train

    ranks = Ranks.from_env()
    with _Progress(enabled=ranks.is_main and not as_json) as progress:
        result = train(config, devices, on_step=progress.update)
    if ranks.is_main:
        _finish(config, result, as_json)
    elif result.interrupted:
        raise typer.Exit(EXIT_BY_SIGNAL[result.interrupted])


def _finish(config: TrainConfig, result: Any, as_json: bool) -> None:
    from gpuwise.train.measure import compare_and_store

    comparison = compare_and_store(config, result, config.store_path) if not result.interrupted else None
    if as_json:
        data = dataclasses.asdict(result)
        data["losses"] = list(result.losses)
        data["ranks_agree"] = result.ranks_agree
        data["comparison"] = dataclasses.asdict(comparison) if comparison else None
        print(json.dumps(data, indent=2, default=str))
    else:
        _render(result, comparison, Console(highlight=False, width=140))
    if result.interrupted:
        where = f"; checkpoint {result.checkpoint}; continue with --resume {result.checkpoint.parent}" \
            if result.checkpoint else " (no --checkpoint-dir: nothing saved)"
        print(f"gpuwise: stopped by {result.interrupted} after step {result.end_step}{where}", file=sys.stderr)
        raise typer.Exit(EXIT_BY_SIGNAL[result.interrupted])


# ------------------------------------------------------------------ rendering


def _header(config: TrainConfig, p: Any, devices: Devices, launch: Launch) -> str:
    shape = f" · seq {p.shape.seq_len}" if p.shape.seq_len else f" · {p.shape.image_size}px" if p.shape.image_size \
        else ""
    where = devices.label + (f" ({devices.reason})" if devices.reason else "")
    procs = (f"{launch.world_size} processes ({launch.nnodes} node{'s' if launch.nnodes > 1 else ''}, "
             f"torchrun, {launch.backend})" if not launch.in_process else "1 process")
    resume = ""
    if p.resume_from is not None:
        resume = f"\nresuming from {p.resume_from.path} (step {p.position['step']})"
        for skipped in p.resume_from.skipped:
            resume += f"\nskipped newer checkpoint {skipped}"
        if p.resume_note:
            resume += f"\n{p.resume_note}"
    batch = f"batch {p.batch_size} per device"
    if config.grad_accum > 1:
        batch += (f" × {config.grad_accum} micro batches per step "
                  f"({p.batch_size * config.grad_accum * launch.world_size} samples per step)")
    how = "".join([f" · activation checkpointing {config.activation_checkpointing.value}"
                   if config.activation_checkpointing.value != "none" else "",
                   " · compiled per block" if config.compile else ""])
    return (f"[bold]{p.workload.name}[/bold] · {where} · {procs} · {batch}{shape} · "
            f"{config.precision.value} · {config.optimizer.value} · seed {config.seed}{how}\n"
            f"data: {p.data.description} · {p.total_steps} steps ({p.steps_per_epoch} per epoch)" + resume)


def _render(result: Any, c: Any, console: Console) -> None:
    from gpuwise.workloads import get_workload

    w = get_workload(result.workload)
    unit = w.sample_unit + "s"
    # A language model's sample is a sequence of tokens: its rate is counted in tokens.
    per_sample = (w.tokens_per_sample(w.resolve_shape(result.seq_len, result.image_size))
                  if w.sample_unit == "token" and w.tokens_per_sample else 1)
    losses = result.losses
    loss = f" · loss {losses[0]:.4g} → {losses[-1]:.4g}" if losses else ""
    console.print(f"trained steps {result.start_step} → {result.end_step} of {result.total_steps} "
                  f"(epoch {result.epoch + 1}){loss}")
    t = result.timing
    if t is not None:
        console.print(f"measured: {_s(t.median_s)} per step (median; p10–p90 {_s(t.p10_s)}–{_s(t.p90_s)}; "
                      f"{t.num_steps} timed steps after {t.num_warmup} warm-up) · "
                      f"{result.samples_per_s * per_sample:,.1f} {unit}/s")
    if c is not None:
        if c.predicted_step_s is not None:
            rate = result.batch_size * result.grad_accum * result.world_size * per_sample / c.predicted_step_s
            console.print(f"predicted: {_s(c.predicted_step_s)} per step · {rate:,.1f} {unit}/s ({c.provenance}) · "
                          f"error {c.error:+.1%} (on throughput: (predicted − measured) / measured)")
        elif c.provenance:
            console.print(c.provenance)
        if c.mfu is not None:
            console.print(f"achieved {c.achieved_tflops:.3f} TFLOP/s per device · MFU {c.mfu:.1%}")
        if c.stored_id is not None:
            console.print(f"stored as result #{c.stored_id} (origin train)")
    if result.checkpoint is not None:
        console.print(f"checkpoint: {result.checkpoint}")
    if result.world_size > 1 and result.strategy == "DDP":
        verdict = "identical on" if result.ranks_agree else "DIFFER across"
        console.print(f"parameters {verdict} all {result.world_size} ranks (sha256 {result.parameter_digests[0][:12]})")


def _print_launch(launch: Launch, devices: Devices, num_gpus: int, note: str) -> None:
    if note:
        print(note)
    if launch.in_process:
        print("one device on one node: the loop runs in this process (no torchrun); the equivalent command:")
    else:
        print(f"world size {launch.world_size} = {launch.nnodes} node(s) × {launch.nproc_per_node} processes · "
              f"node rank {launch.node_rank} · backend {launch.backend} · rendezvous "
              f"{launch.rendezvous or 'standalone (this host)'}")
    print(format_launch(launch))
    if devices.kind == "cuda" and devices.count > num_gpus:
        print(f"note: this machine has {num_gpus} GPUs; the command is for the machines that have {devices.count}")


def _s(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.3f} s"


class _Progress:
    """rich's progress bar on a terminal (rank 0): samples/s and loss over recent steps, and the ETA."""

    def __init__(self, *, enabled: bool) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.console = Console(stderr=True)
        self.enabled = enabled and self.console.is_terminal
        self.bar = Progress(TextColumn("step"), MofNCompleteColumn(), BarColumn(),
                            TextColumn("{task.fields[info]}"), console=self.console, transient=True)
        self.task: Any = None
        self.recent: list[float] = []
        self.batch = 1

    def __enter__(self) -> _Progress:
        if self.enabled:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.bar.stop()

    def update(self, step: int, total: int, loss: float, seconds: float, samples: int) -> None:
        if not self.enabled:
            return
        if self.task is None:
            self.task = self.bar.add_task("train", total=total, completed=step - 1, info="")
        self.recent = [*self.recent, seconds][-20:]
        median = statistics.median(self.recent)
        eta = (total - step) * median
        info = f"{samples / median:,.1f} samples/s · loss {loss:.4g} · ETA {_eta(eta)}"
        self.bar.update(self.task, completed=step, info=info)


def _eta(seconds: float) -> str:
    from gpuwise.units import duration

    return duration(seconds)
