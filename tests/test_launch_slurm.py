"""gpuwise launch --target slurm on a real Slurm: a single-host cluster of two nodes.

The fixture starts munged, slurmctld and two slurmd (nodes n1 and n2, both this host, each on its
own port: Debian's slurm-wlm is built with multiple-slurmd support) from a temporary slurm.conf,
and stops them after. The test runs the script ``gpuwise launch`` writes: a 2-node × 1-process
CPU job (gloo), cancelled mid-run with scancel and resubmitted; the second job resumes from the
checkpoint, finishes, and its result lands in the results store. Skipped only where Slurm is not
installed; under CI (``CI`` set) that fails instead: ``.ci/run`` installs it (apt-get install slurm-wlm munge).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpuwise.train import checkpoint
from gpuwise.train.recommended import FILE_NAME, Recommended
from tests.helpers import run_cli

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ("munged", "munge", "slurmctld", "slurmd", "sbatch", "scancel", "scontrol", "sinfo")

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_until(check: object, what: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def slurm_conf(folder: Path) -> str:
    host = socket.gethostname()
    nodes = "\n".join(
        f"NodeName={name} NodeHostname={host} NodeAddr=127.0.0.1 Port={free_port()} CPUs={os.cpu_count() or 1} "
        "RealMemory=1000 State=UNKNOWN" for name in ("n1", "n2"))
    return f"""ClusterName=gpuwisetest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={free_port()}
AuthType=auth/munge
AuthInfo=socket={folder}/munge.sock
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool-%n
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd-%n.pid
SlurmctldLogFile={folder}/slurmctld.log
SlurmdLogFile={folder}/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
KillWait=30
{nodes}
PartitionName=test Nodes=n1,n2 Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE
"""


@pytest.fixture(scope="module")
def slurm() -> Iterator[dict[str, str]]:
    """A running two-node cluster on this host; the environment its clients need (SLURM_CONF)."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        why = f"Slurm is not installed ({', '.join(missing)} missing): apt-get install slurm-wlm munge"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the Slurm test: {why}; .ci/run installs them")
        pytest.skip(why)
    if os.geteuid() != 0:
        pytest.skip("the single-host cluster runs slurmd as root (it starts jobs as their user)")
    folder = Path(tempfile.mkdtemp(prefix="gw-slurm-"))  # short: munge's socket path has a length limit
    (folder / "state").mkdir()
    key = folder / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    conf = folder / "slurm.conf"
    conf.write_text(slurm_conf(folder))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    started: list[Path] = []
    try:
        subprocess.run(["munged", "--force", f"--socket={folder}/munge.sock", f"--key-file={key}",
                        f"--log-file={folder}/munged.log", f"--pid-file={folder}/munged.pid",
                        f"--seed-file={folder}/munged.seed"], check=True)
        started.append(folder / "munged.pid")
        subprocess.run(["slurmctld", "-f", str(conf)], check=True, env=env)
        started.append(folder / "slurmctld.pid")
        for node in ("n1", "n2"):
            subprocess.run(["slurmd", "-f", str(conf), "-N", node], check=True, env=env)
            started.append(folder / f"slurmd-{node}.pid")

        def idle() -> bool:
            out = subprocess.run(["sinfo", "-h", "-o", "%T %D"], capture_output=True, text=True, env=env).stdout
            return out.split() == ["idle", "2"]

        wait_until(idle, "two idle Slurm nodes", 60)
        yield {"SLURM_CONF": str(conf)}
    finally:
        for pid_file in reversed(started):
            try:
                os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
            except (OSError, ValueError):
                pass
        time.sleep(1)
        shutil.rmtree(folder, ignore_errors=True)


def job_state(job_id: str, env: dict[str, str]) -> str:
    out = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True, env=env).stdout
    match = re.search(r"JobState=(\w+)", out)
    return match[1] if match else "UNKNOWN"


def submit(script: Path, env: dict[str, str]) -> str:
    done = subprocess.run(["sbatch", "--parsable", str(script)], capture_output=True, text=True, env=env,
                          cwd=script.parent, check=True)
    return done.stdout.strip().split(";")[0]


def test_a_generated_job_runs_is_cancelled_and_resumes(slurm: dict[str, str], tiny: str, db: Path,
                                                        tmp_path: Path) -> None:
    # The plan recommends this CPU for a tiny model; the job spreads it over the two nodes instead.
    rec = Recommended(workload=tiny, batch_size=4, precision="fp32", optimizer="adamw", seq_len=None,
                      image_size=None, epochs=1, samples_per_epoch=64, device="cpu", label="your CPU", num_gpus=1,
                      num_nodes=1, strategy="single", total_s=1.0, band=0.3)
    (db.parent / FILE_NAME).write_text(json.dumps(dataclasses.asdict(rec)))
    run = tmp_path / "ckpt"
    script = tmp_path / "job.sbatch"
    code, out, err = run_cli("launch", "--from-plan", "--target", "slurm", "--data", "synthetic",
                             "--checkpoint-dir", str(run), "--nodes", "2", "--devices", "cpu", "--time", "15m",
                             "--steps", "12", "--checkpoint-every", "2", "--python", sys.executable,
                             "--rdzv-port", str(free_port()), "--db", str(db), "--output", str(script))
    assert code == 0, err
    env = {**os.environ, **slurm, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "GPUWISE_TEST_STEP_SLEEP_S": "0.3"}

    first = submit(script, env)
    wait_until(lambda: ((found := checkpoint.find(run)) is not None and found.step >= 4) or
               job_state(first, env) not in ("PENDING", "RUNNING"), "a checkpoint of the first job", 240)
    assert job_state(first, env) == "RUNNING", (tmp_path / f"gpuwise-tiny-{first}.out").read_text()[-3000:]
    subprocess.run(["scancel", first], check=True, env=env)
    wait_until(lambda: job_state(first, env) not in ("RUNNING", "COMPLETING", "PENDING"), "scancel", 120)
    assert job_state(first, env) == "CANCELLED"
    stopped = checkpoint.find(run)
    assert stopped is not None and 4 <= stopped.step < 12
    # scancel sent SIGTERM first: the run finished its step and wrote a checkpoint there
    assert f"stopped by SIGTERM after step {stopped.step}" in (tmp_path / f"gpuwise-tiny-{first}.out").read_text()

    second = submit(script, env)
    wait_until(lambda: job_state(second, env) not in ("PENDING", "RUNNING", "COMPLETING"), "the second job", 300)
    log = (tmp_path / f"gpuwise-tiny-{second}.out").read_text()
    assert job_state(second, env) == "COMPLETED", log[-3000:]
    match = re.search(r"trained steps (\d+) → 12 of 12", log)
    assert match and int(match[1]) >= stopped.step, log[-3000:]  # continued, not started over

    code, out, _ = run_cli("results", "--db", str(db), "--json")
    stored = [r for r in json.loads(out) if r["origin"] == "train"]
    assert code == 0 and len(stored) == 1 and stored[0]["num_devices"] == 2
