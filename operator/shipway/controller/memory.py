"""What the reconciler remembers about one pipeline between reconciles, and the small
decisions made from it. A cache only: rebuilt from the cluster after a restart."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from shipway.controller.callpool import Priority
from shipway.engine.objects import Manifest
from shipway.engine.observe import PodView
from shipway.engine.plan.planner import EventToEmit, Plan, Refusal
from shipway.models import PipelinePhase, PipelineStatus


@dataclass(slots=True)
class Memory:
    """What the operator remembers about one pipeline between reconciles."""

    uid: str
    seen: bool = False
    """This process has written (or confirmed) the pipeline's status once."""
    last: PipelineStatus | None = None
    """The last status decided (written, or held: ``stored``) or found while the pipeline
    runs, as the model."""
    dumped: Manifest | None = None
    """``last`` as written: what the next write is compared with (None: not known yet)."""
    written: str | None = None
    """The last status of an ended pipeline, as JSON: smaller than the model by ten times."""
    stored: Manifest | None = None
    """What the API server has, while a big pipeline's write waits (``last`` is newer);
    None: it has ``dumped``."""
    wrote_at: datetime | None = None
    """When this process last wrote the status."""
    held_events: tuple[EventToEmit, ...] = ()
    """Events of the change whose write waits: sent after that write."""
    phase: PipelinePhase | None = None
    claim: bool = False
    build_secret: bool = False
    created: dict[str, PodView] = field(default_factory=dict)
    rejected: dict[str, Refusal] = field(default_factory=dict)
    waiting: dict[str, str] = field(default_factory=dict)
    """Pods a ResourceQuota refused in this reconcile (tried again in the next)."""
    trusted: dict[str, str] = field(default_factory=dict)
    """Name → UID of the pipeline's own pods found in this reconcile (recorded in the status)."""
    strangers: set[str] = field(default_factory=set)
    """UIDs of pods claiming the pipeline that the operator did not create, already reported."""
    settled: frozenset[str] = frozenset()
    """Pods whose quiet changes need no reconcile, as the last plan left them
    (:func:`~shipway.engine.wakes.settled_pods`); empty until a reconcile succeeds."""


@dataclass(slots=True)
class Carried:
    """What carrying out a plan came to: the last plan, the pods known, the step pods
    created, or the plan of a pipeline failed on the way (its claim refused)."""

    result: Plan
    pods: list[PodView]
    took: int
    aborted: Plan | None = None


def pipeline_urgency(status: PipelineStatus, memory: Memory) -> Priority:
    """How soon this pipeline's new pods should go, when API calls have to queue.

    A pipeline found running after a restart first, then steps of started pipelines; a
    pipeline not started yet last, behind even status patches: under a burst, pipelines
    already running finish at full speed instead of all of them slowing down together.
    """
    if not any(step.pod for step in status.steps):
        return Priority.START
    if not memory.seen and status.phase == PipelinePhase.RUNNING:
        return Priority.RESUME  # running before this operator process saw it
    return Priority.STEP


def only_node_learned(new: Manifest, old: Manifest) -> bool:
    """The one change is the node a ReadWriteOnce workspace is pinned to, just scheduled.

    Not worth a write of its own: the planner finds the node again from the pods, and the
    next real change (the step's end) writes it with the rest of the status.
    """
    return (
        "nodeName" in new
        and "nodeName" not in old
        and {**new, "nodeName": None} == {**old, "nodeName": None}
    )


def without_created(result: Plan, memory: Memory) -> Plan:
    """After a re-plan, pods created in the first round are not created again."""
    return replace(
        result,
        create=tuple(c for c in result.create if c.name not in memory.created),
        builds=tuple(b for b in result.builds if b.name not in memory.created),
    )
