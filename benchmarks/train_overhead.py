"""What does `gpuwise train`'s loop cost over a hand-written PyTorch loop? Same model, batch and device.

    python benchmarks/train_overhead.py [--repeats 3] [--batch-size 16] [--image-size 128] [--steps 8]

Both run in this process on the CPU, interleaved (gpuwise, hand, gpuwise, hand, ...) so that a
change in the machine's load hits both alike. Each repeat builds resnet18 from the same seed and
times ``--steps`` steps after ``--warmup`` discarded ones, by the bench protocol: a step is the
batch (synthetic, made fresh each step in both loops), forward, loss, backward and AdamW, and the
median is reported. gpuwise's loop adds the DataLoader over a DistributedSampler, the pytree move
to the device, the signal flag check and the loss read-out.

Target (issue 5): the median of gpuwise's medians within 3% of the hand loop's.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn


def hand_loop(batch_size: int, image_size: int, steps: int, warmup: int) -> list[float]:
    """The loop a user would write: model, optimizer, random batch, step; timed per step."""
    from gpuwise.workloads import get_workload

    w = get_workload("resnet18")
    torch.manual_seed(0)
    model = w.build_model(w.resolve_shape(image_size=image_size)).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    loss_fn = nn.CrossEntropyLoss()
    times: list[float] = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        x = torch.randn(batch_size, 3, image_size, image_size)
        y = torch.randint(0, 1000, (batch_size,))
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        loss.item()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return times


def gpuwise_loop(batch_size: int, image_size: int, steps: int, warmup: int) -> list[float]:
    from gpuwise.train.config import Devices, TrainConfig
    from gpuwise.train.loop import train

    config = TrainConfig.of(workload="resnet18", batch_size=batch_size, image_size=image_size, steps=warmup + steps,
                         warmup=warmup)
    result = train(config, Devices("cpu", 1))
    assert result.timing is not None
    return list(result.timing.step_times_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    print(f"resnet18 · CPU ({torch.get_num_threads()} threads) · batch {args.batch_size} · {args.image_size}px · "
          f"fp32 · adamw · {args.steps} timed steps after {args.warmup} warm-up · {args.repeats} interleaved repeats")
    print("| repeat | loop | median step (ms) | p10–p90 (ms) |")
    print("|---|---|---|---|")
    medians: dict[str, list[float]] = {"gpuwise train": [], "hand-written": []}
    for repeat in range(1, args.repeats + 1):
        for name, loop in (("gpuwise train", gpuwise_loop), ("hand-written", hand_loop)):
            times = loop(args.batch_size, args.image_size, args.steps, args.warmup)
            deciles = statistics.quantiles(times, n=10, method="inclusive")
            medians[name].append(statistics.median(times))
            print(f"| {repeat} | {name} | {medians[name][-1] * 1e3:.1f} | {deciles[0] * 1e3:.1f}–"
                  f"{deciles[-1] * 1e3:.1f} |")
    ours, theirs = statistics.median(medians["gpuwise train"]), statistics.median(medians["hand-written"])
    overhead = ours / theirs - 1
    spread = {k: (max(v) - min(v)) / statistics.median(v) for k, v in medians.items()}
    print(f"\nmedian of medians: gpuwise train {ours * 1e3:.1f} ms, hand-written {theirs * 1e3:.1f} ms; "
          f"overhead {overhead:+.1%} (target <= 3%: {'met' if overhead <= 0.03 else 'NOT met'}); spread of medians "
          f"(max-min)/median: gpuwise {spread['gpuwise train']:.1%}, hand {spread['hand-written']:.1%}")


if __name__ == "__main__":
    main()
