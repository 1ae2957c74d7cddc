"""Profile a training step on fake tensors: FLOPs, bytes by op kind, memory by kind."""

from gpuwise.profile.result import Profile
from gpuwise.profile.run import profile

__all__ = ["Profile", "profile"]


from gpuwise.entry import make_callable

make_callable(__name__)  # gpuwise.profile(...) is the Python API: see gpuwise.entry
