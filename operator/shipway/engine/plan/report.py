"""What a plan tells: the new status, its ``Succeeded`` condition, and the Events (pure).

Events derive from the change between the last written status and the new one, so a
replayed plan whose status was already written emits nothing again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from shipway.engine.objects import PipelineRef
from shipway.engine.observe import PodView, parse_time
from shipway.engine.plan.builds.result import summary
from shipway.engine.plan.steps import StepState
from shipway.engine.reasons import EventReason, PipelineReason, StepReason
from shipway.models import (
    BuildStatus,
    Condition,
    PipelinePhase,
    PipelineStatus,
    SourceStatus,
    StepPhase,
    StepStatus,
)

SOURCE_TITLES = {"git": "checkout", "upload": "upload"}


@dataclass(frozen=True)
class EventToEmit:
    type: str
    """Normal or Warning."""
    reason: str
    message: str


def step_status(step: StepState) -> StepStatus:
    """The step's status entry: the recorded one itself when nothing in it changed.

    Most entries of a big pipeline are unchanged between two plans (over, or not started);
    reusing them skips a validated model per step, and lets the status write reuse their
    JSON (:func:`~shipway.controller.snapshot.dump_status`) and see at once what changed.
    The UID is not compared: it is filled in afterwards, from the recorded entry.
    """
    fields = _fields(step)
    rec = step.rec
    if rec is not None and all(getattr(rec, k) == v for k, v in fields.items()):
        return rec
    return StepStatus(**fields)


def _fields(step: StepState) -> dict[str, Any]:
    """Every field of the entry but its UID: what is compared, and what a new one holds."""
    run = step.run
    return {
        "id": run.id,
        "name": run.name,
        "group": run.group,
        "service": run.service,
        "on_fail_of": run.on_fail_of,
        "attempt": step.attempt,
        "exit_code": step.exit_code,
        "image": step.image,
        "digest": step.digest,
        "attempts": step.attempts,
        **step.task.record(),
    }


def pinned_node(
    status: PipelineStatus, pinned: bool, pods_by_step: Mapping[str, Mapping[int, PodView]]
) -> str | None:
    """The node a ReadWriteOnce workspace ties the pipeline to: its first pod's node."""
    if status.node_name or not pinned:
        return status.node_name
    nodes = [
        (pod.created_at or "", pod.node_name)
        for pods in pods_by_step.values()
        for pod in pods.values()
        if pod.node_name
    ]
    return min(nodes)[1] if nodes else None


def _running(step: StepStatus) -> str:
    """A running step in the STEP column: its name, and what it waits for if it waits for a
    linked service's health check (``test (waiting for service db to become healthy)``)."""
    if step.reason == StepReason.WAITING_FOR_SERVICE and step.message:
        return f"{step.name} ({step.message})"
    return step.name


def pipeline_status(
    ref: PipelineRef,
    previous: PipelineStatus,
    steps: Iterable[StepState],
    *,
    phase: PipelinePhase,
    message: str | None,
    stamp: str,
    node: str | None,
    reason: str | None = None,
    source: SourceStatus | None = None,
    builds: Sequence[BuildStatus] = (),
) -> PipelineStatus:
    """The status to write: the phase, progress, running steps and every step's state.

    Builds count in the progress like steps, and a running build shows as ``build demo``.
    ``reason`` replaces the ``Succeeded`` condition's usual one (e.g. ExceededResourceQuota
    while a quota holds the pipeline up).
    """
    entries = [step_status(s) for s in steps]
    regular = [s for s in entries if s.on_fail_of is None]
    done = sum(1 for s in regular if s.phase.terminal) + sum(1 for b in builds if b.phase.terminal)
    running = [f"build {b.service}" for b in builds if b.phase == StepPhase.RUNNING]
    running += [_running(s) for s in entries if s.phase == StepPhase.RUNNING]
    if source is not None and source.phase == StepPhase.RUNNING:
        running.insert(0, SOURCE_TITLES.get(source.kind, source.kind))
    started_at = previous.started_at
    if started_at is None and (
        any(s.pod for s in entries) or any(b.pod for b in builds) or (source and source.pod)
    ):
        started_at = stamp
    finished = phase.terminal
    return PipelineStatus(
        phase=phase if started_at or finished else PipelinePhase.PENDING,
        progress=f"{done}/{len(regular) + len(builds)}",
        current_step=", ".join(running)[:253] or None,
        message=message,
        started_at=started_at,
        finished_at=(previous.finished_at or stamp) if finished else None,
        node_name=node,
        observed_generation=ref.generation,
        conditions=[succeeded_condition(previous, phase, message, stamp, ref=ref, reason=reason)],
        steps=entries,
        source=source,
        builds=list(builds),
    )


_PIPELINE_REASONS = {
    PipelinePhase.PENDING: ("Unknown", PipelineReason.PENDING),
    PipelinePhase.RUNNING: ("Unknown", PipelineReason.RUNNING),
    PipelinePhase.SUCCEEDED: ("True", PipelineReason.SUCCEEDED),
    PipelinePhase.FAILED: ("False", PipelineReason.FAILED),
    PipelinePhase.CANCELLED: ("False", PipelineReason.CANCELLED),
    PipelinePhase.AWAITING_APPROVAL: ("Unknown", PipelineReason.AWAITING_APPROVAL),
    PipelinePhase.REJECTED: ("False", PipelineReason.REJECTED),
}


def succeeded_condition(
    previous: PipelineStatus,
    phase: PipelinePhase,
    message: str | None,
    stamp: str,
    *,
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


def _duration(step: StepStatus | SourceStatus | BuildStatus) -> str:
    start, end = parse_time(step.started_at), parse_time(step.finished_at)
    if start is None or end is None:
        return ""
    return f" in {max(timedelta(0), end - start).total_seconds():.0f}s"


def _source_events(old: SourceStatus | None, new: SourceStatus | None) -> list[EventToEmit]:
    """The checkout's (or upload's) end: one Event, like a step's."""
    if new is None or (old is not None and old.phase == new.phase):
        return []
    title = SOURCE_TITLES.get(new.kind, new.kind)
    if new.phase == StepPhase.SUCCEEDED:
        if new.kind == "git":
            what = f"checked out {(new.commit or '')[:12]}"
            what += f" ({new.branch or new.tag})" if new.branch or new.tag else ""
        else:
            what = f"received {new.files or 0} files ({new.bytes or 0} bytes)"
        return [EventToEmit("Normal", EventReason.SOURCE_READY, f"{what}{_duration(new)}")]
    if new.phase == StepPhase.FAILED and new.pod is not None:
        detail = new.message or new.reason or ""
        message = f"{title} failed: {detail}"[:1024]
        return [EventToEmit("Warning", EventReason.SOURCE_FAILED, message)]
    return []


_PIPELINE_EVENTS = {
    PipelinePhase.SUCCEEDED: EventReason.PIPELINE_SUCCEEDED,
    PipelinePhase.FAILED: EventReason.PIPELINE_FAILED,
    PipelinePhase.CANCELLED: EventReason.PIPELINE_CANCELLED,
    PipelinePhase.REJECTED: EventReason.PIPELINE_REJECTED,
}


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
    events = _source_events(old.source, new.source) + build_events(old, new)
    for step in new.steps:
        was = before.get(step.id)
        if not step.phase.terminal or step.phase == StepPhase.SKIPPED or step.pod is None:
            continue
        if was is not None and was.phase == step.phase:
            continue
        if step.phase == StepPhase.SUCCEEDED:
            pushed = f": pushed {step.image}@{step.digest}" if step.digest else ""
            events.append(
                EventToEmit(
                    "Normal",
                    EventReason.STEP_SUCCEEDED,
                    f"step {step.name!r} succeeded{_duration(step)}{pushed}"[:1024],
                )
            )
        else:
            detail = step.message or step.reason or ""
            code = f" (exit code {step.exit_code})" if step.exit_code is not None else ""
            reason = (
                EventReason.STEP_CANCELLED
                if step.phase == StepPhase.CANCELLED
                else EventReason.STEP_FAILED
            )
            events.append(
                EventToEmit("Warning", reason, f"step {step.name!r} failed{code}: {detail}"[:1024])
            )
    if started:
        note = "started " + ", ".join(repr(n) for n in started)
        if events:
            last = events[-1]
            events[-1] = replace(last, message=f"{last.message}; {note}"[:1024])
        elif old.steps:
            events.append(EventToEmit("Normal", EventReason.STEP_STARTED, note[:1024]))
    if new.phase != old.phase and new.phase.terminal:
        kind = "Normal" if new.phase == PipelinePhase.SUCCEEDED else "Warning"
        result = new.message or f"pipeline {new.phase.value.lower()}"
        if events:
            last = events.pop()
            result = f"{last.message}; {result}"
        events.append(EventToEmit(kind, _PIPELINE_EVENTS[new.phase], result[:1024]))
    return events


def build_events(old: PipelineStatus, new: PipelineStatus) -> list[EventToEmit]:
    """One Event per build, at its end: the digest and cache hits, or BuildKit's last line."""
    before = {b.service: b.phase for b in old.builds}
    events: list[EventToEmit] = []
    for build in new.builds:
        if not build.phase.terminal or before.get(build.service) == build.phase:
            continue
        if build.phase == StepPhase.SUCCEEDED:
            cached = (
                f", {build.cached_steps} of {build.total_steps} steps cached"
                if build.cached_steps is not None and build.total_steps
                else ""
            )
            events.append(
                EventToEmit(
                    "Normal",
                    EventReason.BUILD_SUCCEEDED,
                    f"image of {build.service!r} built{_duration(build)}{cached}: "
                    f"{build.image}@{build.digest}"[:1024],
                )
            )
        elif build.phase == StepPhase.FAILED or (
            build.phase == StepPhase.CANCELLED and build.pod is not None
        ):
            events.append(
                EventToEmit(
                    "Warning",
                    EventReason.BUILD_FAILED,
                    f"build of {build.service!r} {build.phase.value.lower()}: "
                    f"{summary(build.message) or build.reason or ''}"[:1024],
                )
            )
    return events
