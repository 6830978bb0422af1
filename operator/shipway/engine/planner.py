"""The pure decision: from a pipeline's spec, its last status and its pods to what happens next.

Nothing here talks to Kubernetes. The operator calls :func:`plan` on every relevant event and
carries out the result; calling it twice with the same inputs gives the same answer, which is
what makes the operator safe to kill at any instant:

* a step's pod has a deterministic name per attempt, so a repeated create is a no-op;
* the status is the memory of finished steps; pods fill in whatever the status has not
  recorded yet (the operator may have died between creating a pod and writing the status);
* stops are re-issued for as long as a pod runs for a step that is already over.

The work is split three ways: :mod:`~shipway.engine.steps` derives each step's state,
:mod:`~shipway.engine.walk` walks the tree to find what may start, and
:mod:`~shipway.engine.report` writes the status and Events. This module puts them together.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from shipway.engine.buildpods import BuildConfig, BuildToCreate
from shipway.engine.builds import Builds, Gate
from shipway.engine.objects import PipelineRef
from shipway.engine.observe import START_GRACE_SECONDS, PodView, format_time, parse_time
from shipway.engine.prepare import SOURCE_TASK, Preparation
from shipway.engine.pushes import push_target
from shipway.engine.pushpods import PushTarget
from shipway.engine.reasons import EventReason, PipelineReason, StepReason
from shipway.engine.report import (
    EventToEmit,
    diff_events,
    pinned_node,
    pipeline_status,
    succeeded_condition,
)
from shipway.engine.steps import Steps, StepState, halt, recorded
from shipway.engine.walk import Result, Walk
from shipway.models import PipelinePhase, PipelineStatus, StepPhase
from shipway.spec.compiler import CompiledPipeline
from shipway.spec.errors import InvalidSpecError
from shipway.spec.source import GitCheckout

__all__ = [
    "BuildToCreate",
    "EventToEmit",
    "Plan",
    "PodToCreate",
    "Settings",
    "finished_plan",
    "invalid_plan",
    "plan",
]


@dataclass(frozen=True)
class PodToCreate:
    step_id: str
    attempt: int
    name: str
    active_deadline: int | None = None
    images: tuple[tuple[str, str], ...] = ()
    """(service, image by digest) of the built services the pod runs."""
    push: PushTarget | None = None
    """Set for push steps: what the pod copies where."""


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
    builds: tuple[BuildToCreate, ...] = ()
    """Build pods to create (after the claim, before the step pods)."""
    build_secret: bool | None = None
    """True: make sure the builder's client certificate is in the namespace (builds start);
    False: delete it (the last build ended); None: leave it."""


@dataclass(frozen=True)
class Settings:
    start_grace: float = START_GRACE_SECONDS
    build: BuildConfig = field(default_factory=BuildConfig)


def finished_plan(status: PipelineStatus, pods: Sequence[PodView]) -> Plan:
    """A pipeline that has ended: only a stray pod (one its status does not record) is ended.

    Needs neither the spec nor the clock, so a finished pipeline is never compiled again.
    """
    known = recorded(status)
    stop: list[str] = []
    delete: list[str] = []
    for pod in pods:
        step = known.get(pod.step_id)
        if step is not None and step.pod == pod.name:
            continue
        if status.source is not None and status.source.pod == pod.name:
            continue
        if any(build.pod == pod.name for build in status.builds):
            continue
        action = halt(pod)
        if action == "stop":
            stop.append(pod.name)
        elif action == "delete":
            delete.append(pod.name)
    return Plan(status=status, stop=tuple(dict.fromkeys(stop)), delete=tuple(dict.fromkeys(delete)))


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
        self.compiled = compiled
        self.status = status
        self.pods = pods
        self.now = now
        self.stamp = format_time(now)
        self.steps = Steps(ref, compiled.runs, status, pods, now, settings.start_grace, rejected)
        self.prep = Preparation(
            ref,
            compiled.source,
            status,
            self.steps.pods_by_step.get(SOURCE_TASK, {}),
            now,
            settings.start_grace,
            rejected,
        )
        source = compiled.source
        self.builds = Builds(
            ref,
            compiled,
            status,
            self.steps.pods_by_step,
            now,
            settings.start_grace,
            rejected,
            settings.build,
            git_url=source.url if isinstance(source, GitCheckout) else None,
            branch=compiled.spec.ci.branch or (status.source.branch if status.source else None),
        )

    def _deadline(self) -> float | None:
        if self.compiled.timeout is None:
            return None
        started = parse_time(self.status.started_at) or self.now
        return (started - self.now).total_seconds() + self.compiled.timeout

    def run(self) -> Plan:
        previous = self.status
        if previous.phase.terminal:
            return finished_plan(previous, self.pods)
        steps, prep, builds = self.steps, self.prep, self.builds
        halted = steps.halted()
        remaining = self._deadline()
        stopping: tuple[PipelinePhase, str] | None = None
        if self.compiled.spec.cancel:
            why = "the pipeline was cancelled"
            steps.stop_everything(StepPhase.CANCELLED, StepReason.CANCELLED, why)
            prep.stop_everything(StepPhase.CANCELLED, StepReason.CANCELLED, why)
            builds.stop_everything(StepPhase.CANCELLED, StepReason.CANCELLED, why)
            stopping = (PipelinePhase.CANCELLED, why)
        elif remaining is not None and remaining <= 0:
            why = f"the pipeline ran longer than its timeout ({self.compiled.spec.timeout})"
            steps.stop_everything(StepPhase.FAILED, StepReason.PIPELINE_TIMEOUT, why)
            prep.stop_everything(StepPhase.FAILED, StepReason.PIPELINE_TIMEOUT, why)
            builds.stop_everything(StepPhase.FAILED, StepReason.PIPELINE_TIMEOUT, why)
            stopping = (PipelinePhase.FAILED, why)
        unprepared = prep.failed()
        # Steps wait for the preparation (the checkout), then each for the images it runs;
        # nothing starts after the checkout failed.
        walk = Walk(
            steps.by_id,
            halted,
            stopping is not None or not prep.ready(),
            self._gate,
            self.compiled.spec.push,
        )
        root = walk.run(self.compiled.root.children)
        if stopping is None and remaining is not None:
            steps.recheck.append(remaining)
        creates = self._creates(remaining)
        task = prep.plan_start(remaining) if stopping is None else None
        if task is not None:
            assert task.pod is not None
            creates = (PodToCreate(task.id, 0, task.pod, task.deadline), *creates)
        # Builds start once the checkout is in place, all together (they run in parallel).
        building = stopping is None and prep.ready()
        build_creates = builds.plan_starts(remaining, eager=not halted) if building else ()
        message: str | None
        if stopping is not None:
            phase, message = stopping
        elif unprepared is not None:
            phase = PipelinePhase.FAILED
            detail = unprepared.message or unprepared.reason or "it failed"
            message = f"{unprepared.title} failed: {detail}"[:1024]
        elif root in (Result.ACTIVE, Result.WAITING) and (
            creates or steps.any_running() or prep.active() or builds.busy()
        ):
            phase, message = PipelinePhase.RUNNING, None
        elif root == Result.SUCCEEDED or root == Result.SKIPPED:
            phase, message = PipelinePhase.SUCCEEDED, None
        else:
            failed = [s.run.name for s in steps.values() if s.phase == StepPhase.FAILED]
            phase = PipelinePhase.FAILED
            message = "failed: " + ", ".join(failed[:5]) if failed else "a step failed"
        if phase.terminal:
            builds.end_unneeded()
        # A step failed by its build during the walk halts the rest as any failure does.
        halted = halted or steps.halted()
        self._mark_skipped(walk.skip, halted, phase.terminal, unprepared is not None)
        node = pinned_node(previous, self.compiled.pinned, steps.pods_by_step)
        status = pipeline_status(
            self.ref,
            previous,
            steps.values(),
            phase,
            message,
            self.stamp,
            node,
            prep.source_status(),
            builds.statuses(),
        )
        recheck = steps.recheck + prep.recheck + builds.recheck
        return Plan(
            status=status,
            create=creates,
            stop=tuple(dict.fromkeys(steps.stop + prep.stop + builds.stop)),
            delete=tuple(dict.fromkeys(steps.delete + prep.delete + builds.delete)),
            events=tuple(diff_events(previous, status)),
            requeue_after=(min(recheck) if recheck and not phase.terminal else None),
            ensure_claim=bool(creates or build_creates) and self.compiled.uses_workspace,
            builds=build_creates,
            build_secret=_build_secret(previous, status, bool(build_creates)),
        )

    def _gate(self, step: StepState) -> Result:
        """A step starts once the images it runs are built; a failed build fails it."""
        verdict, why = self.builds.gate(step.run)
        if verdict == Gate.WAIT:
            return Result.WAITING
        reason = StepReason.BUILD_FAILED
        if verdict == Gate.READY:
            if step.run.push is None:
                return Result.ACTIVE
            _, why = self._push_target(step)
            if why is None:
                return Result.ACTIVE
            reason = StepReason.INVALID_IMAGE_TAG
        step.phase, step.reason, step.message = StepPhase.FAILED, reason, why
        step.finished_at = self.stamp
        return Result.FAILED

    def _push_target(self, step: StepState) -> tuple[PushTarget | None, str | None]:
        image = dict(self.builds.images(step.run)).get(step.run.service)
        return push_target(self.ref, self.compiled, step.run, image, self.status.source)

    def _mark_skipped(
        self, skip: Mapping[str, str], halted: bool, finished: bool, unprepared: bool
    ) -> None:
        for step in self.steps.values():
            if step.phase != StepPhase.PENDING or step.start:
                continue
            reason = StepReason.SOURCE_FAILED if unprepared else skip.get(step.run.id)
            if reason is None and halted and step.run.on_fail_of is None:
                reason = StepReason.PREVIOUS_STEP_FAILED
            if reason is None and finished:
                reason = StepReason.NOT_RUN
            if reason is not None:
                step.phase, step.reason, step.message = StepPhase.SKIPPED, reason, None

    def _creates(self, remaining: float | None) -> tuple[PodToCreate, ...]:
        creates: list[PodToCreate] = []
        for step in self.steps.values():
            if not step.start or step.blocked:
                continue
            deadlines = [t for t in (step.run.timeout, remaining) if t is not None]
            deadline = max(1, math.ceil(min(deadlines))) if deadlines else None
            name = self.steps.name(step.run, step.attempt)
            images = self.builds.images(step.run)
            target = self._push_target(step)[0] if step.run.push is not None else None
            if step.run.push is not None and target is None:
                continue  # its image is gone from the status: the gate fails it next time
            creates.append(PodToCreate(step.run.id, step.attempt, name, deadline, images, target))
            if target is not None:
                step.image = target.target  # what it pushes, from the start (digest at the end)
            step.phase, step.pod = StepPhase.RUNNING, name
            step.created_at, step.started_at = self.stamp, None
            if not step.attempt:
                step.reason, step.message = None, None
        return tuple(creates)


def _build_secret(old: PipelineStatus, new: PipelineStatus, starting: bool) -> bool | None:
    """Whether the client certificate must be in the namespace now, or can go."""
    if starting:
        return True
    was_building = any(not b.phase.terminal for b in old.builds)
    if was_building and all(b.phase.terminal for b in new.builds):
        return False
    return None


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
    if status.phase.terminal:
        return Plan(status=status)
    new = PipelineStatus(
        phase=PipelinePhase.FAILED,
        message=message,
        finished_at=stamp,
        observed_generation=ref.generation,
        conditions=[
            succeeded_condition(
                status, PipelinePhase.FAILED, message, stamp, ref, PipelineReason.INVALID_SPEC
            )
        ],
    )
    return Plan(
        status=new, events=(EventToEmit("Warning", EventReason.INVALID_SPEC, message[:1024]),)
    )
