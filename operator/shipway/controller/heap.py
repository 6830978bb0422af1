"""The operator's heaps: the C heap's free memory given back to the system now and then
(glibc only), and Python's cycle collector set for a long-lived process.

Most of what the operator allocates is short-lived: watch events and API answers, decoded,
summarised and dropped. Larger blocks come from glibc, one heap ("arena") per thread that
asks; freed blocks stay in their arena, so without help the resident set only grows, to the
high-water mark of every thread at once. ``malloc_trim`` hands whole free pages back.
Elsewhere (musl, macOS) this does nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
from collections.abc import Callable

log = logging.getLogger("shipway")

YOUNG_COLLECTION_EVERY = 10_000
"""Allocations (less deallocations) between two collections of the youngest generation:
Python's default is 700."""

M_ARENA_MAX = -8
"""mallopt(3) parameter: the most arenas glibc creates for all threads."""


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    if not hasattr(libc, "malloc_trim") or not hasattr(libc, "mallopt"):
        return None  # not glibc
    return libc


def limit_arenas(count: int = 2) -> bool:
    """Cap glibc's arenas before the thread pools start; True if it took effect."""
    libc = _libc()
    return bool(libc is not None and libc.mallopt(M_ARENA_MAX, count) == 1)


def trimmer() -> Callable[[], int] | None:
    """``malloc_trim(0)``, or None where there is none."""
    libc = _libc()
    if libc is None:
        return None
    trim = libc.malloc_trim

    def run() -> int:
        return int(trim(0))

    return run


async def trim_every(seconds: float) -> None:
    """Trim the C heap every ``seconds``, for the operator's lifetime."""
    trim = trimmer()
    if trim is None:
        return
    while True:
        await asyncio.sleep(seconds)
        trim()


def tune_collector() -> None:
    """Freeze what start-up made, and collect the young generations less often.

    Measured at 1000 pipelines x 5 steps with Python's defaults: 1,178 young, 107 middle and
    9 full collections took 3.4 s, a sixth of the operator's CPU, and one full collection up
    to 275 ms at once: each walks every module, class and schema loaded at start-up, which
    never become garbage. Frozen, they are left out of every collection (memory they hold is
    still freed by reference counting, as all of the operator's acyclic data is).
    """
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, middle, old)
