"""A user workload file whose factory fails, as a user's might."""

import gpuwise


def build() -> gpuwise.UserWorkload:
    raise RuntimeError("checkpoint shape mismatch in layer 3")


def not_a_workload() -> int:
    return 3
