"""The measurement records, now in ``gpuwise.records``; importable from here as before."""

from gpuwise.records import BenchResult as BenchResult
from gpuwise.records import Ceilings as Ceilings
from gpuwise.records import Hardware as Hardware
from gpuwise.records import Software as Software
from gpuwise.records import Timing as Timing
