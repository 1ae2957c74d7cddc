"""A ``Job`` as a SkyPilot task (YAML).

``resources.accelerators`` names the GPU as SkyPilot's catalog does (``H100:8``); ``num_nodes``
nodes each run the node script, with the first of ``$SKYPILOT_NODE_IPS`` as the rendezvous host.
SkyPilot has no time limit of its own: the run is wrapped in ``timeout`` (SIGTERM at the limit, so
training checkpoints and stops). A ``--bucket`` is mounted at the checkpoint folder, so the
checkpoints outlive the cluster and a relaunch resumes from them.
"""

from __future__ import annotations

from typing import Any

from gpuwise.errors import GpuwiseError
from gpuwise.launch import yamltext
from gpuwise.launch.job import Job, header_lines, node_script

# Catalog names → SkyPilot's accelerator names (``sky show-gpus``), read 2026-12-06 from
# https://docs.skypilot.co/en/latest/reference/yaml-spec.html and ``sky show-gpus --all``.
SKYPILOT_NAMES = {
    "V100-SXM2-16GB": "V100", "V100-SXM2-32GB": "V100-32GB", "V100-PCIe-16GB": "V100", "T4": "T4", "A10": "A10",
    "A10G": "A10G", "A100-SXM4-40GB": "A100", "A100-SXM4-80GB": "A100-80GB", "A100-PCIe-40GB": "A100",
    "A100-PCIe-80GB": "A100-80GB", "L4": "L4", "L40S": "L40S", "H100-SXM5-80GB": "H100", "H100-PCIe-80GB": "H100",
    "H100-NVL-94GB": "H100-NVL", "H200-SXM-141GB": "H200", "GH200-96GB": "GH200", "B200": "B200",
    "RTX-A6000": "RTXA6000", "RTX-4090": "RTX4090", "RTX-3090": "RTX3090", "RTX-6000-Ada": "RTX6000-Ada",
}
KILL_AFTER_S = 120  # after the SIGTERM at the limit: the step in flight and a checkpoint write


def accelerator(job: Job) -> str:
    name = job.layout.accelerator
    assert name is not None
    if name not in SKYPILOT_NAMES:
        raise GpuwiseError(f"{name} has no SkyPilot accelerator name gpuwise knows: plan with --gpus naming "
                           f"one of {', '.join(sorted(SKYPILOT_NAMES))}")
    return f"{SKYPILOT_NAMES[name]}:{job.layout.procs_per_node}"


def task(job: Job) -> dict[str, Any]:
    layout = job.layout
    resources: dict[str, Any] = {}
    if layout.kind == "cuda":
        resources["accelerators"] = accelerator(job)
    if job.options.image:
        resources["image_id"] = f"docker:{job.options.image}"
    limit = job.time_limit_s
    script = node_script(job, rdzv_host="$HEAD_ADDR", rdzv_id="$SKYPILOT_TASK_ID",
                         prefix=f"timeout --signal=TERM --kill-after={KILL_AFTER_S} {limit} ")
    run = "\n".join(["set -euo pipefail", 'HEAD_ADDR=$(echo "$SKYPILOT_NODE_IPS" | head -n 1)', *script]) + "\n"
    data: dict[str, Any] = {
        "name": job.name,
        "num_nodes": layout.nodes,
        "resources": resources,
        "workdir": job.options.workdir,
        "setup": "pip install -e .\n",
        "run": run,
    }
    if job.options.bucket:
        data["file_mounts"] = {job.checkpoint_dir: {"source": job.options.bucket, "mode": "MOUNT"}}
    return data


def render(job: Job) -> str:
    return yamltext.dump(task(job), header_lines(job))
