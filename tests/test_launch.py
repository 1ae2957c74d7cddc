"""gpuwise launch: the planned option as a Slurm script, a SkyPilot task and a Kubeflow PyTorchJob.

The files are checked by the schedulers' own rules where they can be had here: bash parses the
sbatch script, SkyPilot's loader reads the task (when the skypilot extra is installed), and the
PyTorchJob is validated against the Training Operator's CRD schema (tests/data, source inside).
The real Slurm run is tests/test_launch_slurm.py.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpuwise.launch import kubernetes, skypilot, slurm
from gpuwise.launch.job import STARTUP_ALLOWANCE_S, Job, TargetOptions, build_job, slurm_time
from gpuwise.train.config import Devices
from gpuwise.train.recommended import FILE_NAME, Recommended
from tests.helpers import run_cli

SCHEMA = Path(__file__).parent / "data" / "kubeflow_pytorchjob_v1_schema.json"


def recommended(**kw: Any) -> Recommended:
    """What gpuwise plan saves for 2 nodes × 8 H100 (DDP), predicted at one hour ± 40%."""
    fields: dict[str, Any] = dict(
        workload="resnet50", batch_size=256, precision="amp-bf16", optimizer="adamw", seq_len=None,
        image_size=224, epochs=90, samples_per_epoch=1_281_167, device="H100-SXM5-80GB",
        label="16× H100-SXM5-80GB", num_gpus=16, num_nodes=2, strategy="DDP", total_s=3600.0, band=0.4,
        activation_checkpointing="selective", grad_accum=2, compile=False)
    fields.update(kw)
    return Recommended(**fields)


def job(target: str = "slurm", rec: Recommended | None = None, **kw: Any) -> Job:
    kw.setdefault("data", "/shared/imagenet")
    kw.setdefault("checkpoint_dir", "/shared/ckpt")
    return build_job(rec or recommended(), target=target, **kw)


# ------------------------------------------------------------------ the job


def test_the_job_runs_what_the_plan_priced() -> None:
    j = job()
    assert (j.layout.nodes, j.layout.procs_per_node, j.layout.kind) == (2, 8, "cuda")
    limit = 3600 * 1.4 + STARTUP_ALLOWANCE_S
    assert j.time_limit_s == math.ceil(limit / 60) * 60 and "40% band" in j.time_basis
    t = j.train
    assert (t.batch_size, t.precision.value, t.grad_accum, t.activation_checkpointing.value, t.epochs) == (
        256, "amp-bf16", 2, "selective", 90)


def test_slurm_script_parses_and_asks_for_the_nodes_gpus_and_time() -> None:
    text = slurm.render(job())
    directives = [line.removeprefix("#SBATCH ") for line in text.splitlines() if line.startswith("#SBATCH")]
    assert {"--nodes=2", "--ntasks-per-node=1", "--gpus-per-node=8", "--requeue", "--signal=TERM@120",
            f"--time={slurm_time(job().time_limit_s)}"} <= set(directives)
    run = text.splitlines()[-1]
    assert run.startswith("srun ") and "--rdzv-backend=c10d" in run and '--rdzv-endpoint="$HEAD_ADDR:29500"' in run
    assert "--nnodes=2 --nproc-per-node=8" in run and "--grad-accum 2" in run and "--precision amp-bf16" in run
    assert run.endswith('"${RESUME[@]}"')
    assert subprocess.run(["bash", "-n"], input=text, text=True).returncode == 0


def test_the_resume_lines_add_resume_only_when_a_checkpoint_is_there(tmp_path: Path) -> None:
    from gpuwise.launch.job import RESUME_SHELL

    def resume_args() -> str:
        script = f"CHECKPOINT_DIR={tmp_path}\n{RESUME_SHELL}\necho \"${{RESUME[@]}}\""
        return subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout.strip()

    (tmp_path / "step-000000004.pt").write_bytes(b"cut short: no manifest")
    assert resume_args() == ""
    (tmp_path / "step-000000002.json").write_text("{}")
    assert resume_args() == f"--resume {tmp_path}"


def test_slurm_time_format() -> None:
    assert [slurm_time(s) for s in (60, 3601, 86400 + 90)] == ["0-00:01:00", "0-01:01:00", "1-00:02:00"]


def test_elastic_nodes_reach_torchrun_slurm_and_the_pytorchjob() -> None:
    j = job(elastic=(1, 4), time_s=3600)
    assert "--nnodes=1:4" in slurm.render(j) and "#SBATCH --nodes=1-4" in slurm.render(j)
    spec = kubernetes.manifest(dataclasses.replace(j, options=TargetOptions(image="img")))["spec"]
    assert spec["elasticPolicy"] == {"rdzvBackend": "c10d", "minReplicas": 1, "maxReplicas": 4, "maxRestarts": 3}


# ------------------------------------------------------------------ Kubernetes and SkyPilot, by their own rules


@pytest.mark.parametrize("elastic", [None, (2, 4)])
def test_pytorchjob_is_valid_for_the_kubeflow_crd(elastic: tuple[int, int] | None) -> None:
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema (the dev extra) validates the manifest")
    stored = json.loads(SCHEMA.read_text())
    j = job("kubernetes", elastic=elastic, time_s=7200 if elastic else None,
            options=TargetOptions(image="ghcr.io/me/gpuwise:latest", pvc="ckpt"))
    manifest = yaml.safe_load(kubernetes.render(j))
    jsonschema.validate(manifest, stored["schema"])
    specs = manifest["spec"]["pytorchReplicaSpecs"]
    container = next(iter(specs.values()))["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"] == {"nvidia.com/gpu": 8}
    assert manifest["spec"]["runPolicy"]["activeDeadlineSeconds"] == j.time_limit_s
    if elastic is None:
        assert (specs["Master"]["replicas"], specs["Worker"]["replicas"]) == (1, 1)


def test_the_schema_rejects_what_the_operator_would() -> None:
    """The stored schema can fail: a replica count as text is refused."""
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema (the dev extra) validates the manifest")
    manifest = kubernetes.manifest(job("kubernetes", options=TargetOptions(image="img")))
    manifest["spec"]["pytorchReplicaSpecs"]["Master"]["replicas"] = "one"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(manifest, json.loads(SCHEMA.read_text())["schema"])


def test_skypilot_task_loads_with_skypilots_own_loader(tmp_path: Path) -> None:
    pytest.importorskip("sky", reason="the skypilot extra (pip install 'gpuwise[skypilot]') reads the task")
    import sky

    path = tmp_path / "task.yaml"
    path.write_text(skypilot.render(job("skypilot", options=TargetOptions(bucket="s3://my-ckpt"))))
    task = sky.Task.from_yaml(str(path))
    assert task.num_nodes == 2
    (resources,) = task.resources
    assert resources.accelerators == {"H100": 8}
    assert "$SKYPILOT_NODE_IPS" in task.run and "timeout --signal=TERM" in task.run
    assert "/shared/ckpt" in task.storage_mounts


def test_skypilot_task_without_skypilot() -> None:
    data = yaml.safe_load(skypilot.render(job("skypilot")))
    assert (data["num_nodes"], data["resources"]["accelerators"]) == (2, "H100:8")
    assert subprocess.run(["bash", "-n"], input=data["run"], text=True).returncode == 0


# ------------------------------------------------------------------ the command


@pytest.fixture
def saved_plan(tmp_path: Path) -> Path:
    (tmp_path / FILE_NAME).write_text(json.dumps(dataclasses.asdict(recommended())))
    return tmp_path / "results.db"


def test_launch_from_the_saved_plan_writes_the_file(saved_plan: Path, tmp_path: Path) -> None:
    out = tmp_path / "job.sbatch"
    code, stdout, _ = run_cli("launch", "--from-plan", "--target", "slurm", "--data", "/shared/imagenet",
                              "--checkpoint-dir", "/shared/ckpt", "--db", str(saved_plan), "--output", str(out))
    assert code == 0 and "2 nodes × 8× H100-SXM5-80GB" in stdout
    assert "#SBATCH --nodes=2" in out.read_text()


@pytest.mark.parametrize(("args", "message"), [
    (["--target", "lsf"], "unknown target 'lsf': use --target slurm | skypilot | kubernetes"),
    (["--target", "slurm", "--devices", "16", "--time", "1h"], "at most 8 GPUs; use --nodes 2 --devices 8"),
    (["--target", "slurm", "--checkpoint-dir", "ckpt"], "--checkpoint-dir ckpt: a job on 2 nodes needs an absolute"),
    (["--target", "slurm", "--data", "data/train"], "--data data/train: a job on 2 nodes needs an absolute path"),
    (["--target", "kubernetes"], "--target kubernetes needs --image"),
    (["--target", "slurm", "--nodes", "4"], "the plan priced 16× H100-SXM5-80GB, not 4 nodes"),
    (["--target", "slurm", "--nnodes", "3:2"], "--nnodes 3:2: give MIN:MAX"),
    (["--target", "slurm", "--max-restarts", "-1"], "--max-restarts must be a whole number"),
    (["bert-base", "--target", "slurm"], "the saved plan"),
])
def test_bad_input_is_one_line(saved_plan: Path, args: list[str], message: str, tmp_path: Path) -> None:
    workload = [] if not args[0].startswith("-") else ["resnet50"]
    base = {"--data": "/shared/imagenet", "--checkpoint-dir": "/shared/ckpt"}
    for flag, value in base.items():
        if flag not in args:
            args = [*args, flag, value]
    code, _, err = run_cli("launch", *workload, *args, "--from-plan", "--db", str(saved_plan), "--output",
                           str(tmp_path / "job"))
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_submit_without_the_schedulers_client_says_what_to_install(saved_plan: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    for target, tool in (("slurm", "sbatch"), ("kubernetes", "kubectl")):
        code, _, err = run_cli("launch", "--from-plan", "--target", target, "--data", "/d", "--checkpoint-dir", "/c",
                               "--image", "img", "--submit", "--db", str(saved_plan))
        assert code == 2 and f"'{tool}' is not on PATH; install" in err


def test_devices_override_for_a_cpu_job() -> None:
    j = job(rec=recommended(device="cpu", label="your CPU", num_gpus=1, num_nodes=1, strategy="single"),
            nodes=2, devices=Devices("cpu", 1), time_s=600)
    text = slurm.render(j)
    assert "--gpus-per-node" not in text and "export OMP_NUM_THREADS=" in text and "--devices cpu" in text


def test_launch_plans_here_and_submits(tiny: str, db: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --from-plan the command plans with plan's flags; --submit hands the file to sbatch."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sbatch = bin_dir / "sbatch"
    sbatch.write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path}/sbatch-args\necho '4242;cluster'\n")
    sbatch.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    out_file = tmp_path / "tiny.sbatch"
    code, out, err = run_cli("launch", tiny, "--target", "slurm", "--dataset-size", "640", "--epochs", "2",
                             "--gpus", "T4", "--max-gpus", "1", "--data", "synthetic", "--checkpoint-dir",
                             str(tmp_path / "ckpt"), "--db", str(db), "--output", str(out_file), "--submit")
    assert code == 0, err
    assert "submitted: 4242" in out and (tmp_path / "sbatch-args").read_text().split() == ["--parsable",
                                                                                           str(out_file)]
    rec = json.loads((db.parent / FILE_NAME).read_text()) if (db.parent / FILE_NAME).exists() else None
    assert rec is None  # launch plans without replacing the saved plan
    assert "--epochs 2" in out_file.read_text() and "predicted" in out_file.read_text()
