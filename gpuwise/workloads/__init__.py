"""The workload zoo: registry, families, and the user's own factories."""

from gpuwise.workloads.registry import Shape, Workload, get_workload, list_workloads, register
from gpuwise.workloads.user import UserWorkload

__all__ = ["Shape", "UserWorkload", "Workload", "get_workload", "list_workloads", "register"]
