"""Give the C heap's free memory back to the system now and then (glibc only).

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
import logging
from collections.abc import Callable

log = logging.getLogger("shipway")

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
