"""Launch = plan, then execute.

``build_launch`` is pure: from the run's settings, the devices and the nodes it makes the
``torchrun`` command (``python -m torch.distributed.run``), the environment it adds, the world
size and the rendezvous — unit-tested for 1 node × 8 GPUs and 2 nodes × 8 GPUs without any GPU.
``--dry-run`` prints it (``format_launch``); ``execute`` is the one small function that runs it.

Each worker is ``gpuwise train`` again, with every setting spelled out as a flag (so the command
printed is the command run) and ``GPUWISE_TRAIN_WORKER=1`` in its environment, which makes it run
the loop itself instead of launching.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from gpuwise.config import Strategy
from gpuwise.errors import WORKER_ERRORS_ENV, GpuwiseError
from gpuwise.train.config import Devices, TrainConfig, parse_devices

WORKER_ENV = "GPUWISE_TRAIN_WORKER"
DEFAULT_MASTER_PORT = 29500  # torchrun's own default


@dataclass(frozen=True)
class Nodes:
    """Where this node stands among the nodes of the run."""

    count: int = 1
    rank: int = 0
    master_addr: str | None = None  # the host of node 0; needed with several nodes
    master_port: int = DEFAULT_MASTER_PORT
    min_count: int | None = None  # elastic (--nodes MIN:MAX): torchrun's c10d rendezvous admits MIN to count nodes

    def __post_init__(self) -> None:
        if self.min_count is not None and not 1 <= self.min_count <= self.count:
            raise GpuwiseError(f"--nodes {self.min_count}:{self.count}: give MIN:MAX with 1 <= MIN <= MAX")
        if self.count < 1:
            raise GpuwiseError(f"--nodes must be at least 1, got {self.count}")
        if not 0 <= self.rank < self.count:
            raise GpuwiseError(
                f"--node-rank {self.rank} is not below --nodes {self.count}: node ranks run 0 .. {self.count - 1}"
            )
        if self.count > 1 and not self.master_addr:
            raise GpuwiseError(f"--nodes {self.count} needs --master-addr HOST: the address of node 0")
        if not 1 <= self.master_port <= 65535:
            raise GpuwiseError(f"--master-port must be a TCP port (1-65535), got {self.master_port}")


@dataclass(frozen=True)
class Launch:
    """How the run starts on this node."""

    in_process: bool  # one device on one node: the loop runs in this process, no torchrun
    argv: tuple[str, ...]  # the command (for in_process: the equivalent worker command, for show)
    env: dict[str, str] = field(default_factory=dict)  # added to the caller's environment
    world_size: int = 1
    nproc_per_node: int = 1
    nnodes: int = 1
    node_rank: int = 0
    rendezvous: str | None = None  # "host:port" of node 0; None: standalone, on this host
    backend: str = "gloo"  # "nccl" on GPUs
    max_restarts: int = 0  # torchrun restarts the workers this often after one dies; they resume (``restart_resume``)


def build_launch(config: TrainConfig, devices: Devices, nodes: Nodes = Nodes(), *, python: str = "python",
                 cpu_threads: int = 1, output_args: tuple[str, ...] = (), max_restarts: int = 0) -> Launch:
    """The launch for this node. ``cpu_threads`` is this node's logical CPUs, shared among its processes;
    ``output_args`` are flags that change only what rank 0 prints (``--json``)."""
    nproc = devices.count
    world = nproc * nodes.count
    backend = "nccl" if devices.kind == "cuda" else "gloo"
    worker = ("-m", "gpuwise.cli", "train", *worker_args(config, devices), *output_args)
    env = {WORKER_ENV: "1"}
    if devices.kind == "cuda" and devices.index is not None:
        env["CUDA_VISIBLE_DEVICES"] = str(devices.index)
    if world == 1:
        return Launch(in_process=True, argv=(python, *worker), env=env, backend=backend, max_restarts=max_restarts)
    # torchrun sets OMP_NUM_THREADS=1 (with a warning) when unset: CPU workers would crawl. Share the cores.
    env["OMP_NUM_THREADS"] = str(max(1, cpu_threads // nproc))
    run = [python, "-m", "torch.distributed.run", f"--nnodes={nodes.count}", f"--nproc-per-node={nproc}"]
    if max_restarts:
        run.append(f"--max-restarts={max_restarts}")
    rendezvous = None
    if nodes.count == 1:
        run.append("--standalone")
    elif nodes.min_count is not None:  # elastic: c10d assigns node ranks as nodes join (and rejoin)
        rendezvous = f"{nodes.master_addr}:{nodes.master_port}"
        run[3] = f"--nnodes={nodes.min_count}:{nodes.count}"
        run += ["--rdzv-backend=c10d", f"--rdzv-endpoint={rendezvous}", "--rdzv-id=gpuwise-train"]
    else:
        rendezvous = f"{nodes.master_addr}:{nodes.master_port}"
        run += [f"--node-rank={nodes.rank}", f"--master-addr={nodes.master_addr}",
                f"--master-port={nodes.master_port}"]
    return Launch(in_process=False, argv=(*run, *worker), env=env, world_size=world, nproc_per_node=nproc,
                  nnodes=nodes.count, node_rank=nodes.rank, rendezvous=rendezvous, backend=backend,
                  max_restarts=max_restarts)


def worker_args(config: TrainConfig, devices: Devices) -> list[str]:
    """Every setting of ``config`` as ``gpuwise train`` flags; defaults left out to keep the command short."""
    defaults = TrainConfig.of(workload=config.workload)
    args = [config.workload, "--devices", "cpu" if devices.kind == "cpu" else "cuda"]
    flags: list[tuple[str, object, object]] = [
        ("--data", config.data, defaults.data),
        ("--batch-size", config.batch_size, None),
        ("--precision", config.precision.value, defaults.precision.value),
        ("--optimizer", config.optimizer.value, defaults.optimizer.value),
        ("--seq-len", config.seq_len, None),
        ("--image-size", config.image_size, None),
        ("--seed", config.seed, defaults.seed),
        ("--epochs", config.epochs, None),
        ("--steps", config.steps, None),
        ("--warmup", config.warmup, defaults.warmup),
        ("--strategy", config.strategy.value, Strategy.AUTO.value),
        ("--grad-accum", config.grad_accum, defaults.grad_accum),
        ("--activation-checkpointing", config.activation_checkpointing.value, defaults.activation_checkpointing.value),
        ("--synthetic-samples", config.synthetic_samples, defaults.synthetic_samples),
        ("--workers", config.num_workers, None),
        ("--checkpoint-dir", config.checkpoint_dir, None),
        ("--checkpoint-every", config.checkpoint_every, None),
        ("--keep-checkpoints", config.keep_checkpoints, defaults.keep_checkpoints),
        ("--resume", config.resume, None),
        ("--db", config.store_path, None),
        ("--log-dir", config.log_dir, None),
        ("--lr", config.lr, None),
        ("--warmup-steps", config.warmup_steps, defaults.warmup_steps),
        ("--lr-schedule", config.lr_schedule, defaults.lr_schedule),
        ("--weight-decay", config.weight_decay, None),
    ]
    for flag, value, default in flags:
        if value is not None and value != default:
            args += [flag, str(value)]
    if config.compile:
        args.append("--compile")
    if config.fp8:
        args.append("--fp8")
    return args


def parse_nodes(text: str) -> tuple[int, int | None]:
    """``--nodes N`` or, elastic, ``MIN:MAX``: (the most nodes, the fewest or None)."""
    if ":" in text:
        low, _, high = text.partition(":")
        try:
            least, most = int(low), int(high)
        except ValueError:
            raise GpuwiseError(f"--nodes {text}: give N or MIN:MAX nodes, e.g. --nodes 2:4") from None
        Nodes(count=most, min_count=least, master_addr="-")  # checks them
        return most, least
    try:
        count = int(text)
    except ValueError:
        raise GpuwiseError(f"--nodes must be a positive integer or MIN:MAX, got '{text}'") from None
    if count < 1:
        raise GpuwiseError(f"--nodes must be a positive integer, got {count}")
    return count, None


def worker_devices(text: str, num_gpus: int) -> Devices:
    """A torchrun worker's devices. ``--devices cuda`` in a worker's command means one GPU per worker, the
    one of its LOCAL_RANK (torchrun starts a worker per GPU); elsewhere it means cuda:0."""
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    if text.strip().lower() == "cuda" and local > 1:
        return Devices("cuda", local)
    return parse_devices(text, num_gpus=num_gpus)


def restart_resume(config: TrainConfig) -> TrainConfig:
    """After torchrun restarted the workers (a worker died; ``--max-restarts``), continue from the newest good
    checkpoint in the run's folder instead of starting over; unchanged on the first start or without one."""
    from dataclasses import replace

    from gpuwise.train import checkpoint

    restarts = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))
    folder = config.checkpoint_dir
    if restarts < 1 or config.resume is not None or folder is None or checkpoint.find(folder) is None:
        return config
    return replace(config, resume=folder)


def format_launch(launch: Launch) -> str:
    """The launch as a person would type it: environment, then the command."""
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(launch.env.items()))
    return f"{env} {shlex.join(launch.argv)}".strip()


def execute(launch: Launch) -> int:
    """Run the launch's torchrun command; return its exit status, or 128 + the signal that stopped the run. A
    worker's one-line mistake (``gpuwise.errors.hand_to_launcher``) is raised here once, as a ``GpuwiseError``.

    Ctrl-C reaches torchrun and its workers from the terminal (the whole process group gets it);
    a SIGTERM sent to this process alone is passed on to torchrun, which passes it to its workers.
    Either way the workers checkpoint and stop, and this process waits for them before exiting.
    """
    received: list[int] = []
    process: subprocess.Popen[bytes] | None = None

    def on_signal(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        if signum == signal.SIGTERM and process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with tempfile.TemporaryDirectory(prefix="gpuwise-errors-") as errors:
            process = subprocess.Popen(list(launch.argv), env={**os.environ, **launch.env, WORKER_ERRORS_ENV: errors},
                                       stderr=subprocess.PIPE)
            held = _pass_stderr_on(process)
            code = process.wait()
            reported = sorted(Path(errors).glob("rank-*.txt"))
            if code and reported and not received:
                raise GpuwiseError(reported[0].read_text())  # the workers' own line, once; torchrun's report dropped
            sys.stderr.write("".join(held))
            return 128 + received[0] if received else code
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


# torchrun's own log lines ("E1206 12:10:52.563000 27310 .../torch/distributed/elastic/...: failed (exitcode: 2)"):
# from the first, what follows is its report of failed workers, held back until it is known whether a
# worker told its mistake in one line.
_AGENT_LOG = re.compile(r"^[EWC]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ .*torch/distributed/elastic/")


def _pass_stderr_on(process: subprocess.Popen[bytes]) -> list[str]:
    """Copy the run's stderr to ours as it comes, until torchrun reports failed workers; return what was held."""
    assert process.stderr is not None
    held: list[str] = []
    for raw in process.stderr:
        line = raw.decode(errors="replace")
        if held or _AGENT_LOG.match(line):
            held.append(line)
        else:
            sys.stderr.write(line)
            sys.stderr.flush()
    return held
