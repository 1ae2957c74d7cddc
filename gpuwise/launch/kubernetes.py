"""A ``Job`` as a Kubeflow Training Operator ``PyTorchJob`` (kubeflow.org/v1).

One Master replica and ``nodes - 1`` Worker replicas, one pod per node with ``nvidia.com/gpu``
limits of the node's GPUs; the operator sets ``PET_*`` variables and the Master's service name,
so every pod runs the node script with the Master as c10d rendezvous host. The time limit is
``runPolicy.activeDeadlineSeconds``; with ``--nnodes MIN:MAX`` an ``elasticPolicy`` lets the job
run on MIN to MAX pods. The checkpoint folder must be a volume every pod mounts (a
ReadWriteMany PersistentVolumeClaim named by ``--pvc``, mounted there).
"""

from __future__ import annotations

from typing import Any

from gpuwise.launch import yamltext
from gpuwise.launch.job import Job, header_lines, node_script

CONTAINER = "pytorch"  # the Training Operator requires this container name


def manifest(job: Job) -> dict[str, Any]:
    layout = job.layout
    # The first pod's service, as the operator names it: the Master, or under elastic the first Worker.
    head = f"{job.name}-worker-0" if layout.min_nodes else f"{job.name}-master-0"
    script = node_script(job, rdzv_host=head, rdzv_id=job.name)
    container: dict[str, Any] = {
        "name": CONTAINER, "image": job.options.image, "command": ["bash", "-c", "\n".join(["set -euo pipefail",
                                                                                          *script]) + "\n"],
    }
    pod: dict[str, Any] = {"containers": [container]}
    if job.options.pvc:
        container["volumeMounts"] = [{"name": "checkpoints", "mountPath": job.checkpoint_dir}]
        pod["volumes"] = [{"name": "checkpoints", "persistentVolumeClaim": {"claimName": job.options.pvc}}]
    if layout.kind == "cuda":
        gpus = {"nvidia.com/gpu": layout.procs_per_node}
        container["resources"] = {"limits": gpus, "requests": gpus}

    def replicas(count: int) -> dict[str, Any]:
        return {"replicas": count, "restartPolicy": "OnFailure", "template": {"spec": pod}}

    specs = {"Master": replicas(1)}
    workers = (layout.nodes if layout.min_nodes else layout.nodes - 1)
    if layout.min_nodes:  # elastic: every pod is a Worker of the c10d rendezvous; the Master is the first
        specs = {}
        workers = layout.nodes
    if workers:
        specs["Worker"] = replicas(workers)
    spec: dict[str, Any] = {
        "runPolicy": {"activeDeadlineSeconds": job.time_limit_s, "backoffLimit": job.max_restarts},
        "nprocPerNode": str(layout.procs_per_node),
        "pytorchReplicaSpecs": specs,
    }
    if layout.min_nodes:
        spec["elasticPolicy"] = {"rdzvBackend": "c10d", "minReplicas": layout.min_nodes,
                                 "maxReplicas": layout.nodes, "maxRestarts": job.max_restarts}
    return {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob",
            "metadata": {"name": job.name, "namespace": job.options.namespace}, "spec": spec}


def render(job: Job) -> str:
    return yamltext.dump(manifest(job), header_lines(job))
