"""gpuwise: know what your deep-learning training needs before you pay for it."""

from gpuwise.errors import GpuwiseError
from gpuwise.profile import Profile, profile
from gpuwise.workloads import UserWorkload, Workload, get_workload, list_workloads

__version__ = "0.1.0"

__all__ = [
    "GpuwiseError",
    "Profile",
    "UserWorkload",
    "Workload",
    "__version__",
    "get_workload",
    "list_workloads",
    "profile",
]
