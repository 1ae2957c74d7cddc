"""The performance model: per-op roofline, data-parallel communication, fitted efficiencies."""

from gpuwise.entry import make_callable

make_callable(__name__)  # gpuwise.predict(...) is the Python API: see gpuwise.entry
