"""The status a reconcile plans from, and the write of the status it decides.

The operator plans from its own last write. While a pipeline runs, that write is kept as
the model and its dump (no re-parse, no second dump per event: the profile showed both in
the top of a reconcile); once the pipeline has ended only its compact JSON is kept, which is
ten times smaller and is read again only if a stray event comes.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import datetime

from pydantic import ValidationError

from shipway.controller import metrics
from shipway.controller.memory import Memory, only_node_learned
from shipway.controller.reconciler.api import KubeApi
from shipway.controller.reconciler.coalesce import hold_for
from shipway.controller.snapshot import PipelineSnapshot, dump_status, merge_patch
from shipway.engine.ownership import record_uids
from shipway.engine.plan.planner import Plan
from shipway.models import PipelineStatus

log = logging.getLogger("shipway")


def read_status(snap: PipelineSnapshot, memory: Memory) -> PipelineStatus:
    """The last status this process wrote, else the one found on the object."""
    if memory.last is not None:
        return memory.last
    try:
        status = PipelineStatus.model_validate_json(memory.written or snap.status_json)
    except ValidationError:
        log.warning("%s/%s: unreadable status, starting from scratch", snap.namespace, snap.name)
        status = PipelineStatus()
    if not status.phase.terminal:
        memory.last, memory.dumped = status, None
    return status


async def write_status(
    kube: KubeApi,
    snap: PipelineSnapshot,
    memory: Memory,
    status: PipelineStatus,
    *,
    result: Plan,
    now: datetime | None = None,
) -> Plan:
    """Write the plan's status if it says something new (a merge patch of what changed),
    and remember it; the plan as carried on (its Events held while its write waits, see
    :mod:`.coalesce`; ``now`` None: never waits)."""
    uids = {**memory.trusted, **{v.name: v.uid for v in memory.created.values() if v.uid}}
    result = replace(result, status=record_uids(result.status, status, uids))
    old = memory.dumped if memory.last is status and memory.dumped is not None else None
    if old is None:
        old = dump_status(status)
    new = dump_status(result.status, reuse=(status, old))
    stored = memory.stored if memory.stored is not None else old
    if new != stored and not only_node_learned(new, stored):
        since = (now - memory.wrote_at).total_seconds() if now and memory.wrote_at else None
        wait = hold_for(new, stored, result=result, since_write=since)
        if wait is not None:
            memory.stored = stored
            memory.held_events += result.events
            due = wait if result.requeue_after is None else min(wait, result.requeue_after)
            result = replace(result, events=(), requeue_after=due)
        else:
            await kube.patch_status(snap.namespace, snap.name, merge_patch(stored, new))
            memory.stored, memory.wrote_at = None, now
    else:
        memory.stored = None
    if memory.stored is None and memory.held_events:
        result = replace(result, events=(*memory.held_events, *result.events))
        memory.held_events = ()
    if not memory.seen:
        metrics.track_new(status.phase)
        memory.seen = True
    metrics.record_transition(status, result.status, len(result.create))
    memory.phase = result.status.phase
    if result.status.phase.terminal:
        memory.written = json.dumps(new, separators=(",", ":"))
        memory.last = memory.dumped = None
    else:
        memory.written = None
        memory.last, memory.dumped = result.status, new
    return result
