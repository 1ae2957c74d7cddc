"""Profile a training step on fake tensors: FLOPs, bytes by op kind, memory by kind."""

from gpuwise.profile.result import Profile
from gpuwise.profile.run import profile

__all__ = ["Profile", "profile"]
