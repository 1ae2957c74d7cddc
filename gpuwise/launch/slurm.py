"""A ``Job`` as an ``sbatch`` script.

One task per node (``srun --ntasks-per-node=1``) runs torchrun; the first node of the allocation
is the c10d rendezvous host, at the address Slurm knows it by (``NodeAddr``). ``--requeue`` lets
Slurm restart the job after a node failure or preemption, and ``--signal=TERM@120`` sends SIGTERM to
the job's processes two minutes before the time limit: training finishes its step, writes a
checkpoint and stops, and a resubmission (or the requeue) resumes from it.
"""

from __future__ import annotations

from gpuwise.launch.job import Job, header_lines, node_script, slurm_time

SIGNAL_BEFORE_LIMIT_S = 120  # time for the step in flight and a checkpoint write before Slurm kills the job


def render(job: Job) -> str:
    layout = job.layout
    nodes = f"{layout.min_nodes}-{layout.nodes}" if layout.min_nodes else str(layout.nodes)
    directives = [
        f"--job-name={job.name}",
        f"--nodes={nodes}",
        "--ntasks-per-node=1",
        *([f"--gpus-per-node={layout.procs_per_node}"] if layout.kind == "cuda" else []),
        f"--time={slurm_time(job.time_limit_s)}",
        "--requeue",
        f"--signal=TERM@{SIGNAL_BEFORE_LIMIT_S}",
        "--open-mode=append",  # a requeued job adds to the same log
        f"--output={job.name}-%j.out",
        *([f"--partition={job.options.partition}"] if job.options.partition else []),
        *([f"--account={job.options.account}"] if job.options.account else []),
    ]
    lines = ["#!/bin/bash", *(f"# {line}" for line in header_lines(job)), *(f"#SBATCH {d}" for d in directives)]
    lines += [
        "set -euo pipefail",
        "# The first node hosts the rendezvous, at the address Slurm reaches it by.",
        'HEAD=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)',
        "HEAD_ADDR=$(scontrol show node \"$HEAD\" | sed -n 's/.*NodeAddr=\\([^ ]*\\).*/\\1/p')",
        *node_script(job, rdzv_host="$HEAD_ADDR", rdzv_id="$SLURM_JOB_ID", cores="${SLURM_CPUS_ON_NODE:-$(nproc)}",
                     prefix="srun --ntasks-per-node=1 --kill-on-bad-exit=1 "),
    ]
    return "\n".join(lines) + "\n"
