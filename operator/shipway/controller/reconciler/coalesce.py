"""When a big pipeline's status write may wait: its own schedule, at most one write per
:data:`COALESCE_SECONDS` while only its steps move (pure).

A pipeline of 1000 steps has a status of 100-200 kB, and with 20 pods at a time its steps
end several times a second: written on every change, those writes (each one validated and
stored whole by the API server) are what a neighbour's pod creates and status patches queue
behind (#30). Its steps' progress can wait a moment; nothing else does. A held write loses
nothing: the planner plans from the status it decided, the pods keep what the status has not
recorded yet (a restarted operator rebuilds it from them), and the Events of the held change
are sent only after the write that records it, so a restart neither loses nor repeats them.
"""

from __future__ import annotations

from shipway.engine.objects import Manifest
from shipway.engine.plan.planner import Plan

COALESCE_STEPS = 100
"""Pipelines with at least this many steps write on their own schedule."""
COALESCE_SECONDS = 1.0
"""The shortest time between two status writes of such a pipeline while only steps move."""
MAY_WAIT = frozenset({"steps", "progress", "currentStep"})
"""The status fields whose change may wait for the next write: the steps' progress. A new
phase, message, condition, source, build or gate is written at once."""


def hold_for(
    new: Manifest, written: Manifest, *, result: Plan, since_write: float | None
) -> float | None:
    """Seconds the write of ``new`` may wait (the API server has ``written``); None: now.

    It waits only for a big pipeline that wrote less than :data:`COALESCE_SECONDS` ago, when
    nothing but its steps' progress changed and the plan stops or deletes no pod (a pod
    deleted before a retry may hold the only trace of the attempt the status must record).
    """
    if since_write is None or since_write >= COALESCE_SECONDS:
        return None
    if len(new.get("steps") or ()) < COALESCE_STEPS:
        return None
    if result.stop or result.delete or result.status.phase.terminal:
        return None
    keys = new.keys() | written.keys()
    if any(new.get(key) != written.get(key) for key in keys - MAY_WAIT):
        return None
    return COALESCE_SECONDS - since_write
