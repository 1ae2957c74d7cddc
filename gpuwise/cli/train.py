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
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from gpuwise.cli.app import DB_OPTION, app, count_option, user_errors
from gpuwise.cli.format import ABOVE_CEILING, above_ceiling, mfu_text
from gpuwise.cli.format import console as cli_console
from gpuwise.config import ActivationCheckpointing, OptimizerName, Precision, Strategy
from gpuwise.errors import GpuwiseError
from gpuwise.store import removed_if_it_fails
from gpuwise.train.config import Devices, TrainConfig, parse_devices, with_local_precision
from gpuwise.train.launch import (
    WORKER_ENV,
    Launch,
    Nodes,
    build_launch,
    execute,
    format_launch,
    parse_nodes,
    restart_resume,
    worker_devices,
)
from gpuwise.units import step_time

if TYPE_CHECKING:
    from gpuwise.workloads import Workload

EXIT_BY_SIGNAL = {"SIGINT": 130, "SIGTERM": 143}


@app.command("train")
@user_errors
def train_command(
    workload: str = typer.Argument(None, help="A zoo name or path/to/file.py:factory [with --resume/--plan: "
                                              "taken from the checkpoint or the plan]."),
    data: str = typer.Option(None, "--data", help="'synthetic' or a folder/file in the workload's layout "
                                                  "[default: synthetic]."),
    devices_text: str = typer.Option(
        "auto", "--devices", "--device", help="auto | cpu | cpu:N (N CPU processes) | N (GPUs) | cuda:K."
    ),
    epochs: int | None = count_option(None, "--epochs", help="Passes over the data [default: 1]."),
    steps: int | None = count_option(None, "--steps", help="Optimizer steps in all (instead of --epochs)."),
    batch_size: int | None = count_option(None, "--batch-size", "-b", help="Per device [default: the workload's]."),
    precision: str = typer.Option(None, "--precision", help="auto | fp32 | tf32 | amp-bf16 | amp-fp16 [default: auto: "
                                                            "amp-bf16 on a GPU with BF16 tensor cores, amp-fp16 on "
                                                            "V100/T4-class, fp32 on a CPU without fast bf16]."),
    optimizer: str = typer.Option(None, "--optimizer", help="sgd | sgd-momentum | adam | adamw [default: the "
                                                            "workload's own, else adamw]."),
    seq_len: int | None = count_option(None, "--seq-len", help="Sequence length (sequence workloads)."),
    image_size: int | None = count_option(None, "--image-size", help="Image side in pixels (vision workloads)."),
    seed: int | None = count_option(
        None, "--seed", minimum=0, help="Model initialisation and data order [default: 0]."
    ),
    warmup: int | None = count_option(None, "--warmup", help="Steps not timed, as in bench [default: 3]."),
    strategy: str = typer.Option(None, "--strategy", help="auto | ddp | fsdp (several devices) [default: auto: "
                                                          "DDP, or what --plan recommends]."),
    grad_accum: int | None = count_option(None, "--grad-accum", help="Micro batches of --batch-size per optimizer "
                                                                     "step (gradients synchronised on the last) "
                                                                     "[default: 1]."),
    activation_checkpointing: str = typer.Option(None, "--activation-checkpointing",
                                                 help="none | selective | full: recompute each block's activations "
                                                      "in backward [default: none]."),
    compile_model: bool | None = typer.Option(None, "--compile/--no-compile", help="torch.compile each block "
                                                                                 "[default: off]."),
    fp8: bool | None = typer.Option(None, "--fp8/--no-fp8", help="The blocks' linear layers in FP8 (torchao float8 "
                                                                 "training) beside amp-bf16 [default: off]."),
    synthetic_samples: int | None = count_option(
        None, "--synthetic-samples", help="Samples per epoch of synthetic data [default: 10000]."
    ),
    workers: int | None = count_option(
        None, "--workers", minimum=0,
        help="Data-loading processes per device [default: 0 for synthetic, else up to 4, no more than the cores].",
    ),
    checkpoint_dir: Path | None = typer.Option(None, "--checkpoint-dir", help="Write checkpoints here (at the end, "
                                                                              "on Ctrl-C/SIGTERM, every N steps)."),
    checkpoint_every: int | None = count_option(None, "--checkpoint-every", help="Also every N steps."),
    keep_checkpoints: int | None = count_option(None, "--keep-checkpoints", help="Keep the newest N [default: 3]."),
    resume: Path | None = typer.Option(None, "--resume", help="Continue exactly from the newest good checkpoint "
                                                              "in this folder."),
    use_plan: bool = typer.Option(False, "--plan", help="Run the option 'gpuwise plan' recommended last."),
    nodes: str = typer.Option("1", "--nodes", help="Nodes in the run (torchrun, one command per node); MIN:MAX "
                                                   "for an elastic run (c10d rendezvous on --master-addr)."),
    node_rank: int | None = count_option(0, "--node-rank", minimum=0, help="This node's rank, 0 .. nodes-1."),
    master_addr: str = typer.Option(None, "--master-addr", help="Host of node 0 (several nodes)."),
    master_port: int | None = count_option(Nodes.master_port, "--master-port", help="Port on node 0."),
    max_restarts: int | None = count_option(None, "--max-restarts", minimum=0,
                                            help="Under torchrun: restart the workers up to N times after one dies; "
                                                 "they resume from the newest good checkpoint [default: 0]."),
    lr: str = typer.Option(None, "--lr", help="Base learning rate [default: the optimizer's: 1e-3 adam/adamw, "
                                              "1e-2 sgd]."),
    warmup_steps: int | None = count_option(None, "--warmup-steps", minimum=0,
                                            help="Steps of linear learning-rate warm-up [default: 0]."),
    lr_schedule: str = typer.Option(None, "--lr-schedule", help="constant | cosine | linear (to zero at the last "
                                                                "step) [default: constant]."),
    weight_decay: str = typer.Option(None, "--weight-decay", help="[default: the optimizer's: 0.01 adamw, 0 "
                                                                  "otherwise]."),
    log_dir: Path | None = typer.Option(None, "--log-dir", help="Per-step metrics (metrics.jsonl) and TensorBoard "
                                                                "events here [default: the checkpoint folder]."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the launch (command, environment) and stop."),
    db: Path | None = DB_OPTION,
    as_json: bool = typer.Option(False, "--json", help="The result, machine-readable."),
) -> None:
    """Train for real: CPU, one GPU, or many through torchrun; checkpoints, exact resume, measured vs predicted."""
    from gpuwise.hardware.local import cuda_device_count
    from gpuwise.train.loop import check_options, check_strategy, prepare, train

    given: dict[str, Any] = {
        "data": data, "batch_size": batch_size,
        "precision": Precision.parse(precision) if precision is not None else None,
        "optimizer": OptimizerName.parse(optimizer) if optimizer is not None else None,
        "seq_len": seq_len, "image_size": image_size,
        "seed": seed, "epochs": epochs,
        "steps": steps, "warmup": warmup,
        "strategy": Strategy.parse(strategy) if strategy is not None else None,
        "grad_accum": grad_accum,
        "activation_checkpointing": ActivationCheckpointing.parse(activation_checkpointing)
        if activation_checkpointing is not None else None,
        "compile": compile_model, "fp8": fp8,
        "synthetic_samples": synthetic_samples,
        "num_workers": workers, "checkpoint_dir": checkpoint_dir,
        "checkpoint_every": checkpoint_every,
        "keep_checkpoints": keep_checkpoints, "resume": resume,
        "store_path": db, "log_dir": log_dir, "lr": _number(lr, "--lr"), "warmup_steps": warmup_steps,
        "lr_schedule": lr_schedule.strip().lower() if lr_schedule is not None else None,
        "weight_decay": _number(weight_decay, "--weight-decay"),
    }
    given = {k: v for k, v in given.items() if v is not None}
    if resume is not None and given.get("precision") is Precision.AUTO:
        del given["precision"]  # a resumed run keeps the precision its checkpoint chose
    num_gpus = cuda_device_count()
    base, devices_text, note = _base(workload, use_plan, resume, devices_text, db, dry_run)
    if workload is not None:
        given["workload"] = workload
    if "steps" in given or "epochs" in given:  # the run's length as given replaces the checkpoint's, either way
        base = base.with_(steps=None, epochs=None)
    config = base.with_(**given)
    from gpuwise.workloads import get_workload

    w = get_workload(config.workload)  # once, here: the loop finds it by name again without running user code
    if optimizer is None and resume is None and not use_plan and w.optimizer is not None:
        config = config.with_(optimizer=OptimizerName.parse(w.optimizer))  # a user's UserWorkload(...)

    if os.environ.get(WORKER_ENV) == "1":
        _worker(_after_restart(config), worker_devices(devices_text, num_gpus), as_json, w)
        return
    devices = parse_devices(devices_text, num_gpus=num_gpus, check=not dry_run)
    node_count, min_nodes = parse_nodes(nodes)
    nodes_spec = Nodes(count=node_count, rank=node_rank or 0, master_addr=master_addr,
                       master_port=master_port or Nodes.master_port, min_count=min_nodes)

    def launch_of(c: TrainConfig) -> Launch:
        return build_launch(c, devices, nodes_spec, python=sys.executable, cpu_threads=os.cpu_count() or 1,
                            output_args=("--json",) if as_json else (), max_restarts=max_restarts or 0)

    launch = launch_of(config)  # with --precision auto a dry run's workers choose on their own machines
    check_strategy(config.strategy, devices.kind, launch.world_size)
    if launch.max_restarts and launch.in_process:
        raise GpuwiseError("--max-restarts restarts torchrun's workers: use it with several processes "
                           "(--devices cpu:N, N GPUs or --nodes N)")
    if dry_run:
        _print_launch(launch, devices, num_gpus, note)
        return
    prepared = prepare(config, launch.world_size)  # a bad folder or flag: one line here, not in every worker
    check_options(config, prepared, devices.kind)
    # Then --precision auto for this machine's device (the CPU's choice reads, or first measures, its ceilings
    # in the results store): after the checks, so a mistake costs no calibration and leaves no store behind;
    # one found later (a model fake tensors cannot trace) takes the store it made with it.
    with removed_if_it_fails(config.store_path):
        config, chosen = with_local_precision(config, devices.first)
        if chosen:
            launch = launch_of(config)  # the workers are given the precision chosen here
        from gpuwise.bench.run import cpu_precision_note  # torch: imported by now

        if devices.kind == "cpu" and (slow := cpu_precision_note(config.precision, config.store_path)):
            print(f"gpuwise: note: {slow}", file=sys.stderr)
        if not as_json:
            console = cli_console(soft_wrap=True)
            console.print(_header(config, prepared, devices, launch, chosen))
            if note:
                console.print(note)
        with _claimed(config.output_dir):
            if not launch.in_process:
                code = execute(launch)
                if code:
                    raise typer.Exit(code)
                return
            with _Progress(enabled=not as_json) as progress:
                result = train(config, devices, on_step=progress.update)
        _finish(config, result, as_json, w)


def _claimed(folder: Path | None) -> Any:
    """The checkpoint folder held by this run (the launcher: its workers write under its claim)."""
    import contextlib

    from gpuwise.train.checkpoint import claim

    return claim(folder) if folder is not None else contextlib.nullcontext()


def _number(text: str | None, flag: str) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        raise GpuwiseError(f"{flag} must be a number, e.g. 3e-4, got '{text}'") from None


def _base(workload: str | None, use_plan: bool, resume: Path | None, devices_text: str, db: Path | None,
          dry_run: bool) -> tuple[TrainConfig, str, str]:
    """The settings before the flags: from the saved plan, the checkpoint resumed, or the defaults."""
    from gpuwise.train.resume import resumed_config

    if use_plan:
        return _from_plan(workload, db, devices_text, dry_run)
    if resume is not None:  # every setting from the checkpoint; the flags given (and a workload) then override
        return resumed_config(TrainConfig.of(workload="", resume=resume)), devices_text, ""
    if workload is None:
        raise GpuwiseError("name the workload to train (see 'gpuwise workloads'), or use --resume DIR or --plan")
    return TrainConfig.of(workload=workload), devices_text, ""


def _from_plan(workload: str | None, db: Path | None, devices_text: str, dry_run: bool
               ) -> tuple[TrainConfig, str, str]:
    from gpuwise.train.recommended import check_this_machine, load_recommendation

    rec = load_recommendation(db)
    if workload is not None and workload != rec.workload:
        raise GpuwiseError(f"--plan: the saved plan is for workload {rec.workload}, not {workload}: run "
                           f"'gpuwise plan {workload} ...' first, or drop the workload to train the plan's")
    problem = check_this_machine(rec)
    if problem and not dry_run:
        raise GpuwiseError(problem)
    config = TrainConfig.of(
        workload=rec.workload, batch_size=rec.batch_size, precision=rec.precision,
        optimizer=OptimizerName(rec.optimizer), seq_len=rec.seq_len, image_size=rec.image_size,
        epochs=rec.whole_epochs, synthetic_samples=max(1, int(rec.samples_per_epoch)),
        strategy=Strategy.FSDP if rec.strategy == "FSDP" else Strategy.AUTO, grad_accum=rec.grad_accum,
        activation_checkpointing=ActivationCheckpointing.parse(rec.activation_checkpointing), compile=rec.compile,
        fp8=rec.fp8,
    )  # what the plan priced, as gpuwise launch's job trains it (launch.job.train_config)
    if devices_text == "auto":
        devices_text = "cpu" if rec.device == "cpu" else str(rec.gpus_per_node)
    accumulated = f" × {rec.grad_accum} micro batches" if rec.grad_accum > 1 else ""
    note = f"from the plan: {rec.label}, batch {rec.batch_size}{accumulated} per device, {rec.whole_epochs} epoch(s)"
    return config, devices_text, note + (f"; note: {problem}" if problem else "")


def _after_restart(config: TrainConfig) -> TrainConfig:
    """A worker torchrun restarted continues from the newest good checkpoint (rank 0 says so)."""
    from gpuwise.train.distributed import Ranks

    resumed = restart_resume(config)
    if resumed is not config and Ranks.from_env().is_main:
        print(f"gpuwise: workers restarted ({os.environ.get('TORCHELASTIC_RESTART_COUNT')} of --max-restarts): "
              f"resuming from the newest good checkpoint in {resumed.resume}", file=sys.stderr)
    return resumed


def _worker(config: TrainConfig, devices: Devices, as_json: bool, w: Workload) -> None:
    """One torchrun worker: run the loop; rank 0 reports."""
    from gpuwise.train.distributed import Ranks
    from gpuwise.train.loop import device_for, train

    ranks = Ranks.from_env()
    config, _ = with_local_precision(config, device_for(devices, ranks))  # what the dry run left to the machine
    with _Progress(enabled=ranks.is_main and not as_json) as progress:
        result = train(config, devices, on_step=progress.update)
    if ranks.is_main:
        _finish(config, result, as_json, w)
    elif result.interrupted:
        raise typer.Exit(EXIT_BY_SIGNAL[result.interrupted])


def _finish(config: TrainConfig, result: Any, as_json: bool, w: Workload) -> None:
    from gpuwise.train.measure import compare_and_store

    comparison = compare_and_store(config, result, config.store_path, w) if not result.interrupted else None
    if as_json:
        data = dataclasses.asdict(result)
        data["losses"] = list(result.losses)
        data["ranks_agree"] = result.ranks_agree
        data["comparison"] = dataclasses.asdict(comparison) if comparison else None
        print(json.dumps(data, indent=2, default=str))
    else:
        _render(result, comparison, cli_console(soft_wrap=True), w)
    if result.interrupted:
        where = f"; checkpoint {result.checkpoint}; continue with --resume {result.checkpoint.parent}" \
            if result.checkpoint else " (no --checkpoint-dir: nothing saved)"
        print(f"gpuwise: stopped by {result.interrupted} after step {result.end_step}{where}", file=sys.stderr)
        raise typer.Exit(EXIT_BY_SIGNAL[result.interrupted])


# ------------------------------------------------------------------ rendering


def _header(config: TrainConfig, p: Any, devices: Devices, launch: Launch, chosen: str = "") -> str:
    """The run in two or three lines; ``chosen``: why --precision auto chose the precision ('' when given)."""
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
                   " · compiled per block" if config.compile else "",
                   " · FP8 linear layers" if config.fp8 else ""])
    return (f"[bold]{p.workload.name}[/bold] · {where} · {procs} · {batch}{shape} · "
            f"{config.precision.value}{f' (auto: {chosen})' if chosen else ''} · {config.optimizer.value} · "
            f"seed {config.seed}{how}\n"
            f"data: {p.data.description} · {p.total_steps} steps ({p.steps_per_epoch} per epoch)\n"
            f"{_learning_rate(config)}{_metrics_where(config)}" + resume)


def _learning_rate(config: TrainConfig) -> str:
    """The schedule, defaults named as such."""
    import torch

    optimizer = config.optimizer.build([torch.nn.Parameter(torch.zeros(1))])
    default_lr, default_decay = optimizer.param_groups[0]["lr"], optimizer.param_groups[0].get("weight_decay", 0.0)
    lr = f"lr {config.lr:g}" if config.lr is not None else f"lr {default_lr:g} ({config.optimizer.value}'s default)"
    decay = (f"weight decay {config.weight_decay:g}" if config.weight_decay is not None
             else f"weight decay {default_decay:g} (default)")
    warmup = f"{config.warmup_steps} warm-up step{'s' if config.warmup_steps != 1 else ''}"
    given = config.lr_schedule != "constant" or config.warmup_steps
    return f"{lr} · {config.lr_schedule} schedule{'' if given else ' (default)'}, {warmup} · {decay}"


def _metrics_where(config: TrainConfig) -> str:
    from gpuwise.train.metrics import FILE_NAME, tensorboard_available

    folder = config.log_dir if config.log_dir is not None else config.output_dir
    if folder is None:
        return " · per-step metrics: none (give --log-dir or --checkpoint-dir)"
    events = "and TensorBoard events" if tensorboard_available() else \
        "(TensorBoard events: pip install 'gpuwise[tensorboard]')"
    return f"\nper-step metrics: {folder / FILE_NAME} {events}"


def _render(result: Any, c: Any, console: Console, w: Workload) -> None:
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
        console.print(f"measured: {_step_time(t.median_s)} per step (median; p10–p90 {_step_time(t.p10_s)}–"
                      f"{_step_time(t.p90_s)}; "
                      f"{t.num_steps} timed steps after {t.num_warmup} warm-up) · "
                      f"{result.samples_per_s * per_sample:,.1f} {unit}/s")
    if c is not None:
        if c.predicted_step_s is not None:
            rate = result.batch_size * result.grad_accum * result.world_size * per_sample / c.predicted_step_s
            console.print(f"predicted: {_step_time(c.predicted_step_s)} per step · {rate:,.1f} {unit}/s "
                          f"({c.provenance}) · "
                          f"error {c.error:+.1%} (on throughput: (predicted − measured) / measured)")
        elif c.provenance:
            console.print(c.provenance)
        if c.mfu is not None:
            console.print(f"achieved {c.achieved_tflops:.3f} TFLOP/s per device · MFU {mfu_text(c.mfu)}")
            if above_ceiling(c.mfu):
                console.print(ABOVE_CEILING)
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


def _step_time(seconds: float) -> str:
    """A measured step with the third decimal above a second: train compares it with the prediction."""
    return step_time(seconds, places=3)


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
