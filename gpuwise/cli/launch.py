"""``gpuwise launch``: the option the plan chose, as a job for Slurm, SkyPilot or Kubernetes.

The option comes from planning here (plan's flags) or from the last saved plan (``--from-plan``);
``gpuwise.launch.job`` makes the job and the target's module renders it. Nothing is computed here.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from gpuwise.cli.app import (
    CHECKPOINTING_OPTION,
    COMPILE_OPTION,
    CPU_THREADS_OPTION,
    DB_OPTION,
    GRAD_ACCUM_OPTION,
    IMAGE_SIZE_OPTION,
    OPTIMIZER_OPTION,
    PRECISION_OPTION,
    SEQ_LEN_OPTION,
    STRATEGY_OPTION,
    app,
    count_option,
    positive_int,
    run_settings,
    user_errors,
    whole_number,
)
from gpuwise.errors import GpuwiseError
from gpuwise.launch.job import DEFAULT_MAX_RESTARTS, TARGETS, Job, TargetOptions, build_job, check_target
from gpuwise.train.launch import DEFAULT_MASTER_PORT
from gpuwise.train.recommended import Recommended

EXTENSIONS = {"slurm": ".sbatch", "skypilot": ".sky.yaml", "kubernetes": ".pytorchjob.yaml"}


@app.command("launch")
@user_errors
def launch_command(
    workload: str = typer.Argument(None, help="A zoo name or path/to/file.py:factory [with --from-plan: the plan's]."),
    target: str = typer.Option(..., "--target", help=" | ".join(TARGETS)),
    data: str = typer.Option(..., "--data", help="'synthetic' or the data's path on the cluster (absolute for "
                                                 "several nodes)."),
    checkpoint_dir: str = typer.Option(..., "--checkpoint-dir", help="Checkpoints, on storage every node sees; a "
                                                                     "requeued job resumes from them."),
    from_plan: bool = typer.Option(False, "--from-plan", help="The option 'gpuwise plan' recommended last."),
    dataset_size: str = typer.Option(None, "--dataset-size", help="Plan here: samples per epoch (tokens with "
                                                                  "--unit token)."),
    epochs: str = typer.Option(None, "--epochs", help="Plan here: passes over the data set."),
    unit: str = typer.Option(None, "--unit", help="What --dataset-size counts: sample | token."),
    deadline: str = typer.Option(None, "--deadline", help="Plan here: finish within (90m, 48h, 2d)."),
    budget: str = typer.Option(None, "--budget", help="Plan here: spend at most this many US dollars."),
    gpus: str = typer.Option(None, "--gpus", "--gpu", help="Plan here: only these catalog GPUs, comma-separated."),
    max_gpus: int | None = count_option(None, "--max-gpus", help="Plan here: the most GPUs to consider [default: 64]."),
    batch_size: int | None = count_option(None, "--batch-size", "-b", help="Per GPU [default: the workload's]."),
    precision: str = PRECISION_OPTION,
    optimizer: str = OPTIMIZER_OPTION,
    seq_len: int | None = SEQ_LEN_OPTION,
    image_size: int | None = IMAGE_SIZE_OPTION,
    strategy: str = STRATEGY_OPTION,
    checkpointing: str = CHECKPOINTING_OPTION,
    grad_accum: int | None = GRAD_ACCUM_OPTION,
    compile: bool = COMPILE_OPTION,
    cpu_threads: int | None = CPU_THREADS_OPTION,
    catalog: Path | None = typer.Option(None, "--catalog", metavar="PATH", help="Your own GPU catalog file (TOML)."),
    nodes: int | None = count_option(None, "--nodes", help="Nodes instead of the plan's (then give --time)."),
    devices: str = typer.Option(None, "--devices", "--device",
                                help="Per node instead of the plan's: N (GPUs), cpu, cpu:N (then give --time)."),
    nnodes: str = typer.Option(None, "--nnodes", help="MIN:MAX: an elastic job on MIN to MAX nodes (not FSDP)."),
    steps: int | None = count_option(None, "--steps", help="Optimizer steps in all, instead of the plan's epochs."),
    checkpoint_every: int | None = count_option(None, "--checkpoint-every", help="Also checkpoint every N steps "
                                                "[default: on SIGTERM and at the end]."),
    time: str = typer.Option(None, "--time", help="The job's time limit (90m, 2h) [default: the plan's predicted "
                                                  "time at the top of its band, plus a startup allowance]."),
    max_restarts: int | None = count_option(DEFAULT_MAX_RESTARTS, "--max-restarts", minimum=0,
                                            help="Restarts of a node's workers after one dies (torchrun)."),
    rdzv_port: int | None = count_option(DEFAULT_MASTER_PORT, "--rdzv-port", help="The rendezvous port on node 0."),
    python: str = typer.Option("python3", "--python", help="The Python with gpuwise installed, on the nodes."),
    log_dir: str = typer.Option(None, "--log-dir", help="Per-step metrics and TensorBoard events [default: the "
                                                        "checkpoint folder]."),
    partition: str = typer.Option(None, "--partition", help="Slurm partition."),
    account: str = typer.Option(None, "--account", help="Slurm account."),
    image: str = typer.Option(None, "--image", help="Container image with gpuwise (Kubernetes; SkyPilot: optional)."),
    namespace: str = typer.Option("default", "--namespace", help="Kubernetes namespace."),
    pvc: str = typer.Option(None, "--pvc", help="Kubernetes PersistentVolumeClaim mounted at --checkpoint-dir."),
    bucket: str = typer.Option(None, "--bucket", help="SkyPilot: a bucket (s3://, gs://) mounted at "
                                                      "--checkpoint-dir."),
    workdir: str = typer.Option(".", "--workdir", help="SkyPilot: the folder synced to the nodes (gpuwise is "
                                                       "installed from it)."),
    name: str = typer.Option(None, "--name", help="The job's name [default: gpuwise-WORKLOAD]."),
    output: Path | None = typer.Option(None, "--output", "-o", help="The file to write [default: NAME.sbatch, "
                                                                    "NAME.sky.yaml, NAME.pytorchjob.yaml]."),
    submit: bool = typer.Option(False, "--submit", help="Also submit it (sbatch, sky launch, kubectl apply)."),
    db: Path | None = DB_OPTION,
) -> None:
    """Write the job for the planned option: Slurm sbatch script, SkyPilot task, or Kubeflow PyTorchJob."""
    from gpuwise.launch.submit import check_tool
    from gpuwise.launch.submit import submit as submit_job
    from gpuwise.train.config import parse_devices
    from gpuwise.units import parse_duration

    target = check_target(target)
    if submit:
        check_tool(target)  # before the plan's seconds of profiling
    parsed_devices = parse_devices(devices, num_gpus=0, check=False) if devices is not None else None
    elastic = None
    if nnodes is not None:
        from gpuwise.launch.job import parse_elastic

        elastic = parse_elastic(nnodes)
    if from_plan:
        rec = _saved(workload, db)
    else:
        rec = _planned(workload, dataset_size=dataset_size, epochs=epochs, unit=unit, deadline=deadline, budget=budget,
                       gpus=gpus, max_gpus=max_gpus, batch_size=batch_size, precision=precision, optimizer=optimizer,
                       seq_len=seq_len, image_size=image_size, strategy=strategy, checkpointing=checkpointing,
                       grad_accum=grad_accum, compile=compile, cpu_threads=cpu_threads, catalog=catalog, db=db)
    job = build_job(
        rec, target=target, data=data, checkpoint_dir=checkpoint_dir, nodes=positive_int(nodes, "--nodes"),
        devices=parsed_devices, elastic=elastic, steps=positive_int(steps, "--steps"),
        checkpoint_every=positive_int(checkpoint_every, "--checkpoint-every"),
        time_s=parse_duration(time, "--time") if time is not None else None, python=python,
        max_restarts=whole_number(max_restarts, "--max-restarts") or 0,
        rdzv_port=positive_int(rdzv_port, "--rdzv-port") or DEFAULT_MASTER_PORT, name=name, log_dir=log_dir,
        store_path=db.absolute() if db is not None else None,
        options=TargetOptions(partition=partition, account=account, image=image, namespace=namespace, pvc=pvc,
                              bucket=bucket, workdir=workdir),
    )
    path = output if output is not None else Path(job.name + EXTENSIONS[target])
    text = render(job)
    try:
        path.write_text(text)
    except OSError as e:
        raise GpuwiseError(f"--output {path}: cannot write it ({e.strerror}); give a writable path") from None
    if target == "slurm":
        path.chmod(0o755)
    print(f"wrote {path}: {job.workload} on {job.layout.label} ({job.strategy}), time limit "
          f"{_limit(job)}")
    if submit:
        print(f"submitted: {submit_job(job, path)}")
    else:
        how = {"slurm": f"sbatch {path}", "skypilot": f"sky launch {path}", "kubernetes": f"kubectl apply -f {path}"}
        print(f"submit it with: {how[target]}", file=sys.stderr)


def render(job: Job) -> str:
    from gpuwise.launch import kubernetes, skypilot, slurm

    renderers = {"slurm": slurm.render, "skypilot": skypilot.render, "kubernetes": kubernetes.render}
    return renderers[job.target](job)


def _limit(job: Job) -> str:
    from gpuwise.units import duration

    return f"{duration(job.time_limit_s)} ({job.time_basis})"


def _saved(workload: str | None, db: Path | None) -> Recommended:
    from gpuwise.train.recommended import load_recommendation, plan_file

    rec = load_recommendation(db)
    if workload is not None and workload != rec.workload:
        raise GpuwiseError(f"--from-plan: the saved plan ({plan_file(db)}) is for '{rec.workload}', not "
                           f"'{workload}': run gpuwise plan {workload} ... first, or leave the workload out")
    return rec


def _planned(workload: str | None, *, dataset_size: str | None, epochs: str | None, unit: str | None,
             deadline: str | None, budget: str | None, gpus: str | None, max_gpus: int | None,
             batch_size: int | None, precision: str, optimizer: str, seq_len: int | None, image_size: int | None,
             strategy: str, checkpointing: str, grad_accum: int | None, compile: bool, cpu_threads: int | None,
             catalog: Path | None, db: Path | None) -> Recommended:
    """Plan here, as ``gpuwise plan`` does with the same flags, and take its recommendation."""
    from gpuwise.cli.plan import plan_config
    from gpuwise.plan import plan
    from gpuwise.train.recommended import recommended_from

    if workload is None:
        raise GpuwiseError("name the workload to launch, or use --from-plan (the last plan's)")
    if dataset_size is None or epochs is None:
        raise GpuwiseError("give --dataset-size N --epochs E to plan the run here, or --from-plan to use the last "
                           "gpuwise plan")
    config = plan_config(
        workload, dataset_size=dataset_size, epochs=epochs, unit=unit, deadline=deadline, budget=budget, gpus=gpus,
        max_gpus=positive_int(max_gpus, "--max-gpus"), batch_size=positive_int(batch_size, "--batch-size"),
        precision=precision, optimizer=optimizer, seq_len=positive_int(seq_len, "--seq-len"),
        image_size=positive_int(image_size, "--image-size"), network=None, catalog=catalog,
        settings=run_settings(strategy, checkpointing, positive_int(grad_accum, "--grad-accum"), compile),
        cpu_threads=positive_int(cpu_threads, "--cpu-cores-per-gpu"),
    )
    result = plan(config, store_path=db)
    option = result.recommendation.option
    if option is None:
        raise GpuwiseError(f"{result.recommendation.headline}: nothing to launch")
    return recommended_from(result, option)
