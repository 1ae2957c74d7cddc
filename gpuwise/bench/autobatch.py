"""`--batch-size auto`: the largest batch that fits, found by growing then bisecting.

Each try runs a real training step at that batch. A CUDA out-of-memory error is caught,
the memory released, and the search goes on; any other error is a real failure and
propagates. On the CPU there is no OOM error to catch — the kernel's OOM killer or
swap would come first — so a try is refused before it runs when the profile's memory
estimate for that batch exceeds the free RAM.
"""

from __future__ import annotations

import gc
from collections.abc import Callable

import torch


def is_out_of_memory(error: BaseException) -> bool:
    """Only a real allocator OOM; a shape error that mentions memory is not one."""
    return isinstance(error, torch.OutOfMemoryError)


def release_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def fits(step: Callable[[int], object], batch_size: int) -> bool:
    """Run one step at ``batch_size``; False if it ran out of memory (memory released)."""
    try:
        step(batch_size)
    except Exception as e:
        if not is_out_of_memory(e):
            raise
        del e
        release_memory()
        return False
    release_memory()
    return True


def largest_batch(fits_at: Callable[[int], bool], *, start: int = 1, limit: int = 1 << 16) -> int:
    """The largest batch in [1, limit] for which ``fits_at`` holds, 0 if not even 1 does.

    Doubles from ``start`` while it fits, then bisects between the last fit and the
    first failure; assumes fitting is monotone in the batch size.
    """
    if not fits_at(1):
        return 0
    good, bad = 1, None
    batch = max(2, start)
    while batch <= limit:
        if fits_at(batch):
            good = batch
            batch *= 2
        else:
            bad = batch
            break
    if bad is None:  # doubled past the limit without a failure
        if good == limit or fits_at(limit):
            return limit
        bad = limit
    while bad - good > 1:
        mid = (good + bad) // 2
        if fits_at(mid):
            good = mid
        else:
            bad = mid
    return good
