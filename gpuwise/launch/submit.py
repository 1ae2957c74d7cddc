"""Hand a job file to its scheduler (``gpuwise launch --submit``): the one place that runs one."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from gpuwise.errors import GpuwiseError
from gpuwise.launch.job import SUBMIT_TOOLS, Job


def submit_command(job: Job, path: Path) -> list[str]:
    if job.target == "slurm":
        return ["sbatch", "--parsable", str(path)]
    if job.target == "skypilot":
        return ["sky", "launch", "--yes", "--cluster", job.name, str(path)]
    return ["kubectl", "apply", "-f", str(path)]


def check_tool(target: str) -> None:
    """One line naming what to install when the scheduler's client is not on PATH (before anything is written)."""
    tool, what = SUBMIT_TOOLS[target]
    if shutil.which(tool) is None:
        raise GpuwiseError(f"--submit: '{tool}' is not on PATH; install {what}, or write the file without --submit "
                           "and submit it where the scheduler's client is")


def submit(job: Job, path: Path) -> str:
    """Submit; return the scheduler's id of the job (Slurm's job id, the PyTorchJob's name, SkyPilot's cluster)."""
    check_tool(job.target)
    command = submit_command(job, path)
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise GpuwiseError(f"{command[0]} refused the job ({detail[-1] if detail else f'exit {done.returncode}'}); "
                           f"the file is {path}")
    if job.target == "slurm":
        match = re.match(r"\s*(\d+)", done.stdout)
        return match[1] if match else done.stdout.strip()
    return job.name
