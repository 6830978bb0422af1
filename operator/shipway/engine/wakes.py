"""Which pod changes can matter to a pipeline's next plan, and which cannot (pure).

Every change of a pod's summary used to wake its pipeline: the pod's creation echo, its
binding to a node and its start each cost a reconcile that planned, found the same plan
and did nothing (measured: three of a five-step pipeline's four reconciles per step). The
store still keeps the newest view of every pod (the next reconcile plans from it); only the
wake-up is skipped, and only where the planner provably reads nothing that changed:

* the pod is *settled*: the current attempt's pod of a run step the last plan left
  running, in a running pipeline that does not wait to learn its node (a ReadWriteOnce
  workspace pins the pipeline to its first pod's node, read from that pod's binding);
* the change is *quiet*: it moves the pod only between "created", "bound", "its
  containers start" and "running", nothing a step's outcome reads
  (:func:`shipway.engine.outcome.outcome`) tells anything new, and nothing identifying it
  changed.

For a settled pod the planner reads its view through ``outcome`` (whose ``started_at``
it ignores while the step runs), the pod's identity and creation time, and keeps the view as
the task's live pod, read only by :func:`~shipway.engine.plan.task.halt` when the task is
stopped. A stop comes from a change that wakes the pipeline itself (a cancel, an approval) or
from a timer (the deadline), and that reconcile reads the newest view. Anything else, when in
doubt, wakes.
"""

from __future__ import annotations

from dataclasses import fields

from shipway.engine.observe import ContainerView, PodView
from shipway.engine.outcome import FATAL_WAITING, PULL_THROTTLED, STUCK_WAITING, waiting_for_service
from shipway.models import PipelinePhase, PipelineStatus, StepPhase

MAY_CHANGE = frozenset({"phase", "node_name", "started", "start_time", "main"})
"""The PodView fields a quiet change may change (each within the bounds below)."""
IDLE_PHASES = frozenset({"Pending", "Running"})
"""Pod phases in which a step's outcome does not read the phase (no unschedulable pod)."""


def settled_pods(status: PipelineStatus, *, pinned: bool) -> frozenset[str]:
    """The pods of ``status`` whose quiet changes wake nobody: those of its running steps.

    None while the pipeline is not running, or while a pinned pipeline has no node yet (the
    first pod's binding names it).
    """
    if status.phase != PipelinePhase.RUNNING or (pinned and not status.node_name):
        return frozenset()
    return frozenset(s.pod for s in status.steps if s.phase == StepPhase.RUNNING and s.pod)


def _idle(container: ContainerView | None) -> bool:
    """A step container that tells its outcome nothing: absent, running, or waiting for a
    reason the outcome does not act on (``ContainerCreating``)."""
    if container is None or container.state == "running":
        return True
    if container.state != "waiting":
        return False  # terminated: the step ends
    reason, message = container.reason, container.message or ""
    return (
        reason not in FATAL_WAITING
        and reason not in STUCK_WAITING
        and PULL_THROTTLED not in message
    )


def quiet_change(old: PodView, new: PodView) -> bool:
    """The change from ``old`` to ``new`` of a settled pod leaves its step's plan as it was."""
    for field in fields(PodView):
        if field.name not in MAY_CHANGE and getattr(old, field.name) != getattr(new, field.name):
            return False
    if old.phase not in IDLE_PHASES or new.phase not in IDLE_PHASES:
        return False
    if old.deletion_requested_at is not None or old.reason is not None:
        return False
    if old.disruption is not None or old.unschedulable is not None:
        return False
    if not (_idle(old.main) and _idle(new.main)):
        return False
    return waiting_for_service(old) == waiting_for_service(new)
