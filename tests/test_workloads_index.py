"""The zoo listing `gpuwise workloads` reads is the registry's: same workloads, same parameter counts."""

from __future__ import annotations

import json

from gpuwise.cli.workloads import INDEX_FILE as CLI_FILE
from gpuwise.cli.workloads import INDEX_PACKAGE as CLI_PACKAGE
from gpuwise.workloads.index import INDEX_FILE, INDEX_PACKAGE, build_index, index_path


def test_the_shipped_index_matches_the_registry() -> None:
    """Fails after a workload is added or changed until `python -m gpuwise.workloads.index` rewrites the file."""
    assert (CLI_PACKAGE, CLI_FILE) == (INDEX_PACKAGE, INDEX_FILE)
    # by name: in a test session another test may have imported a family first, which registers it first
    def by_name(rows: list[dict[str, object]]) -> list[dict[str, object]]:
        return sorted(rows, key=lambda row: str(row["name"]))

    assert by_name(json.loads(index_path().read_text())) == by_name(build_index())
