"""The option ``gpuwise plan`` recommended, kept for ``gpuwise train --plan``.

``gpuwise plan`` writes ``last-plan.json`` beside the results database (so ``--db`` keeps runs of
different projects apart): the workload, every step setting, the epochs and data-set size, and the
recommended option — CPU or catalog GPU, GPUs per node, nodes, strategy, batch per device.
``gpuwise train --plan`` reads it back and checks that this machine has what it asks for.
"""

from __future__ import annotations

import contextlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gpuwise.config import Precision
from gpuwise.errors import GpuwiseError
from gpuwise.predict.parallel import GPUS_PER_NODE

FILE_NAME = "last-plan.json"


@dataclass(frozen=True)
class Recommended:
    workload: str
    batch_size: int  # per device, as planned (may be below the requested one)
    precision: Precision  # in the file by its name ("amp-bf16")
    optimizer: str
    seq_len: int | None
    image_size: int | None
    epochs: float
    samples_per_epoch: float
    device: str  # "cpu" or the catalog GPU's name
    label: str  # "8× H100-SXM5-80GB", as plan printed it
    num_gpus: int  # in all (1 for the CPU)
    num_nodes: int
    strategy: str  # "single", "DDP", "FSDP"
    # The plan's prediction and run settings (``gpuwise launch`` sets the job's time limit from them); a plan
    # saved before they were recorded has None / the defaults.
    total_s: float | None = None  # predicted time of the whole run
    band: float | None = None  # its relative error: the run takes total × (1 ± band)
    activation_checkpointing: str = "none"
    grad_accum: int = 1
    compile: bool = False
    fp8: bool = False
    node_gpus: int | None = None  # GPUs per node as planned (--gpus-per-node); None: a plan saved before, nodes of 8

    def __post_init__(self) -> None:
        # Read back from the file as text: parsed once, here (an unknown name is a ValueError: unreadable file).
        object.__setattr__(self, "precision", Precision(self.precision))

    @property
    def gpus_per_node(self) -> int:
        return min(self.num_gpus, self.node_gpus or GPUS_PER_NODE)

    @property
    def whole_epochs(self) -> int:
        """Training runs whole epochs: a fractional plan (0.5) rounds up."""
        return max(1, math.ceil(self.epochs))


def plan_file(store_path: Path | None) -> Path:
    from gpuwise.store import default_db_path

    db = Path(store_path).expanduser() if store_path is not None else default_db_path()
    return db.parent / FILE_NAME


def save_recommendation(plan: Any, store_path: Path | None) -> Path | None:
    """Write the plan's recommendation (a ``gpuwise.plan.Plan``); nothing when it recommends nothing."""
    option = plan.recommendation.option
    path = plan_file(store_path)
    if option is None:  # a plan that recommends nothing leaves no stale recommendation behind
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
        return None
    rec = recommended_from(plan, option)
    try:  # the plan itself must not fail for want of a writable folder: --plan will say none was saved
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(rec), indent=2) + "\n")
    except OSError:
        return None
    return path


def recommended_from(plan: Any, option: Any) -> Recommended:
    """One option of a ``gpuwise.plan.Plan`` as the run it stands for."""
    c = plan.config
    return Recommended(
        workload=plan.workload, batch_size=option.batch_size,
        precision=option.precision, optimizer=c.optimizer.value, seq_len=c.seq_len,
        image_size=c.image_size,
        epochs=c.epochs, samples_per_epoch=plan.samples_per_epoch, device=option.device, label=option.label,
        num_gpus=option.num_gpus, num_nodes=option.num_nodes, strategy=option.strategy,
        total_s=option.run.total_s if option.run is not None else None, band=option.band,
        activation_checkpointing=option.settings.activation_checkpointing.value,
        grad_accum=option.settings.grad_accum, compile=option.settings.compile, fp8=option.settings.fp8,
        node_gpus=c.gpus_per_node,
    )


def load_recommendation(store_path: Path | None) -> Recommended:
    path = plan_file(store_path)
    try:
        data = json.loads(path.read_text())
        return Recommended(**data)
    except FileNotFoundError:
        raise GpuwiseError(f"--plan: no plan saved yet ({path}); run gpuwise plan WORKLOAD --dataset-size N "
                           "--epochs E first") from None
    except (OSError, ValueError, TypeError) as e:
        raise GpuwiseError(f"--plan: {path} is unreadable ({e}); run gpuwise plan again") from None


def check_this_machine(rec: Recommended, catalog: Any = None) -> str | None:
    """Why this machine cannot run the recommendation, or None: its GPUs detected and matched to the catalog
    (``gpuwise.hardware.local.detect_gpus``; ``catalog`` None: the packaged and user catalog)."""
    if rec.device == "cpu":
        return None
    from gpuwise.hardware.catalog import load_catalog
    from gpuwise.hardware.local import detect_gpus

    gpus = detect_gpus(catalog if catalog is not None else load_catalog(None))
    return check_here(rec, [g.device_name for g in gpus], [g.catalog_name for g in gpus])


def check_here(rec: Recommended, gpu_names: list[str], catalog_names: list[str | None]) -> str | None:
    """Why this machine cannot run the recommendation, or None. ``gpu_names`` are the local GPUs'
    names and ``catalog_names`` their catalog entries (None where unknown)."""
    if rec.device == "cpu":
        return None
    have = (f"{len(gpu_names)}× {gpu_names[0]}" if gpu_names and len(set(gpu_names)) == 1
            else ", ".join(gpu_names) if gpu_names else "no GPU")
    wants = f"the plan wants {rec.label} ({rec.strategy})"
    if rec.num_nodes > 1:
        return (f"{wants}: run it with --nodes {rec.num_nodes} --node-rank R --master-addr HOST on each node; "
                f"this machine has {have} (--dry-run shows the launch)")
    matching = sum(1 for name in catalog_names if name == rec.device)
    if matching < rec.gpus_per_node:
        return f"{wants}; this machine has {have}: run it where those GPUs are (--dry-run shows the launch)"
    return None
