"""Fitting the CPU's efficiency constants on real CPU benches, relative to that CPU's measured ceilings.

On the CPU the ceilings are measured (``gpuwise calibrate``: the best GEMM rate per dtype and the
copy bandwidth), so what is left to know is how close each kind of op gets to them in a training
step: convolutions through oneDNN, GEMMs through MKL, elementwise ops that stream memory, and the
eager dispatch per op. Those fractions are fitted on benches committed with their ceilings
(``benchmarks/results/cpu_benches.json``, made by ``python benchmarks/cpu_prediction.py --measure``)
and shipped as ``cpu_efficiency.json``. ``benchmarks/cpu_prediction.py`` reports the error with each
workload held out of the fit that predicts it.

    python -m gpuwise.predict.cpu_fit benchmarks/results/cpu_benches.json   # refit the shipped file
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gpuwise.predict.constants import CPU_DEFAULT as DEFAULT
from gpuwise.predict.constants import CPU_FITTED_FILE as FITTED_FILE
from gpuwise.predict.constants import save as save
from gpuwise.predict.constants import shipped_cpu_efficiency as shipped_cpu_efficiency
from gpuwise.predict.constants import shipped_file
from gpuwise.predict.roofline import Efficiency
from gpuwise.predict.step import cpu_step
from gpuwise.profile import Profile
from gpuwise.records import Ceilings

# What is fitted, and the plausible range of each: a fraction of a measured ceiling cannot pass 1
# by much (a ceiling is one measurement, and caches help small tensors a little); dispatch of one
# eager op on the host costs microseconds, not milliseconds.
_FITTED = {
    "matmul": (0.2, 1.2),
    "conv": (0.2, 1.2),
    "grouped_conv": (0.005, 1.0),
    "rnn": (0.05, 1.2),
    "bandwidth": (0.1, 1.2),  # streaming from DRAM: about the measured copy rate at most
    "cache_bandwidth": (1.0, 8.0),  # working sets within the last-level cache: a few times DRAM's
    "host_op_s": (1e-6, 1e-4),
}
# Not fitted, kept at DEFAULT's (gpuwise.predict.constants.CPU_DEFAULT): attention, simt, kernel latency.


@dataclass(frozen=True)
class CpuBench:
    """One stored CPU bench: the settings of the step and its measured median."""

    workload: str
    batch_size: int
    precision: str
    optimizer: str
    seq_len: int | None
    image_size: int | None
    median_s: float
    p10_s: float
    p90_s: float

    @property
    def label(self) -> str:
        shape = f" seq {self.seq_len}" if self.seq_len else f" {self.image_size}px" if self.image_size else ""
        return f"{self.workload} b{self.batch_size}{shape} {self.precision}"


@dataclass(frozen=True)
class BenchSet:
    """Benches of one CPU, with the ceilings measured in the same session, and where they came from."""

    ceilings: Ceilings
    benches: tuple[CpuBench, ...]
    machine: str
    measured_at: str
    command: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> BenchSet:
        # Files written before Ceilings had cache_bytes give it beside the ceilings.
        ceilings = {"cache_bytes": data.get("cache_bytes")} | data["ceilings"]
        return BenchSet(
            ceilings=Ceilings(**ceilings), benches=tuple(CpuBench(**b) for b in data["benches"]),
            machine=data["machine"], measured_at=data["measured_at"], command=data["command"],
        )


def load_benches(path: Path) -> BenchSet:
    return BenchSet.from_dict(json.loads(path.read_text()))


def profile_bench(b: CpuBench) -> Profile:
    """The CPU profile of a bench's step (the CPU's own kernels, not the GPU's fused ones)."""
    from gpuwise.profile import profile

    return profile(
        b.workload, batch_size=b.batch_size, precision=b.precision, optimizer=b.optimizer, seq_len=b.seq_len,
        image_size=b.image_size,
    )


def fit_cpu(
    rows: Sequence[tuple[Profile, float]], ceilings: Ceilings, source: str
) -> Efficiency:
    """Least squares on log(predicted / measured) step time over ``rows`` of (profile, measured seconds)."""
    from gpuwise.predict.fit import least_squares

    if not rows:
        raise ValueError("nothing to fit on")
    return least_squares(
        DEFAULT, _FITTED,
        lambda eff: [math.log(cpu_step(p, ceilings, eff).step_s / measured)
                     for p, measured in rows],
        source=source,
    )


def held_out_by_workload(
    benches: Sequence[CpuBench], profiles: Sequence[Profile], ceilings: Ceilings
) -> list[tuple[CpuBench, float]]:
    """Each bench predicted by constants fitted on the benches of every *other* workload."""
    out = []
    for workload in dict.fromkeys(b.workload for b in benches):
        train = [(p, b.median_s) for b, p in zip(benches, profiles, strict=True) if b.workload != workload]
        eff = fit_cpu(train, ceilings, source=f"fitted without {workload}")
        out += [
            (b, cpu_step(p, ceilings, eff).step_s)
            for b, p in zip(benches, profiles, strict=True) if b.workload == workload
        ]
    return out


def main(argv: Sequence[str] = tuple(sys.argv[1:])) -> None:
    """Fit on every bench in the file and write the shipped constants."""
    if len(argv) != 1:
        raise SystemExit("usage: python -m gpuwise.predict.cpu_fit BENCHES.json")
    bench_set = load_benches(Path(argv[0]))
    profiles = [profile_bench(b) for b in bench_set.benches]
    eff = fit_cpu(
        [(p, b.median_s) for b, p in zip(bench_set.benches, profiles, strict=True)], bench_set.ceilings,
        source=f"fitted on {len(profiles)} CPU benches ({bench_set.machine}, {bench_set.measured_at[:10]}), "
        "relative to the measured ceilings",
    )
    save(eff, shipped_file(FITTED_FILE))
    print(json.dumps(asdict(eff), indent=2))


if __name__ == "__main__":
    main()
