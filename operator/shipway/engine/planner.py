"""The pure decision: from a pipeline's spec, its last status and its pods to what happens next.

Nothing here talks to Kubernetes. The operator calls :func:`plan` on every relevant event and
carries out the result; calling it twice with the same inputs gives the same answer, which is
what makes the operator safe to kill at any instant:

* a step's pod has a deterministic name per attempt, so a repeated create is a no-op;
* the status is the memory of finished steps; pods fill in whatever the status has not
  recorded yet (the operator may have died between creating a pod and writing the status);
* stops are re-issued for as long as a pod runs for a step that is already over.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import Enum

from shipway.engine.naming import pod_name
from shipway.engine.observe import (
    START_GRACE_SECONDS,
    Outcome,
    PodView,
    format_time,
    outcome,
    parse_time,
)
from shipway.models import (
    Condition,
    PipelinePhase,
    PipelineStatus,
    StepAttempt,
    StepPhase,
    StepStatus,
)
from shipway.spec.compiler import CompiledPipeline
from shipway.spec.errors import InvalidSpecError
from shipway.spec.tree import GroupNode, Node, RunNode

TERMINAL_PIPELINE = (PipelinePhase.SUCCEEDED, PipelinePhase.FAILED, PipelinePhase.CANCELLED)


@dataclass(frozen=True)
class PipelineRef:
    """Identity of the Pipeline object being planned."""

    name: str
    namespace: str
    uid: str
    generation: int = 1
    created_at: str | None = None


@dataclass(frozen=True)
class PodToCreate:
    step_id: str
    attempt: int
    name: str
    active_deadline: int | None = None


@dataclass(frozen=True)
class EventToEmit:
    type: str
    """Normal or Warning."""
    reason: str
    message: str


@dataclass(frozen=True)
class Plan:
    """Everything the operator should do now, in this order: claim, pods, status, stops, events."""

    status: PipelineStatus
    create: tuple[PodToCreate, ...] = ()
    stop: tuple[str, ...] = ()
    delete: tuple[str, ...] = ()
    """Pods to delete before a retry: they never got to run their container."""
    events: tuple[EventToEmit, ...] = ()
    requeue_after: float | None = None
    ensure_claim: bool = False


@dataclass(frozen=True)
class Settings:
    start_grace: float = START_GRACE_SECONDS


class _Result(Enum):
    WAITING = "waiting"
    ACTIVE = "active"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass
class _Step:
    """A run step's state while planning."""

    run: RunNode
    phase: StepPhase = StepPhase.PENDING
    attempt: int = 0
    pod: str | None = None
    exit_code: int | None = None
    reason: str | None = None
    message: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    attempts: list[StepAttempt] = field(default_factory=list)
    live_pod: PodView | None = None
    """The current attempt's pod, if it exists and is still active."""
    blocked: bool = False
    """A retry waits for the previous attempt's pod to be gone."""
    start: bool = False
    """Create the current attempt's pod now."""

    @property
    def started(self) -> bool:
        return self.phase != StepPhase.PENDING or self.pod is not None


def _halt(pod: PodView | None) -> str | None:
    """How to end a pod that should not run: "stop" (keeps logs), "delete", or None."""
    if pod is None or not pod.active or pod.deletion_requested_at is not None:
        return None
    if pod.main is not None and pod.main.state == "terminated":
        return None  # the step's container is done; the kubelet ends the pod (and sidecars)
    if not pod.started or pod.node_name is None:
        return "delete"
    if pod.active_deadline is None or pod.active_deadline > 1:
        return "stop"
    return None


def finished_plan(status: PipelineStatus, pods: Sequence[PodView]) -> Plan:
    """A pipeline that has ended: only a stray pod (one its status does not record) is ended.

    Needs neither the spec nor the clock, so a finished pipeline is never compiled again.
    """
    recorded = _recorded(status)
    stop: list[str] = []
    delete: list[str] = []
    for pod in pods:
        step = recorded.get(pod.step_id)
        if step is not None and step.pod == pod.name:
            continue
        action = _halt(pod)
        if action == "stop":
            stop.append(pod.name)
        elif action == "delete":
            delete.append(pod.name)
    return Plan(status=status, stop=tuple(dict.fromkeys(stop)), delete=tuple(dict.fromkeys(delete)))


def _recorded(status: PipelineStatus) -> dict[str, StepStatus]:
    return {step.id: step for step in status.steps}


def _attempt_record(attempt: int, name: str, result: Outcome) -> StepAttempt:
    return StepAttempt(
        attempt=attempt,
        pod=name,
        phase=result.phase,
        exit_code=result.exit_code,
        reason=result.reason,
        message=result.message,
        started_at=result.started_at,
        finished_at=result.finished_at,
    )


class _Planner:
    def __init__(
        self,
        ref: PipelineRef,
        compiled: CompiledPipeline,
        status: PipelineStatus,
        pods: Sequence[PodView],
        now: datetime,
        settings: Settings,
        rejected: Mapping[str, str],
    ) -> None:
        self.ref = ref
        self.rejected = rejected
        self.compiled = compiled
        self.status = status
        self.now = now
        self.settings = settings
        self.stamp = format_time(now)
        self.pods = pods
        self.pods_by_step: dict[str, dict[int, PodView]] = {}
        for pod in pods:
            self.pods_by_step.setdefault(pod.step_id, {})[pod.attempt] = pod
        self.recheck: list[float] = []
        self.stop: list[str] = []
        self.delete: list[str] = []
        self.skip: dict[str, str] = {}
        self.halted = False
        self.stopping: tuple[PipelinePhase, str] | None = None
        recorded = _recorded(status)
        self.steps = {run.id: self._derive(run, recorded.get(run.id)) for run in compiled.runs}

    def _name(self, run: RunNode, attempt: int) -> str:
        return pod_name(self.ref.name, run.id, run.name, attempt)

    def _stop_if_live(self, pod: PodView | None) -> None:
        action = _halt(pod)
        if pod is not None and action == "delete":
            self.delete.append(pod.name)
        elif pod is not None and action == "stop":
            self.stop.append(pod.name)

    def _derive(self, run: RunNode, rec: StepStatus | None) -> _Step:
        pods = self.pods_by_step.get(run.id, {})
        step = _Step(run)
        if rec is not None:
            step.phase, step.attempt, step.pod = rec.phase, rec.attempt, rec.pod
            step.exit_code, step.reason, step.message = rec.exit_code, rec.reason, rec.message
            step.started_at, step.finished_at = rec.started_at, rec.finished_at
            step.attempts = list(rec.attempts)
        if step.phase.terminal:
            # The status remembers the result; a pod still running for it is stopped.
            self._stop_if_live(pods.get(step.attempt))
            return step
        if pods:
            step.attempt = max(step.attempt, *pods)
        known = {a.attempt for a in step.attempts}
        for attempt in range(step.attempt):
            old = pods.get(attempt)
            if attempt not in known and old is not None:
                result = outcome(old, self.now, self.settings.start_grace)
                step.attempts.append(_attempt_record(attempt, old.name, result))
        step.attempts.sort(key=lambda a: a.attempt)
        while True:
            name = self._name(run, step.attempt)
            pod = pods.get(step.attempt)
            if pod is None and name in self.rejected:
                result = Outcome(
                    StepPhase.FAILED,
                    reason="PodRejected",
                    message=self.rejected[name][:1024],
                    finished_at=self.stamp,
                )
            elif pod is None:
                if step.pod == name and step.phase == StepPhase.RUNNING:
                    result = Outcome(
                        StepPhase.FAILED,
                        reason="PodDeleted",
                        message="the step's pod disappeared before the step finished",
                        started_at=step.started_at,
                        finished_at=self.stamp,
                    )
                elif step.phase == StepPhase.RUNNING and step.attempt > 0:
                    self._retry(step, pods.get(step.attempt - 1))
                    return step
                else:
                    step.phase, step.pod = StepPhase.PENDING, None
                    return step
            else:
                step.pod = name
                step.started_at = step.started_at or pod.created_at
                result = outcome(pod, self.now, self.settings.start_grace)
                if result.recheck_after is not None:
                    self.recheck.append(result.recheck_after)
            if result.phase == StepPhase.RUNNING:
                step.phase, step.live_pod = StepPhase.RUNNING, pod
                step.reason, step.message = result.reason, result.message
                return step
            if result.stop:
                self._stop_if_live(pod)
            if result.phase == StepPhase.FAILED and step.attempt < run.retries:
                step.attempts.append(_attempt_record(step.attempt, name, result))
                step.attempt += 1
                step.phase, step.pod, step.exit_code = StepPhase.RUNNING, None, None
                if step.attempt in pods:
                    continue
                self._retry(step, pod)
                return step
            step.phase = result.phase
            step.exit_code, step.reason, step.message = (
                result.exit_code,
                result.reason,
                result.message,
            )
            step.started_at = result.started_at or step.started_at
            step.finished_at = result.finished_at or self.stamp
            return step

    def _retry(self, step: _Step, previous: PodView | None) -> None:
        """The next attempt starts only once the previous attempt's pod is gone or over."""
        step.blocked = previous is not None and (
            previous.active or previous.deletion_requested_at is not None
        )
        step.start = not step.blocked
        step.reason = "WaitingForRetry" if step.blocked else "Retrying"
        step.message = f"attempt {step.attempt + 1} of {step.run.retries + 1}"

    # -- the tree -------------------------------------------------------------------------

    def _halted(self) -> bool:
        return any(
            s.phase in (StepPhase.FAILED, StepPhase.CANCELLED)
            for s in self.steps.values()
            if s.run.on_fail_of is None
        )

    def _not_needed(self, nodes: Iterable[Node], reason: str) -> None:
        for node in nodes:
            if isinstance(node, RunNode):
                self.skip.setdefault(node.id, reason)
                self._not_needed(node.on_fail, reason)
            else:
                self._not_needed(node.children, reason)
                self._not_needed(node.on_fail, reason)

    def _with_on_fail(self, node: Node, result: _Result) -> _Result:
        if not node.on_fail:
            return result
        if result == _Result.FAILED and self.stopping is None:
            handled = self._sequence(node.on_fail, allow=True, is_on_fail=True)
            return _Result.ACTIVE if handled in (_Result.ACTIVE, _Result.WAITING) else result
        if result in (_Result.SUCCEEDED, _Result.SKIPPED):
            self._not_needed(node.on_fail, "NotNeeded")
        return result

    def _visit(self, node: Node, allow: bool, is_on_fail: bool) -> _Result:
        if not node.enabled:
            self._not_needed([node], "FilteredOut")
            return _Result.SKIPPED
        if isinstance(node, GroupNode):
            if node.kind == "serial":
                result = self._sequence(node.children, allow, is_on_fail)
            else:
                results = [self._visit(child, allow, is_on_fail) for child in node.children]
                if _Result.ACTIVE in results:
                    result = _Result.ACTIVE
                elif _Result.FAILED in results:
                    result = _Result.FAILED
                elif _Result.WAITING in results:
                    result = _Result.WAITING
                else:
                    result = _Result.SUCCEEDED
            return self._with_on_fail(node, result)
        step = self.steps[node.id]
        if step.phase == StepPhase.SUCCEEDED:
            result = _Result.SUCCEEDED
        elif step.phase in (StepPhase.FAILED, StepPhase.CANCELLED):
            result = _Result.FAILED
        elif step.phase == StepPhase.SKIPPED:
            result = _Result.SKIPPED
        elif step.phase == StepPhase.RUNNING:
            result = _Result.ACTIVE
        elif allow and (is_on_fail or not self.halted):
            step.start = True
            result = _Result.ACTIVE
        else:
            result = _Result.WAITING
        return self._with_on_fail(node, result)

    def _sequence(self, nodes: Sequence[Node], allow: bool, is_on_fail: bool) -> _Result:
        for index, node in enumerate(nodes):
            result = self._visit(node, allow, is_on_fail)
            if result in (_Result.SUCCEEDED, _Result.SKIPPED):
                continue
            for later in nodes[index + 1 :]:
                self._visit(later, False, is_on_fail)
            return result
        return _Result.SUCCEEDED

    # -- the plan -------------------------------------------------------------------------

    def _stop_everything(self, phase: StepPhase, reason: str, message: str) -> None:
        for step in self.steps.values():
            if step.phase.terminal:
                continue
            if step.started and step.phase == StepPhase.RUNNING:
                self._stop_if_live(step.live_pod)
                step.phase, step.reason, step.message = phase, reason, message
                step.finished_at = self.stamp
            else:
                step.phase, step.reason, step.message = StepPhase.SKIPPED, reason, message
            step.start = False

    def _deadline(self) -> float | None:
        if self.compiled.timeout is None:
            return None
        started = parse_time(self.status.started_at) or self.now
        return (started - self.now).total_seconds() + self.compiled.timeout

    def run(self) -> Plan:
        previous = self.status
        if previous.phase in TERMINAL_PIPELINE:
            return finished_plan(previous, self.pods)
        self.halted = self._halted()
        remaining = self._deadline()
        if self.compiled.spec.cancel:
            self._stop_everything(StepPhase.CANCELLED, "Cancelled", "the pipeline was cancelled")
            self.stopping = (PipelinePhase.CANCELLED, "the pipeline was cancelled")
        elif remaining is not None and remaining <= 0:
            why = f"the pipeline ran longer than its timeout ({self.compiled.spec.timeout})"
            self._stop_everything(StepPhase.FAILED, "PipelineTimeout", why)
            self.stopping = (PipelinePhase.FAILED, why)
        root = self._sequence(self.compiled.root.children, self.stopping is None, False)
        if self.stopping is None and remaining is not None:
            self.recheck.append(remaining)
        creates = self._creates(remaining)
        message: str | None
        if self.stopping is not None:
            phase, message = self.stopping
        elif root in (_Result.ACTIVE, _Result.WAITING) and (creates or self._any_running()):
            phase, message = PipelinePhase.RUNNING, None
        elif root == _Result.SUCCEEDED or root == _Result.SKIPPED:
            phase, message = PipelinePhase.SUCCEEDED, None
        else:
            failed = [s.run.name for s in self.steps.values() if s.phase == StepPhase.FAILED]
            phase = PipelinePhase.FAILED
            message = "failed: " + ", ".join(failed[:5]) if failed else "a step failed"
        self._mark_skipped(phase in TERMINAL_PIPELINE)
        status = self._status(phase, message)
        return Plan(
            status=status,
            create=creates,
            stop=tuple(dict.fromkeys(self.stop)),
            delete=tuple(dict.fromkeys(self.delete)),
            events=tuple(diff_events(previous, status)),
            requeue_after=(
                min(self.recheck) if self.recheck and phase not in TERMINAL_PIPELINE else None
            ),
            ensure_claim=bool(creates) and self.compiled.uses_workspace,
        )

    def _any_running(self) -> bool:
        return any(s.phase == StepPhase.RUNNING for s in self.steps.values())

    def _mark_skipped(self, finished: bool) -> None:
        for step in self.steps.values():
            if step.phase != StepPhase.PENDING or step.start:
                continue
            reason = self.skip.get(step.run.id)
            if reason is None and self.halted and step.run.on_fail_of is None:
                reason = "PreviousStepFailed"
            if reason is None and finished:
                reason = "NotRun"
            if reason is not None:
                step.phase, step.reason, step.message = StepPhase.SKIPPED, reason, None

    def _creates(self, remaining: float | None) -> tuple[PodToCreate, ...]:
        creates: list[PodToCreate] = []
        for step in self.steps.values():
            if not step.start or step.blocked:
                continue
            deadlines = [t for t in (step.run.timeout, remaining) if t is not None]
            deadline = max(1, math.ceil(min(deadlines))) if deadlines else None
            name = self._name(step.run, step.attempt)
            creates.append(PodToCreate(step.run.id, step.attempt, name, deadline))
            step.phase, step.pod = StepPhase.RUNNING, name
            step.started_at = step.started_at if step.attempt else self.stamp
            if not step.attempt:
                step.reason, step.message = None, None
        return tuple(creates)

    def _node(self) -> str | None:
        if self.status.node_name or not self.compiled.pinned:
            return self.status.node_name
        nodes = [
            (pod.created_at or "", pod.node_name)
            for pods in self.pods_by_step.values()
            for pod in pods.values()
            if pod.node_name
        ]
        return min(nodes)[1] if nodes else None

    def _status(self, phase: PipelinePhase, message: str | None) -> PipelineStatus:
        steps = [self._step_status(s) for s in self.steps.values()]
        regular = [s for s in steps if s.on_fail_of is None]
        done = sum(1 for s in regular if s.phase.terminal)
        running = [s.name for s in steps if s.phase == StepPhase.RUNNING]
        started_at = self.status.started_at
        if started_at is None and any(s.pod for s in steps):
            started_at = self.stamp
        finished = phase in TERMINAL_PIPELINE
        return PipelineStatus(
            phase=phase if started_at or finished else PipelinePhase.PENDING,
            progress=f"{done}/{len(regular)}",
            current_step=", ".join(running)[:253] or None,
            message=message,
            started_at=started_at,
            finished_at=(self.status.finished_at or self.stamp) if finished else None,
            node_name=self._node(),
            observed_generation=self.ref.generation,
            conditions=[succeeded_condition(self.status, phase, message, self.stamp, self.ref)],
            steps=steps,
        )

    def _step_status(self, step: _Step) -> StepStatus:
        return StepStatus(
            id=step.run.id,
            name=step.run.name,
            group=step.run.group,
            service=step.run.service,
            on_fail_of=step.run.on_fail_of,
            phase=step.phase,
            pod=step.pod,
            attempt=step.attempt,
            exit_code=step.exit_code,
            reason=step.reason,
            message=step.message,
            started_at=step.started_at,
            finished_at=step.finished_at if step.phase.terminal else None,
            attempts=step.attempts,
        )


_PIPELINE_REASONS = {
    PipelinePhase.PENDING: ("Unknown", "Pending"),
    PipelinePhase.RUNNING: ("Unknown", "Running"),
    PipelinePhase.SUCCEEDED: ("True", "Succeeded"),
    PipelinePhase.FAILED: ("False", "Failed"),
    PipelinePhase.CANCELLED: ("False", "Cancelled"),
}


def succeeded_condition(
    previous: PipelineStatus,
    phase: PipelinePhase,
    message: str | None,
    stamp: str,
    ref: PipelineRef,
    reason: str | None = None,
) -> Condition:
    """The ``Succeeded`` condition; its transition time moves only when its status does."""
    value, default_reason = _PIPELINE_REASONS[phase]
    old = next((c for c in previous.conditions if c.type == "Succeeded"), None)
    since = old.last_transition_time if old is not None and old.status == value else stamp
    return Condition(
        type="Succeeded",
        status=value,
        reason=reason or default_reason,
        message=message,
        last_transition_time=since,
        observed_generation=ref.generation,
    )


def _duration(step: StepStatus) -> str:
    start, end = parse_time(step.started_at), parse_time(step.finished_at)
    if start is None or end is None:
        return ""
    return f" in {max(timedelta(0), end - start).total_seconds():.0f}s"


def diff_events(old: PipelineStatus, new: PipelineStatus) -> list[EventToEmit]:
    """One Event per step: its finish, naming the steps it started; the last one, the result.

    The first steps' start has no Event of its own (the status write that marks the pipeline
    Running already says it), and the pipeline's end is told in its last step's Event: a
    successful pipeline of N steps costs N Events. A step started with no finish beside it
    (a retry) gets a ``StepStarted`` Event. Events derive from the status change, so a
    replayed plan whose status was already written emits nothing again.
    """
    before = {s.id: s for s in old.steps}
    started = [
        s.name
        for s in new.steps
        if s.phase == StepPhase.RUNNING
        and (s.id not in before or before[s.id].pod != s.pod)
        and s.pod is not None
    ]
    events: list[EventToEmit] = []
    for step in new.steps:
        was = before.get(step.id)
        if not step.phase.terminal or step.phase == StepPhase.SKIPPED or step.pod is None:
            continue
        if was is not None and was.phase == step.phase:
            continue
        if step.phase == StepPhase.SUCCEEDED:
            events.append(
                EventToEmit(
                    "Normal", "StepSucceeded", f"step {step.name!r} succeeded{_duration(step)}"
                )
            )
        else:
            detail = step.message or step.reason or ""
            code = f" (exit code {step.exit_code})" if step.exit_code is not None else ""
            reason = "StepCancelled" if step.phase == StepPhase.CANCELLED else "StepFailed"
            events.append(
                EventToEmit("Warning", reason, f"step {step.name!r} failed{code}: {detail}"[:1024])
            )
    if started:
        note = "started " + ", ".join(repr(n) for n in started)
        if events:
            last = events[-1]
            events[-1] = replace(last, message=f"{last.message}; {note}"[:1024])
        elif old.steps:
            events.append(EventToEmit("Normal", "StepStarted", note[:1024]))
    if new.phase != old.phase and new.phase in TERMINAL_PIPELINE:
        kind = "Normal" if new.phase == PipelinePhase.SUCCEEDED else "Warning"
        result = new.message or f"pipeline {new.phase.value.lower()}"
        if events:
            last = events.pop()
            result = f"{last.message}; {result}"
        events.append(EventToEmit(kind, f"Pipeline{new.phase.value}", result[:1024]))
    return events


def plan(
    ref: PipelineRef,
    compiled: CompiledPipeline,
    status: PipelineStatus,
    pods: Sequence[PodView],
    now: datetime,
    settings: Settings | None = None,
    rejected: Mapping[str, str] | None = None,
) -> Plan:
    """Decide what happens next for one pipeline.

    ``rejected`` maps pod names the API server refused to create (admission, quota) to its
    message: those attempts fail with reason PodRejected instead of being tried forever.
    """
    return _Planner(ref, compiled, status, pods, now, settings or Settings(), rejected or {}).run()


def invalid_plan(
    ref: PipelineRef, status: PipelineStatus, error: InvalidSpecError, now: datetime
) -> Plan:
    """A spec that cannot run: Failed, with a message naming every bad field, and no pods."""
    stamp = format_time(now)
    message = str(error)[:4096]
    if status.phase in TERMINAL_PIPELINE:
        return Plan(status=status)
    new = PipelineStatus(
        phase=PipelinePhase.FAILED,
        message=message,
        finished_at=stamp,
        observed_generation=ref.generation,
        conditions=[
            succeeded_condition(status, PipelinePhase.FAILED, message, stamp, ref, "InvalidSpec")
        ],
    )
    return Plan(status=new, events=(EventToEmit("Warning", "InvalidSpec", message[:1024]),))
