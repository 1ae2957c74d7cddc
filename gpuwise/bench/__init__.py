"""Benchmarks: real training steps on real devices, by one protocol."""

from gpuwise.entry import make_callable

make_callable(__name__)  # gpuwise.bench(...) is the Python API: see gpuwise.entry
