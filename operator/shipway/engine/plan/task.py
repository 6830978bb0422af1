"""One pod task's lifecycle while planning: a step attempt, the source preparation, a build (pure).

Every pod task moves through the same states (pending, running, ended or skipped) by the same
events: its record says it ended, its pod runs or ends, its pod vanished, the API server refused
the create, a ResourceQuota holds it, the pipeline stops. :class:`Task` is that state, immutable
(as kopf's per-handler state in ``progression.py``): each event is a named transition that
returns the next state, so no planner writes ``phase, reason, message`` by hand.
:class:`Tracker` is what the three kinds share while deriving their tasks from the status and
the pods: the pods to stop or delete, when to look again, quota waits. Steps keep only their
retries and attempts, builds their digest, healthcheck and gate, the preparation its facts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol, TypedDict

from shipway.engine.observe import PodView
from shipway.engine.outcome import Outcome, outcome
from shipway.engine.plan.inputs import PlanInput
from shipway.engine.reasons import StepReason
from shipway.models import StepPhase


class Record(Protocol):
    """What every task's status record remembers (StepStatus, SourceStatus, BuildStatus)."""

    @property
    def phase(self) -> StepPhase: ...
    @property
    def pod(self) -> str | None: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def message(self) -> str | None: ...
    @property
    def created_at(self) -> str | None: ...
    @property
    def started_at(self) -> str | None: ...
    @property
    def finished_at(self) -> str | None: ...


class RecordFields(TypedDict):
    """What :meth:`Task.record` gives every task's status record."""

    phase: StepPhase
    pod: str | None
    reason: str | None
    message: str | None
    created_at: str | None
    started_at: str | None
    finished_at: str | None


@dataclass(frozen=True)
class Task:
    """A pod task's state: read from its record, moved on by the transitions below."""

    phase: StepPhase = StepPhase.PENDING
    pod: str | None = None
    reason: str | None = None
    message: str | None = None
    created_at: str | None = None
    """When the pod was created."""
    started_at: str | None = None
    """When its main container started: known once it has ended (a running container's start
    would cost a status write of its own)."""
    finished_at: str | None = None
    live_pod: PodView | None = None
    """Its pod, if it exists and is still active."""

    @classmethod
    def recorded(cls, rec: Record | None) -> Task:
        """The state the status remembers (pending when it remembers nothing)."""
        if rec is None:
            return cls()
        return cls(
            rec.phase,
            rec.pod,
            rec.reason,
            rec.message,
            rec.created_at,
            rec.started_at,
            rec.finished_at,
        )

    def record(self) -> RecordFields:
        """The fields its status record writes (an end time only once it is over)."""
        return RecordFields(
            phase=self.phase,
            pod=self.pod,
            reason=self.reason,
            message=self.message,
            created_at=self.created_at,
            started_at=self.started_at,
            finished_at=self.finished_at if self.phase.terminal else None,
        )

    def pending(self) -> Task:
        """No pod and nothing recorded against it: it starts when the walk says so."""
        return replace(self, phase=StepPhase.PENDING, pod=None)

    def placed(self, name: str, created_at: str | None) -> Task:
        """Its pod exists (the record may not have said so yet)."""
        return replace(self, pod=name, created_at=self.created_at or created_at)

    def running(self, pod: PodView, reason: str | None, message: str | None) -> Task:
        """Its pod is active; reason and message say what it waits for, if anything."""
        return replace(self, phase=StepPhase.RUNNING, live_pod=pod, reason=reason, message=message)

    def started(self, at: str | None) -> Task:
        return replace(self, started_at=at)

    def ended(
        self, phase: StepPhase, reason: str | None, message: str | None, at: str | None
    ) -> Task:
        """It is over: succeeded, failed, cancelled (its pod, if live, is stopped apart)."""
        return replace(
            self, phase=phase, reason=reason, message=message, finished_at=at, live_pod=None
        )

    def skipped(self, reason: str, message: str | None, at: str | None = None) -> Task:
        """It will never run."""
        return self.ended(StepPhase.SKIPPED, reason, message, at)

    def noted(self, reason: str | None, message: str | None) -> Task:
        """Still where it is, saying why: a quota, a throttle, a retry."""
        return replace(self, reason=reason, message=message)

    def created(self, name: str, stamp: str, *, keep_note: bool = False) -> Task:
        """Its pod is created now."""
        return replace(
            self,
            phase=StepPhase.RUNNING,
            pod=name,
            created_at=stamp,
            started_at=None,
            reason=self.reason if keep_note else None,
            message=self.message if keep_note else None,
        )

    def retried(self) -> Task:
        """A failed attempt is followed by the next: no pod yet."""
        return replace(self, phase=StepPhase.RUNNING, pod=None, created_at=None, started_at=None)


class Tracked:
    """A step, build or preparation task: what it is (its subclass) around its :class:`Task`,
    whose state it reads through."""

    task: Task
    start: bool
    """Create its pod now."""

    @property
    def phase(self) -> StepPhase:
        return self.task.phase

    @property
    def pod(self) -> str | None:
        return self.task.pod

    @property
    def reason(self) -> str | None:
        return self.task.reason

    @property
    def message(self) -> str | None:
        return self.task.message

    @property
    def created_at(self) -> str | None:
        return self.task.created_at

    @property
    def started_at(self) -> str | None:
        return self.task.started_at

    @property
    def finished_at(self) -> str | None:
        return self.task.finished_at

    @property
    def live_pod(self) -> PodView | None:
        return self.task.live_pod


def halt(pod: PodView | None) -> str | None:
    """How to end a pod that should not run: "stop" (keeps logs), "delete", or None."""
    if pod is None or not pod.active or pod.deletion_requested_at is not None:
        return None
    if pod.main is not None and pod.main.state == "terminated":
        return None  # the task's container is done; the kubelet ends the pod (and sidecars)
    if not pod.started or pod.node_name is None:
        return "delete"
    if pod.active_deadline is None or pod.active_deadline > 1:
        return "stop"
    return None


class Tracker:
    """What deriving any kind of pod task shares: the pods to end, when to look again, quota."""

    def __init__(self, inputs: PlanInput) -> None:
        self.inputs = inputs
        self.stamp = inputs.stamp
        self.stop: list[str] = []
        self.delete: list[str] = []
        self.recheck: list[float] = []
        """Seconds after which to look again (a start problem's grace runs out)."""
        self.quota: str | None = None
        """Why a pod waits: a ResourceQuota refused it (tried again later)."""

    def stop_if_live(self, pod: PodView | None) -> None:
        action = halt(pod)
        if pod is not None and action == "delete":
            self.delete.append(pod.name)
        elif pod is not None and action == "stop":
            self.stop.append(pod.name)

    def outcome(self, pod: PodView) -> Outcome:
        settings = self.inputs.settings
        return outcome(pod, self.inputs.now, settings.start_grace, settings.unschedulable_grace)

    def observe(
        self, task: Task, name: str, pod: PodView | None, vanished: str
    ) -> tuple[Task, Outcome | None]:
        """What the pod ``name`` says of a task not recorded as over.

        No pod: a refused create or a vanished running pod is a failure (the outcome says
        which); else None (the caller decides: pending, or a retry). A live pod: the task is
        running. An ended pod: its outcome, for the caller's kind to read its report.
        """
        if pod is None:
            if name in self.inputs.rejected:
                refusal = self.inputs.rejected[name]
                failed = Outcome(
                    StepPhase.FAILED,
                    reason=refusal.reason,
                    message=refusal.message[:1024],
                    finished_at=self.stamp,
                )
                return task, failed
            if task.pod == name and task.phase == StepPhase.RUNNING:
                gone = Outcome(
                    StepPhase.FAILED,
                    reason=StepReason.POD_DELETED,
                    message=vanished,
                    started_at=task.started_at,
                    finished_at=self.stamp,
                )
                return task, gone
            return task, None
        task = task.placed(name, pod.created_at)
        result = self.outcome(pod)
        if result.recheck_after is not None:
            self.recheck.append(result.recheck_after)
        if result.phase == StepPhase.RUNNING:
            return task.running(pod, result.reason, result.message), result
        if result.stop:
            self.stop_if_live(pod)
        return task, result

    def quota_wait(self, name: str) -> str | None:
        """The ResourceQuota's message if it refused ``name`` a moment ago (noted as this
        pipeline's quota wait), else None."""
        waiting = self.inputs.waiting.get(name)
        if waiting is not None:
            self.quota = f"waiting for quota: {waiting}"[:1024]
            return waiting[:1024]
        return None

    def stop_task(
        self,
        item: Tracked,
        end: tuple[StepPhase, str, str],
        skip_at: str | None = None,
    ) -> None:
        """Cancel, time out, the pipeline ended: a running task ends in ``end``'s phase, its
        pod stopped; one not started never runs (skipped)."""
        phase, reason, message = end
        task = item.task
        if task.phase == StepPhase.RUNNING:
            self.stop_if_live(task.live_pod)
            item.task = task.ended(phase, reason, message, self.stamp)
        else:
            item.task = task.skipped(reason, message, skip_at)
        item.start = False
