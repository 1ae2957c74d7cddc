"""The project's error type for user mistakes.

A ``GpuwiseError`` carries one line that names the problem and the fix; the
CLI prints it and exits with status 2. Anything else that escapes is a bug.
"""


class GpuwiseError(ValueError):
    """A user mistake: bad input, unknown name, unusable file."""


# A torchrun worker's mistake goes to the launcher, which prints it once (``gpuwise.train.launch.execute``),
# instead of every worker printing it and torchrun adding its own traceback of the failed workers.
WORKER_ERRORS_ENV = "GPUWISE_WORKER_ERRORS"


def hand_to_launcher(message: str) -> bool:
    """In a torchrun worker: leave ``message`` for the launcher (a file per rank in the folder it named)
    and return True; elsewhere return False (the caller prints it)."""
    import os
    from pathlib import Path

    folder = os.environ.get(WORKER_ERRORS_ENV)
    if not folder:
        return False
    (Path(folder) / f"rank-{os.environ.get('RANK', '0')}.txt").write_text(message)
    return True
