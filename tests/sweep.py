"""Run many ``gpuwise`` command lines as child processes of one interpreter, for the hostile-input sweep.

``python tests/sweep.py SANDBOX < cases.json`` reads a JSON list of argument lists, imports gpuwise (and
torch) once, then forks one child per command line: the child runs in a fresh empty working folder under
SANDBOX, with stdout and stderr on files, through ``gpuwise.cli.app.main`` as ``python -m gpuwise.cli``
does. Forking saves the interpreter start and the imports (a second per command) without sharing any
state between commands: each child is a process of its own, and what it prints, its exit status and any
traceback are its own. What each command left under SANDBOX (beyond the files there before it) is
reported, so that the sweep can require that a refused command leaves nothing behind.

Prints a JSON list: per command line, its exit code, stdout, stderr and the new files.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _run_one(args: list[str], sandbox: Path, index: int) -> dict[str, object]:
    work = sandbox / "cwd" / str(index)
    work.mkdir(parents=True)
    out_path, err_path = sandbox / f".out-{index}", sandbox / f".err-{index}"
    before = _files(sandbox) | {str(out_path.relative_to(sandbox)), str(err_path.relative_to(sandbox))}
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the child: one gpuwise command, then exit with its status
        code = 1
        try:
            os.chdir(work)
            out = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            err = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(out, 1)
            os.dup2(err, 2)
            sys.argv = ["gpuwise", *args]
            from gpuwise.cli.app import main

            try:
                main()
                code = 0
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException:  # a crash: the traceback is what the sweep looks for
            import traceback

            traceback.print_exc()
            code = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    result = {
        "args": args, "code": os.waitstatus_to_exitcode(status), "seconds": round(time.monotonic() - start, 2),
        "stdout": out_path.read_text(errors="replace"), "stderr": err_path.read_text(errors="replace"),
    }
    out_path.unlink()
    err_path.unlink()
    result["left"] = sorted(_files(sandbox) - before)
    if not any(work.iterdir()):
        work.rmdir()
    return result


def main() -> None:
    sandbox = Path(sys.argv[1]).resolve()
    cases = json.load(sys.stdin)
    sys.dont_write_bytecode = True  # importing a user's model file must not leave __pycache__ behind
    import torch  # noqa: F401  # once, before forking: every child starts with it imported

    from gpuwise.cli.app import get_app

    get_app()
    print(json.dumps([_run_one(args, sandbox, i) for i, args in enumerate(cases)]))


if __name__ == "__main__":
    main()
