"""The ``gpuwise`` command: one module per subcommand, each only maps flags onto the library.

User mistakes (``GpuwiseError``) become one line on stderr and exit status 2. Nothing here or in a
command module imports torch at import time: ``--help``, ``--version``, ``gpus`` and ``workloads``
start without it, and a command imports the library it needs inside its function.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from gpuwise.config import ActivationCheckpointing, OptimizerName, Precision, RunSettings, Strategy, optimizer_for
from gpuwise.errors import GpuwiseError, hand_to_launcher

if TYPE_CHECKING:
    from gpuwise.workloads import Workload

app = typer.Typer(
    name="gpuwise",
    help="Know what your deep-learning training needs before you pay for it.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        from gpuwise import __version__

        print(f"gpuwise {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Know what your deep-learning training needs before you pay for it."""

F = TypeVar("F", bound=Callable[..., Any])


def user_errors(fn: F) -> F:
    """Turn a ``GpuwiseError`` into one line and exit 2."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except GpuwiseError as e:
            if not hand_to_launcher(one_line(e)):
                print(f"gpuwise: error: {one_line(e)}", file=sys.stderr)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]  # wraps keeps the signature typer reads


def one_line(e: GpuwiseError) -> str:
    """The error's own line. A ``GpuwiseError`` raised in a DataLoader worker process reaches this process
    re-raised with the worker's whole traceback as its message ("Caught GpuwiseError in DataLoader worker
    process 0. Original Traceback ..."); its last line holds the original message."""
    lines = str(e).strip().splitlines()
    if len(lines) > 1 and lines[0].startswith(f"Caught {GpuwiseError.__name__}"):
        prefix = f"{GpuwiseError.__module__}.{GpuwiseError.__name__}: "
        original = [line[len(prefix):] for line in lines if line.startswith(prefix)]
        if original:
            return original[-1]
    return " ".join(line.strip() for line in lines)


class OneLineError(typer.BadParameter):
    """A flag's value that does not parse: one line naming the fix and exit 2, as a ``GpuwiseError`` gets,
    instead of click's usage block."""

    def show(self, file: Any = None) -> None:
        print(f"gpuwise: error: {self.message}", file=sys.stderr)


def count_option(default: int | None, *flags: str, minimum: int = 1, **kwargs: Any) -> Any:
    """An integer option (shown as ``<int>`` in the help) of at least ``minimum``; a bad value gets our one line."""
    flag = max(flags, key=len)

    def parse(value: str) -> int:
        try:
            number = whole_number(value, flag, minimum=minimum)
        except GpuwiseError as e:
            raise OneLineError(str(e)) from None
        assert number is not None
        return number

    return typer.Option(default, *flags, parser=parse, **kwargs)


def positive_int(value: str | int | None, flag: str) -> int | None:
    """Parse a count flag ourselves so that a bad value gets our one-line error."""
    return whole_number(value, flag, minimum=1)


def whole_number(value: str | int | None, flag: str, *, minimum: int = 0) -> int | None:
    """An integer flag of at least ``minimum``, or one line saying what it must be."""
    if value is None:
        return None
    what = "a positive integer" if minimum == 1 else f"a whole number of at least {minimum}"
    try:
        number = int(value)
    except ValueError:
        raise GpuwiseError(f"{flag} must be {what}, got '{value}'") from None
    if number < minimum:
        raise GpuwiseError(f"{flag} must be {what}, got {number}")
    return number


DB_OPTION: Any = typer.Option(
    None,
    "--db",
    metavar="PATH",
    help="Results database file [default: $GPUWISE_DB, else results.db in the user data directory].",
)  # every command that reads or writes the results store takes it (typer copies it per command)


# Flags shared by the commands that take a training step; each defined once (typer copies them per command).
WORKLOAD_ARGUMENT: Any = typer.Argument(
    ..., help="A zoo name (see 'gpuwise workloads'), path/to/file.py:factory, timm:NAME or hf:PATH (a local "
    "config.json)."
)
# auto: gpuwise.predict.precision (a catalog GPU) and gpuwise.bench.run.local_precision (a device here) choose.
PRECISION_OPTION: Any = typer.Option(
    Precision.AUTO.value, "--precision", help="auto | fp32 | tf32 | amp-bf16 | amp-fp16 [auto: amp-bf16 on GPUs with "
    "BF16 tensor cores, amp-fp16 on V100/T4-class, fp32 on a CPU without fast bf16].")
# A profile is of a step, not of a device: nothing for auto to choose by.
STEP_PRECISION_OPTION: Any = typer.Option(
    Precision.FP32.value, "--precision", help="fp32 | tf32 | amp-bf16 | amp-fp16 (a profile has no device for auto "
    "to choose by).")
OPTIMIZER_OPTION: Any = typer.Option(
    None, "--optimizer", help="sgd | sgd-momentum | adam | adamw [default: the workload's own, else adamw]"
)
SEQ_LEN_OPTION: Any = count_option(None, "--seq-len", help="Sequence length (sequence workloads).")
IMAGE_SIZE_OPTION: Any = count_option(None, "--image-size", help="Image side in pixels (vision workloads).")
# How the step runs (gpuwise.config.RunSettings): the same flags on predict, plan and report.
STRATEGY_OPTION: Any = typer.Option(
    "auto", "--strategy", help="auto | ddp | fsdp: shard the model over the GPUs (FSDP2) "
    "[auto: FSDP when DDP does not fit]."
)
CHECKPOINTING_OPTION: Any = typer.Option(
    "none", "--activation-checkpointing", help="none | selective | full: recompute activations in backward."
)
GRAD_ACCUM_OPTION: Any = count_option(
    None, "--grad-accum", help="Micro batches per optimizer step [default: 1]; global batch = "
    "batch × N × GPUs."
)
COMPILE_OPTION: Any = typer.Option(False, "--compile", help="Run the step under torch.compile.")
FP8_OPTION: Any = typer.Option(
    False, "--fp8", help="The transformer blocks' linear layers in FP8 (torchao float8 training), beside amp-bf16; "
    "GPUs with FP8 tensor cores only (Ada, Hopper, Blackwell)."
)
GPUS_PER_NODE_OPTION: Any = count_option(
    None, "--gpus-per-node", help="GPUs in one host: beyond them the gradient ring crosses the network "
    "[default: 8, an HGX/DGX board; say 2 or 4 for PCIe workstations and servers]."
)
CPU_THREADS_OPTION: Any = count_option(
    None, "--cpu-cores-per-gpu", help="CPU threads (vCPUs) decoding images for each GPU [default: "
    "by GPU class, the cloud instances it is rented in: 24 H100, 12 A100, ...]."
)


QUIET_OPTION: Any = typer.Option(
    False, "--quiet", "-q", help="No progress on stderr (it is off anyway when stderr is not a terminal)."
)


def optimizer_option(value: str | None, workload: Workload) -> OptimizerName:
    """--optimizer, else the one the workload names (a user's UserWorkload), else AdamW."""
    return optimizer_for(value, workload.optimizer if value is None else None)


def run_settings(strategy: str, checkpointing: str, grad_accum: int | None, compile: bool,
                 fp8: bool = False) -> RunSettings:
    """The run flags, as typed, onto ``RunSettings``."""
    return RunSettings(
        strategy=Strategy.parse(strategy), activation_checkpointing=ActivationCheckpointing.parse(checkpointing),
        grad_accum=positive_int(grad_accum, "--grad-accum") or 1, compile=compile, fp8=fp8,
    )


def get_app() -> typer.Typer:
    """The app with every subcommand registered (each module adds its command on import)."""
    from gpuwise.cli import (  # noqa: F401
        bench,
        calibrate,
        gpus,
        launch,
        plan,
        predict,
        profile,
        report,
        results,
        train,
        validate,
        workloads,
    )

    return app


# click's own usage errors (a misspelt flag, a missing option, no such command): the class typer raises them as.
_USAGE_ERROR: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


def main() -> None:
    """The ``gpuwise`` command. A usage mistake click catches (a flag that does not exist, a required one
    missing, no such command) gets one line and exit 2 too, with the command's help to look at, instead of
    click's usage block; ``gpuwise`` alone still prints the help."""
    try:
        code = get_app()(prog_name="gpuwise", standalone_mode=False)
    except _USAGE_ERROR as e:
        error: Any = e
        if isinstance(e, OneLineError) or type(e).__name__ == "NoArgsIsHelpError":  # our line; `gpuwise`: the help
            error.show()
            sys.exit(error.exit_code)
        path = error.ctx.command_path if error.ctx else "gpuwise"
        where = f"gpuwise {path.split(' ', 1)[1]}" if " " in path else "gpuwise"
        print(f"gpuwise: error: {error.format_message().rstrip('.')}; see '{where} -h'", file=sys.stderr)
        sys.exit(2)
    except typer.Abort:
        print("Aborted!", file=sys.stderr)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
