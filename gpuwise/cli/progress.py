"""Progress while a command works: a spinner, what it is doing and the time so far, on stderr.

Shown only on a terminal and without ``--quiet``; it disappears when the work is done, so stdout
(tables, ``--json``) is never touched and a piped or logged run stays clean.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

Say = Callable[[str], None]


@contextmanager
def working(message: str, *, quiet: bool, console: Console | None = None) -> Iterator[Say]:
    """Show ``message`` until the block ends; the block may change it with the function it is given."""
    console = console or Console(stderr=True, highlight=False)
    if quiet or not console.is_terminal:
        yield _silent
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(message, total=None)
        yield lambda text: progress.update(task, description=text)


def _silent(_text: str) -> None:
    """Progress off: nothing to say."""
