"""The README's examples stay true."""

from __future__ import annotations

import re
from pathlib import Path

from gpuwise.hardware.catalog import load_catalog, parse_catalog_text

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_the_two_commands_come_first_and_ci_runs_the_test_command() -> None:
    first_block = re.search(r"```\n(.*?)\n```", README, re.S)
    assert first_block is not None and README.startswith("```")
    main_job, test_command = first_block.group(1).splitlines()
    assert "gpuwise plan" in main_job
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text()
    assert test_command in ci


def test_catalog_example_parses() -> None:
    block = re.search(r"```toml\n(.*?)```", README, re.S)
    assert block is not None
    catalog = parse_catalog_text(block.group(1), "README", load_catalog())
    assert catalog.get("H100-SXM5-80GB").price_usd_per_hour == 2.49
