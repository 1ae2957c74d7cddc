"""The zoo as data: what ``gpuwise workloads`` lists, derived from the registry and shipped as a file.

Listing the zoo must not import torch or build 37 models (counting Llama 70B's parameters takes
seconds even on fake tensors), so the listing is written once from the registry into
``gpuwise/data/workloads.json`` and the command reads that file. ``tests/test_workloads_index.py``
checks that the file matches the registry; after adding or changing a workload, rewrite it:

    python -m gpuwise.workloads.index
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from gpuwise.workloads.params import count_parameters
from gpuwise.workloads.registry import list_workloads

INDEX_PACKAGE, INDEX_FILE = "gpuwise.data", "workloads.json"


def build_index() -> list[dict[str, Any]]:
    """One row per registered workload, in registration order, as ``gpuwise workloads --json`` prints it."""
    rows = []
    for w in list_workloads():
        shape = w.default_shape
        rows.append({
            "name": w.name, "family": w.family, "params": count_parameters(w), "sample_unit": w.sample_unit,
            "default_batch_size": w.default_batch_size, "seq_len": shape.seq_len, "image_size": shape.image_size,
            "summary": w.summary, "reference": w.reference,
        })
    return rows


def index_path() -> Path:
    return Path(str(resources.files(INDEX_PACKAGE).joinpath(INDEX_FILE)))


def main() -> None:
    """Rewrite the shipped index from the registry."""
    path = index_path()
    path.write_text(json.dumps(build_index(), indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
