"""The README's and the docs pages' examples stay true: links resolve, commands parse, outputs match."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from gpuwise.hardware.catalog import load_catalog, parse_catalog_text
from tests.helpers import run_cli

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
PAGES = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
README_LIMIT_BYTES = 15 * 1024


def _text(page: Path) -> str:
    return page.read_text()


def _shown_commands(text: str) -> list[str]:
    """The ``$ gpuwise ...`` lines of a page's code blocks, shell comments dropped."""
    return [m.group(1) for m in re.finditer(r"^\$ (?:[A-Z_]+=\S+ )*gpuwise (.+)$", text, re.M)]


def test_the_two_commands_come_first_and_ci_runs_the_test_command() -> None:
    first_block = re.search(r"```\n(.*?)\n```", README, re.S)
    assert first_block is not None and README.startswith("```")
    main_job, test_command = first_block.group(1).splitlines()
    assert "gpuwise plan" in main_job
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_command in ci


def test_the_readme_fits_in_15_kb() -> None:
    assert len(README.encode()) <= README_LIMIT_BYTES


def test_the_exact_torch_builds_are_pinned_where_ci_and_the_readme_install() -> None:
    constraints = (ROOT / "constraints.txt").read_text()
    assert re.search(r"^torch==\S+$", constraints, re.M) and re.search(r"^torchvision==\S+$", constraints, re.M)
    assert "-c constraints.txt" in (ROOT / ".ci" / "run").read_text()
    assert README.count("-c constraints.txt") >= 2


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_resolve(page: Path) -> None:
    """Every link to a file of the repository names one that exists, and an anchor names a heading there."""
    for target in re.findall(r"\]\(([^)\s]+)\)", _text(page)):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name} links to {target}, which does not exist"
        if anchor and linked.suffix == ".md":
            headings = re.findall(r"^#+ (.+)$", linked.read_text(), re.M)
            slugs = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in headings}
            assert anchor in slugs, f"{page.name} links to #{anchor}, not a heading of {path or page.name}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_the_commands_shown_parse(page: Path) -> None:
    """Each ``$ gpuwise ...`` line names a real command and real flags with values of the right type."""
    import typer

    from gpuwise.cli.app import get_app

    group = typer.main.get_command(get_app())
    for line in _shown_commands(_text(page)):
        name, *args = _before_a_pipe(line)
        with group.context_class(group, info_name="gpuwise") as parent:
            command = group.get_command(parent, name)  # type: ignore[attr-defined]  # a TyperGroup
            assert command is not None, f"{page.name}: no command 'gpuwise {name}'"
            command.make_context(name, list(args), parent=parent)  # raises on an unknown flag or a bad type


def _before_a_pipe(line: str) -> list[str]:
    """The words of a shell line up to its first unquoted ``|`` (what is piped on is another program's)."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    words = list(lexer)
    return words[:words.index("|")] if "|" in words else words


def test_the_error_shown_is_what_the_command_prints() -> None:
    block = re.search(r"```\n\$ gpuwise (profile resnet5)\n(gpuwise: error: .+)\n```", README)
    assert block is not None
    code, _out, err = run_cli(*block.group(1).split())
    assert code == 2 and err.strip() == block.group(2)


def test_catalog_example_parses() -> None:
    block = re.search(r"```toml\n(.*?)```", (ROOT / "docs" / "gpus.md").read_text(), re.S)
    assert block is not None
    catalog = parse_catalog_text(block.group(1), "docs/gpus.md", load_catalog())
    assert catalog.get("H100-SXM5-80GB").price_usd_per_hour == 2.49
