"""Per-step metrics of a training run: a JSONL file, and TensorBoard event files when TensorBoard is installed.

Rank 0 writes one line per optimizer step to ``metrics.jsonl`` in the run's log folder (``--log-dir``,
else the checkpoint folder): step, epoch, loss, learning rate, step time, samples/s of all processes,
and memory (CUDA: the peak allocated so far; CPU: the process's peak resident set). Each line is
flushed as it is written, so a killed run keeps every step it finished. A resumed or restarted run
appends: steps after its checkpoint appear again, and the last line of a step is the one that counts.

With the ``tensorboard`` package (``pip install 'gpuwise[tensorboard]'``) the same scalars go to event
files in the same folder (``tensorboard --logdir DIR``); without it, the JSONL alone.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from gpuwise.errors import GpuwiseError

FILE_NAME = "metrics.jsonl"


@dataclass(frozen=True)
class StepMetrics:
    step: int  # 1-based: the optimizer steps done
    epoch: int  # 0-based
    loss: float
    lr: float
    step_s: float
    samples_per_s: float  # all processes together
    memory_bytes: int | None
    memory_kind: str  # "cuda peak allocated" or "peak resident set"
    time: str  # ISO 8601, UTC


def tensorboard_available() -> bool:
    return importlib.util.find_spec("tensorboard") is not None


class MetricsLog:
    """Open on rank 0 only; ``write`` one step at a time, ``close`` at the end."""

    def __init__(self, folder: Path) -> None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self.path = folder / FILE_NAME
            self._out: IO[str] = open(self.path, "a", buffering=1)  # closed by close()
        except OSError as e:
            raise GpuwiseError(f"--log-dir {folder}: cannot write there ({e.strerror}); give a writable folder") \
                from None
        self._tb: Any = None
        if tensorboard_available():
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(log_dir=str(folder))

    def write(self, m: StepMetrics) -> None:
        self._out.write(json.dumps(asdict(m)) + "\n")
        if self._tb is not None:
            for name in ("loss", "lr", "step_s", "samples_per_s"):
                self._tb.add_scalar(f"train/{name}", getattr(m, name), m.step)
            if m.memory_bytes is not None:
                self._tb.add_scalar("train/memory_gib", m.memory_bytes / 2**30, m.step)
            self._tb.flush()

    def close(self) -> None:
        self._out.close()
        if self._tb is not None:
            self._tb.close()


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def read(path: Path) -> list[dict[str, Any]]:
    """The lines of a metrics file, the last one of each step kept (a resumed run repeats steps)."""
    by_step: dict[int, dict[str, Any]] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            by_step[int(record["step"])] = record
    return [by_step[k] for k in sorted(by_step)]
