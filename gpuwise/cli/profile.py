"""``gpuwise profile``: FLOPs, bytes and memory of one training step."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from gpuwise.cli.app import (
    CHECKPOINTING_OPTION,
    FP8_OPTION,
    IMAGE_SIZE_OPTION,
    OPTIMIZER_OPTION,
    QUIET_OPTION,
    SEQ_LEN_OPTION,
    STEP_PRECISION_OPTION,
    WORKLOAD_ARGUMENT,
    app,
    count_option,
    user_errors,
)
from gpuwise.cli.format import console, count, gib, si
from gpuwise.cli.progress import working

if TYPE_CHECKING:
    from gpuwise.profile import Profile


@app.command("profile")
@user_errors
def profile_command(
    workload: str = WORKLOAD_ARGUMENT,
    batch_size: int | None = count_option(
        None, "--batch-size", "-b", help="Samples per step [default: the workload's]."
    ),
    precision: str = STEP_PRECISION_OPTION,
    optimizer: str = OPTIMIZER_OPTION,
    seq_len: int | None = SEQ_LEN_OPTION,
    image_size: int | None = IMAGE_SIZE_OPTION,
    checkpointing: str = CHECKPOINTING_OPTION,
    fp8: bool = FP8_OPTION,
    top: int = count_option(10, "--top", help="How many layers to list."),
    as_json: bool = typer.Option(False, "--json", help="Everything, machine-readable, units in field names."),
    quiet: bool = QUIET_OPTION,
) -> None:
    """Profile one training step on fake tensors: nothing real is allocated."""
    with working("loading torch and the workload", quiet=quiet) as say:
        from gpuwise.profile import profile

        say(f"profiling a training step of {workload} on fake tensors")
        result = profile(
            workload, batch_size=batch_size, precision=precision, optimizer=optimizer, seq_len=seq_len,
            image_size=image_size, activation_checkpointing=checkpointing, fp8=fp8,
        )
    if as_json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        render(result, top, console())


def _noun(p: Profile) -> str:
    """What one sample of the batch is: a language model counts tokens, but its batch is of sequences."""
    return "sequence" if p.sample_unit == "token" else p.sample_unit


def render(p: Profile, num_top: int, console: Console) -> None:
    shape = f"seq {p.seq_len}" if p.seq_len else f"{p.image_size}x{p.image_size}" if p.image_size else ""
    console.print(
        f"[bold]{p.workload}[/bold] ({p.family}) · batch {p.batch_size} {_noun(p)}s"
        f"{' · ' + shape if shape else ''} · {p.precision} · {p.optimizer}"
    )
    console.print(f"parameters: {count(p.params_total)} total, {count(p.params_trainable)} trainable")

    flops = Table(title="FLOPs of matrix products (2 per multiply-add)", title_justify="left")
    flops.add_column("")
    flops.add_column(f"per {_noun(p)}", justify="right")
    flops.add_column("per step", justify="right")
    rows = [("forward", p.forward_flops), ("backward", p.backward_flops)]
    if p.recompute_flops:
        rows.append((f"  of which recompute ({p.activation_checkpointing} checkpointing)", p.recompute_flops))
    rows.append(("training (fwd+bwd, model FLOPs)" if p.recompute_flops else "training (fwd+bwd)", p.training_flops))
    for name, value in rows:
        flops.add_row(name, si(p.per_sample(value), "FLOP"), si(value, "FLOP"))
    flops.add_row("forward, as MACs", si(p.per_sample(p.forward_macs), "MAC"), si(p.forward_macs, "MAC"))
    if p.tokens_per_step:
        flops.add_row("training per token", si(p.training_flops / p.tokens_per_step, "FLOP"), "")
    console.print(flops)

    m = p.memory
    mem = Table(title="memory of a steady-state step", title_justify="left")
    mem.add_column("")
    mem.add_column("total", justify="right")
    mem.add_column("live at the peak", justify="right")
    at = m.at_peak_bytes
    mem.add_row("weights", gib(m.weights_bytes), gib(at.get("weights", 0)))
    mem.add_row("gradients", gib(m.gradients_bytes), gib(at.get("gradients", 0)))
    mem.add_row("optimizer state", gib(m.optimizer_state_bytes), gib(at.get("optimizer_state", 0)))
    mem.add_row("inputs (batch)", gib(m.inputs_bytes), gib(at.get("inputs", 0)))
    mem.add_row("activations saved for backward", gib(m.activations_bytes), gib(at.get("activations", 0)))
    if at.get("weight_copies"):
        mem.add_row("autocast's weight copies", "", gib(at["weight_copies"]))
    mem.add_row("temporaries", "", gib(m.transient_bytes))
    mem.add_row(f"[bold]peak[/bold] (in {m.peak_phase})", "", f"[bold]{gib(m.peak_bytes)}[/bold]")
    console.print(mem)

    kinds = Table(title="by op kind", title_justify="left")
    for col in ("kind", "ops", "FLOPs", "vector FLOPs*", "bytes moved", "FLOP/byte"):
        kinds.add_column(col, justify="left" if col == "kind" else "right")
    for k in p.kinds:
        kinds.add_row(
            k.kind, count(k.num_ops), si(k.flops), si(k.vector_flops), gib(k.bytes), f"{k.flops_per_byte:.1f}"
        )
    console.print(kinds)
    console.print("* approximate: a per-element count for memory-bound ops, which the bytes bound instead")

    layers = Table(title=f"top {num_top} layers by training FLOPs", title_justify="left")
    for col in ("layer", "forward", "backward", "share", "bytes moved"):
        layers.add_column(col, justify="left" if col == "layer" else "right")
    total = p.training_flops or 1
    for layer in p.layers[:num_top]:
        layer_flops = layer.forward_flops + layer.backward_flops
        layers.add_row(
            layer.name, si(layer.forward_flops, "FLOP"), si(layer.backward_flops, "FLOP"),
            f"{100 * layer_flops / total:.1f}%", gib(layer.bytes),
        )
    console.print(layers)

    if p.uncounted:
        listed = ", ".join(f"{u.op} ×{u.count}" for u in p.uncounted)
        console.print(f"[yellow]not counted[/yellow] (no FLOP formula or kind; bytes still counted): {listed}")
    else:
        console.print("not counted: none (every op has a FLOP formula or a known memory-bound kind)")
    if p.substitutions:
        listed = ", ".join(f"{op} ×{n}" for op, n in p.substitutions)
        console.print(f"data-dependent ops given bounded synthetic sizes: {listed}")
    for note in p.notes:
        console.print(f"note: {note}")
