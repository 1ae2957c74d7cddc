"""A planned run as a job for a cluster's scheduler: which nodes, how long, and the command each node runs.

``build_job`` is pure: from the option ``gpuwise plan`` recommended (``Recommended``) and the job's
own settings it makes a ``Job`` — nodes × processes per node, the time limit, and the ``gpuwise
train`` settings the plan priced — and checks what a scheduler cannot run: paths another node
cannot see, more GPUs on a node than the catalog's nodes have. The renderers (``slurm``,
``skypilot``, ``kubernetes``) turn a ``Job`` into the scheduler's file; they do no arithmetic.

Every node runs the same ``torchrun`` line (``node_command``): the c10d rendezvous on the first
node's address (each scheduler says which in its own variable), ``--max-restarts`` so a worker
that dies restarts the node's workers, and ``gpuwise train`` as the worker with every setting
spelled out. A job the scheduler requeues or preempts continues where it stopped: the node
command adds ``--resume`` when the checkpoint folder already holds a checkpoint (``RESUME_SHELL``).

The time limit is the plan's predicted time at the top of its band, total × (1 + band), plus
``STARTUP_ALLOWANCE_S`` for starting the nodes, opening the data and writing checkpoints.
"""

from __future__ import annotations

import math
import re
import shlex
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from gpuwise.config import ActivationCheckpointing, OptimizerName, Strategy
from gpuwise.errors import GpuwiseError
from gpuwise.predict.parallel import GPUS_PER_NODE
from gpuwise.train.config import Devices, TrainConfig
from gpuwise.train.launch import DEFAULT_MASTER_PORT, WORKER_ENV, worker_args
from gpuwise.train.recommended import Recommended
from gpuwise.units import duration

TARGETS = ("slurm", "skypilot", "kubernetes")
# Added to the predicted run time for the job's limit: nodes starting, the data opened, checkpoints written.
# An allowance stated here, not a measurement; --time overrides the whole limit.
STARTUP_ALLOWANCE_S = 10 * 60
DEFAULT_MAX_RESTARTS = 3  # torchrun restarts a node's workers this often after one dies
SUBMIT_TOOLS = {"slurm": ("sbatch", "Slurm's client (Debian/Ubuntu: apt-get install slurm-client)"),
                "skypilot": ("sky", "SkyPilot (pip install 'gpuwise[skypilot]')"),
                "kubernetes": ("kubectl", "kubectl (https://kubernetes.io/docs/tasks/tools/)")}
# The shell lines that add --resume when the checkpoint folder has a checkpoint: a manifest (step-*.json) is
# written only after its checkpoint is whole, so one existing means there is something to resume from.
RESUME_SHELL = ('RESUME=()\n'
                'if compgen -G "$CHECKPOINT_DIR/step-*.json" > /dev/null; then RESUME=(--resume "$CHECKPOINT_DIR"); '
                'fi')


@dataclass(frozen=True)
class Layout:
    """Where the job runs: ``nodes`` × ``procs_per_node`` processes, on GPUs or CPUs."""

    nodes: int
    procs_per_node: int
    kind: str  # "cuda" or "cpu"
    accelerator: str | None  # the catalog GPU's name; None on CPUs
    min_nodes: int | None = None  # elastic: the job may run on min_nodes .. nodes

    @property
    def world_size(self) -> int:
        return self.nodes * self.procs_per_node

    @property
    def label(self) -> str:
        what = f"{self.procs_per_node}× {self.accelerator}" if self.kind == "cuda" else \
            f"{self.procs_per_node} CPU process{'es' if self.procs_per_node > 1 else ''}"
        nodes = f"{self.min_nodes}–{self.nodes}" if self.min_nodes else str(self.nodes)
        return f"{nodes} node{'s' if self.nodes > 1 else ''} × {what}"


@dataclass(frozen=True)
class TargetOptions:
    """What one scheduler needs beyond the run: a Slurm partition, a container image, a bucket."""

    partition: str | None = None  # slurm
    account: str | None = None  # slurm
    image: str | None = None  # kubernetes (required), skypilot (optional)
    namespace: str = "default"  # kubernetes
    pvc: str | None = None  # kubernetes: a PersistentVolumeClaim every pod mounts at the checkpoint folder
    bucket: str | None = None  # skypilot: mounted at the checkpoint folder (s3://, gs://, ...)
    workdir: str = "."  # skypilot: synced to every node; gpuwise is installed from it


@dataclass(frozen=True)
class Job:
    """One job: the run, where and how long."""

    name: str
    target: str
    workload: str
    layout: Layout
    train: TrainConfig
    time_limit_s: int
    time_basis: str  # how the limit was set, for the job's header
    python: str
    max_restarts: int
    rdzv_port: int
    strategy: str  # as planned: "single", "DDP", "FSDP"
    planned: str  # the option's label, as plan printed it
    options: TargetOptions = TargetOptions()

    @property
    def checkpoint_dir(self) -> str:
        assert self.train.checkpoint_dir is not None
        return str(self.train.checkpoint_dir)


def check_target(target: str) -> str:
    value = target.strip().lower()
    if value not in TARGETS:
        raise GpuwiseError(f"unknown target '{target}': use --target {' | '.join(TARGETS)}")
    return value


def parse_elastic(text: str) -> tuple[int, int]:
    """``MIN:MAX`` nodes."""
    match = re.fullmatch(r"\s*(\d+)\s*:\s*(\d+)\s*", text)
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise GpuwiseError(f"--nnodes {text}: give MIN:MAX nodes with 1 <= MIN <= MAX, e.g. --nnodes 2:4")
    return int(match[1]), int(match[2])


def layout_for(rec: Recommended, *, nodes: int | None, devices: Devices | None,
               elastic: tuple[int, int] | None) -> Layout:
    """The plan's nodes × GPUs, or the ones given (``--nodes``, ``--devices``), checked against a node's size."""
    if devices is not None:
        kind, per_node = devices.kind, devices.count
    elif rec.device == "cpu":
        kind, per_node = "cpu", 1
    else:
        kind, per_node = "cuda", rec.gpus_per_node
    if kind == "cuda" and per_node > GPUS_PER_NODE:
        raise GpuwiseError(f"--devices {per_node}: a node of the catalog holds at most {GPUS_PER_NODE} GPUs; "
                           f"use --nodes {math.ceil(per_node / GPUS_PER_NODE)} --devices {GPUS_PER_NODE}")
    accelerator = None if kind == "cpu" else (rec.device if rec.device != "cpu" else None)
    if kind == "cuda" and accelerator is None:
        raise GpuwiseError("--devices N asks for GPUs but the plan chose the CPU: plan with --gpus NAME, "
                           "or launch with --devices cpu")
    count = nodes if nodes is not None else rec.num_nodes
    min_nodes = None
    if elastic is not None:
        min_nodes, count = elastic
        if rec.strategy == "FSDP" and min_nodes != count:
            # FSDP's state is sharded over the processes: fewer nodes may not hold it.
            raise GpuwiseError(f"--nnodes {min_nodes}:{count}: the plan shards the model with FSDP over "
                               f"{rec.num_gpus} GPUs, which fewer nodes may not hold; give a fixed --nodes")
    return Layout(nodes=count, procs_per_node=per_node, kind=kind, accelerator=accelerator, min_nodes=min_nodes)


def train_config(rec: Recommended, *, data: str, checkpoint_dir: str, steps: int | None,
                 checkpoint_every: int | None, log_dir: str | None = None,
                 store_path: Path | None = None) -> TrainConfig:
    """The ``gpuwise train`` settings the plan priced: batch, precision, optimizer, strategy, recompute,
    accumulation, compilation, and its epochs (or ``steps``)."""
    config = TrainConfig.of(
        workload=rec.workload, data=data, batch_size=rec.batch_size, precision=rec.precision,
        optimizer=OptimizerName(rec.optimizer), seq_len=rec.seq_len, image_size=rec.image_size,
        epochs=None if steps else rec.whole_epochs, steps=steps,
        strategy=Strategy.FSDP if rec.strategy == "FSDP" else Strategy.AUTO, grad_accum=rec.grad_accum,
        activation_checkpointing=ActivationCheckpointing.parse(rec.activation_checkpointing), compile=rec.compile,
        fp8=rec.fp8,
        synthetic_samples=max(1, int(rec.samples_per_epoch)) if data == "synthetic" else 10_000,
        checkpoint_dir=Path(checkpoint_dir), checkpoint_every=checkpoint_every,
        log_dir=Path(log_dir) if log_dir is not None else None, store_path=store_path,
    )
    return config


def time_limit(rec: Recommended, layout: Layout, given_s: float | None) -> tuple[int, str]:
    """The job's limit in seconds and how it was set: ``given_s`` (``--time``), else the plan's prediction."""
    if given_s is not None:
        return math.ceil(given_s), "as given by --time"
    if rec.total_s is None or rec.band is None:
        raise GpuwiseError("the saved plan has no predicted time (saved by an older gpuwise): run gpuwise plan "
                           "again, or give --time")
    if (layout.nodes, layout.kind) != (rec.num_nodes, "cpu" if rec.device == "cpu" else "cuda") or \
            (layout.kind == "cuda" and layout.procs_per_node != rec.gpus_per_node):
        raise GpuwiseError(f"the plan priced {rec.label}, not {layout.label}: give --time for this layout, "
                           "or plan it (gpuwise plan --gpus/--max-gpus)")
    limit = rec.total_s * (1 + rec.band) + STARTUP_ALLOWANCE_S
    basis = (f"predicted {duration(rec.total_s)} × (1 + {rec.band:.0%} band) + {duration(STARTUP_ALLOWANCE_S)} "
             "startup allowance")
    return math.ceil(limit / 60) * 60, basis


def check_paths(layout: Layout, data: str, checkpoint_dir: str) -> None:
    """Every node must see the data and the checkpoints at the same path."""
    if layout.nodes < 2:
        return
    for flag, value in (("--data", data), ("--checkpoint-dir", checkpoint_dir)):
        if value != "synthetic" and not value.startswith("/"):
            raise GpuwiseError(f"{flag} {value}: a job on {layout.nodes} nodes needs an absolute path that every "
                               "node sees (a shared file system), e.g. /shared/...")


def job_name(workload: str) -> str:
    """A name every scheduler accepts (Kubernetes: lowercase letters, digits and '-', at most 63): the zoo
    name, or the file's name of path/to/file.py:factory."""
    base = PurePosixPath(workload.split(":")[0]).stem if ".py:" in workload else workload
    return f"gpuwise-{re.sub(r'[^a-z0-9-]+', '-', base.lower()).strip('-') or 'run'}"[:63].rstrip("-")


def build_job(rec: Recommended, *, target: str, data: str, checkpoint_dir: str, nodes: int | None = None,
              devices: Devices | None = None, elastic: tuple[int, int] | None = None, steps: int | None = None,
              checkpoint_every: int | None = None, time_s: float | None = None, python: str = "python3",
              max_restarts: int = DEFAULT_MAX_RESTARTS, rdzv_port: int = DEFAULT_MASTER_PORT,
              name: str | None = None, log_dir: str | None = None, store_path: Path | None = None,
              options: TargetOptions = TargetOptions()) -> Job:
    """The job for ``rec`` (see the module docstring); ``store_path``: the results database the run writes to
    (None: the default one on the first node)."""
    target = check_target(target)
    layout = layout_for(rec, nodes=nodes, devices=devices, elastic=elastic)
    check_paths(layout, data, checkpoint_dir)
    if log_dir is not None and layout.nodes > 1 and not log_dir.startswith("/"):
        raise GpuwiseError(f"--log-dir {log_dir}: a job on {layout.nodes} nodes needs an absolute path")
    if target == "kubernetes" and not options.image:
        raise GpuwiseError("--target kubernetes needs --image: a container image with gpuwise and PyTorch installed")
    limit, basis = time_limit(rec, layout, time_s)
    strategy = "DDP" if rec.strategy == "single" and layout.world_size > 1 else rec.strategy
    config = train_config(rec, data=data, checkpoint_dir=checkpoint_dir, steps=steps,
                          checkpoint_every=checkpoint_every, log_dir=log_dir, store_path=store_path)
    return Job(name=name or job_name(rec.workload), target=target, workload=rec.workload, layout=layout,
               train=config, time_limit_s=limit, time_basis=basis, python=python, max_restarts=max_restarts,
               rdzv_port=rdzv_port, strategy=strategy, planned=rec.label, options=options)


def node_script(job: Job, *, rdzv_host: str, rdzv_id: str, cores: str = "$(nproc)", prefix: str = "") -> list[str]:
    """The shell lines every node runs: the environment, ``--resume`` if there is a checkpoint, and torchrun
    (after ``prefix``, e.g. Slurm's ``srun``). ``rdzv_host``, ``rdzv_id`` and ``cores`` are shell words the
    scheduler's script defines (``$HEAD_ADDR``)."""
    layout = job.layout
    nnodes = f"{layout.min_nodes}:{layout.nodes}" if layout.min_nodes else str(layout.nodes)
    run = [job.python, "-m", "torch.distributed.run", f"--nnodes={nnodes}",
           f"--nproc-per-node={layout.procs_per_node}", "--rdzv-backend=c10d", f"--max-restarts={job.max_restarts}"]
    worker = ["-m", "gpuwise.cli", "train", *worker_args(job.train, Devices(layout.kind, layout.procs_per_node))]
    lines = [f"export {WORKER_ENV}=1"]
    if layout.kind == "cpu":  # torchrun would give each worker 1 thread: share the node's cores instead
        per = layout.procs_per_node
        lines.append(f"export OMP_NUM_THREADS=$(( {cores} / {per} > 0 ? {cores} / {per} : 1 ))")
    lines += [f"CHECKPOINT_DIR={shlex.quote(job.checkpoint_dir)}", RESUME_SHELL,
              f'{prefix}{shlex.join(run)} --rdzv-endpoint="{rdzv_host}:{job.rdzv_port}" --rdzv-id="{rdzv_id}" '
              f'{shlex.join(worker)} "${{RESUME[@]}}"']
    return lines


def header_lines(job: Job) -> list[str]:
    """What the job is, for a comment at the top of its file."""
    return [
        f"gpuwise launch: {job.workload} on {job.layout.label} ({job.strategy}); the plan chose {job.planned}",
        f"time limit {duration(job.time_limit_s)}: {job.time_basis}",
        f"checkpoints in {job.checkpoint_dir}; a requeued or restarted job resumes from the newest one",
    ]


def slurm_time(seconds: int) -> str:
    """Slurm's D-HH:MM:SS."""
    minutes = math.ceil(seconds / 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    return f"{days}-{hours:02d}:{mins:02d}:00"
