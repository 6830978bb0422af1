"""A fix for kopf's start-up with many objects: its readiness gate is quadratic.

After a (re)start kopf holds every object's first handling until all indexes are filled: an
``aiotoggles.ToggleSet`` that each object's worker waits on with ``Condition.wait_for``. Every
object that joins or leaves the set notifies the condition, which wakes every worker already
waiting, one lock hand-over at a time: about n²/2 wake-ups for n objects. 3000 objects arriving
one by one cost 24 s of one core for the gate alone (1000 objects: 2 s), before any handler
runs. Polling the set's state with a short back-off costs each waiter a few wake-ups, whatever
n is, and answers within 50 ms.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

MAX_POLL = 0.05


async def _wait_for(self: Any, state: bool, /) -> None:
    delay = 0.001
    while self.is_on() != bool(state):
        await asyncio.sleep(delay)
        delay = min(delay * 2, MAX_POLL)


def install() -> bool:
    """Replace ``ToggleSet.wait_for`` (same signature and meaning); idempotent.

    This reaches into kopf's private modules: when a kopf release moves them, the operator
    keeps kopf's own (slower, correct) gate and says so, instead of failing to start.
    """
    try:
        from kopf._cogs.aiokits import aiotoggles

        if not callable(getattr(aiotoggles.ToggleSet, "wait_for", None)):
            raise AttributeError("ToggleSet.wait_for")
    except (ImportError, AttributeError) as exc:
        logging.getLogger("shipway").warning("kopf start-up fix not applied: %s", exc)
        return False
    aiotoggles.ToggleSet.wait_for = _wait_for  # type: ignore[method-assign,assignment]
    return True
