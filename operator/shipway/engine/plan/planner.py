"""The pure decision: from a pipeline's spec, its last status and its pods to what happens next.

Nothing here talks to Kubernetes. The operator calls :func:`plan` on every relevant event and
carries out the result; calling it twice with the same inputs gives the same answer, which is
what makes the operator safe to kill at any instant:

* a step's pod has a deterministic name per attempt, so a repeated create is a no-op;
* the status is the memory of finished steps; pods fill in whatever the status has not
  recorded yet (the operator may have died between creating a pod and writing the status);
* stops are re-issued for as long as a pod runs for a step that is already over.

The work is split: the trackers (:mod:`~shipway.engine.plan.steps`,
:mod:`~shipway.engine.plan.prepare`, :mod:`~shipway.engine.plan.builds`) derive each pod task's
state through the one lifecycle of :mod:`~shipway.engine.plan.task`,
:mod:`~shipway.engine.plan.walk` walks the tree to find what may start, and
:mod:`~shipway.engine.plan.report` writes the status and Events. This module puts them together.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from shipway.engine.intents import (
    BuildToCreate,
    PodToCreate,
    PushTarget,
    Refusal,
    SourceToCreate,
    step_to_create,
)
from shipway.engine.observe import PodView, parse_time
from shipway.engine.plan import approval
from shipway.engine.plan.builds import Builds, Gate, build_secret_wanted
from shipway.engine.plan.cap import NamespaceCap
from shipway.engine.plan.inputs import PlanInput
from shipway.engine.plan.prepare import Preparation
from shipway.engine.plan.pushes import push_target
from shipway.engine.plan.report import EventToEmit, diff_events, pinned_node, pipeline_status
from shipway.engine.plan.steps import Steps, StepState, own, recorded
from shipway.engine.plan.task import halt
from shipway.engine.plan.walk import Result, Walk
from shipway.engine.reasons import PipelineReason, StepReason
from shipway.engine.settings import Settings
from shipway.models import PipelinePhase, PipelineStatus, StepPhase

__all__ = [
    "BuildToCreate",
    "EventToEmit",
    "Plan",
    "PlanInput",
    "PodToCreate",
    "Refusal",
    "Settings",
    "finished_plan",
    "plan",
]


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
    namespace_held: bool = False
    """Steps wait for a slot of the namespace cap (:mod:`~shipway.engine.slots`)."""


HELD_RECHECK_SECONDS = 30.0
"""A pipeline held by the namespace cap is woken when a slot frees; this is the safety net."""
QUOTA_RETRY_SECONDS = 10.0
"""How often a pod or claim refused by a ResourceQuota is tried again."""


def finished_plan(status: PipelineStatus, pods: Sequence[PodView], uid: str) -> Plan:
    """A pipeline that has ended: only a stray pod (one its status does not record) is ended.

    Needs neither the spec nor the clock, so a finished pipeline is never compiled again.
    Only the pipeline's own pods (controlled by ``uid``) are ever touched.
    """
    known = recorded(status)
    stop: list[str] = []
    delete: list[str] = []
    for pod in own(pods, uid):
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
    def __init__(self, inputs: PlanInput) -> None:
        self.inputs = inputs
        self.ref = inputs.ref
        self.namespace_held = False
        self.compiled = compiled = inputs.compiled
        self.status = status = inputs.status
        self.now = inputs.now
        self.settings = inputs.settings
        self.stamp = inputs.stamp
        self.steps = Steps(inputs)
        self.quota: str | None = None
        self.gate_end: approval.GateEnd | None = None
        self.deferred = 0
        """Steps that may start but wait: for quota, or for the pipeline's pod limit."""
        self.prep = Preparation(inputs)
        branch = compiled.spec.ci.branch or (status.source.branch if status.source else None)
        self.builds = Builds(inputs, branch=branch)
        self.trackers: tuple[Steps | Preparation | Builds, ...] = (
            self.steps,
            self.prep,
            self.builds,
        )
        """Every kind of pod task: each is stopped, and its pods collected, the same way."""
        self.gates = approval.plan_gates(
            self.ref,
            compiled,
            status,
            inputs.now,
            default_timeout=inputs.settings.approval_timeout,
        )

    def _timeout(self) -> tuple[float, str] | None:
        if self.compiled.timeout is not None:
            return self.compiled.timeout, f"its timeout ({self.compiled.spec.timeout})"
        default = self.settings.default_timeout
        if default is None:
            return None
        return default, f"the operator's default timeout ({_duration(default)})"

    def _deadline(self) -> tuple[float, str] | None:
        timeout = self._timeout()
        if timeout is None:
            return None
        started = parse_time(self.status.started_at) or self.now
        waited = self.gates.waited()  # time at manual gates does not count
        return (started - self.now).total_seconds() + timeout[0] + waited, timeout[1]

    def _stopping(self, deadline: float | None, why: str) -> tuple[PipelinePhase, str] | None:
        """Cancelled, ended at a gate, or past its deadline: every task stops, in one loop."""
        gate_end = self.gate_end
        if self.compiled.spec.cancel:
            why = "the pipeline was cancelled"
            end = (StepPhase.CANCELLED, StepReason.CANCELLED, why)
            stopping = (PipelinePhase.CANCELLED, why)
        elif gate_end is not None:
            end = (StepPhase.CANCELLED, gate_end.step_reason, gate_end.message)
            stopping = (gate_end.phase, gate_end.message)
        elif deadline is not None and deadline <= 0:
            why = f"the pipeline ran longer than {why}"
            end = (StepPhase.FAILED, StepReason.PIPELINE_TIMEOUT, why)
            stopping = (PipelinePhase.FAILED, why)
        else:
            return None
        for tracker in self.trackers:
            tracker.stop_everything(end)
        return stopping

    def run(self) -> Plan:
        previous = self.status
        if previous.phase.terminal:
            return finished_plan(previous, self.inputs.pods, self.ref.uid)
        steps, prep, builds = self.steps, self.prep, self.builds
        halted = steps.halted()
        deadline = self._deadline()
        remaining = deadline[0] if deadline is not None else None
        self.gate_end = gate_end = None if self.compiled.spec.cancel else self.gates.ended()
        stopping = self._stopping(remaining, deadline[1] if deadline is not None else "")
        unprepared = prep.failed()
        # Steps wait for the preparation (the checkout), then each for the images it runs;
        # nothing starts after the checkout failed.
        walk = Walk(
            steps.by_id,
            halted,
            stopping is not None or not prep.ready(),
            gate=self._gate,
            pushes=self.compiled.spec.push,
            approval=self.gates.passes,
        )
        root = walk.run(self.compiled.root.children)
        if stopping is None and remaining is not None:
            steps.recheck.append(remaining)
        creates = self._creates(remaining)
        task = prep.plan_start(remaining) if stopping is None else None
        if task is not None:
            assert task.pod is not None
            creates = (SourceToCreate(task.id, 0, task.pod, task.deadline), *creates)
        # Builds start once the checkout is in place, all together (they run in parallel).
        building = stopping is None and prep.ready()
        found = prep.source_status()  # the checkout's commit and branch: args render from it
        build_creates = builds.plan_starts(remaining, not halted, found) if building else ()
        self.quota = steps.quota or prep.quota or builds.quota
        if self.quota is not None:
            steps.recheck.append(QUOTA_RETRY_SECONDS)
        if self.namespace_held:
            steps.recheck.append(HELD_RECHECK_SECONDS)
        message: str | None
        active = creates or self.deferred or steps.any_running()
        if stopping is not None:
            phase, message = stopping
        elif unprepared is not None:
            phase = PipelinePhase.FAILED
            detail = unprepared.message or unprepared.reason or "it failed"
            message = f"{unprepared.title} failed: {detail}"[:1024]
        elif root in (Result.ACTIVE, Result.WAITING) and (active or prep.active() or builds.busy()):
            phase, message = PipelinePhase.RUNNING, self.quota
        elif root == Result.WAITING and (gate := self.gates.waiting()) is not None:
            phase = PipelinePhase.AWAITING_APPROVAL
            message = approval.awaiting_message(gate, self.ref.name)
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
        reason = PipelineReason.EXCEEDED_QUOTA if self.quota and not phase.terminal else None
        reason = reason or (gate_end.condition if gate_end is not None else None)
        status = pipeline_status(
            self.ref,
            previous,
            steps.values(),
            phase=phase,
            message=message,
            stamp=self.stamp,
            node=node,
            reason=reason,
            source=prep.source_status(),
            builds=builds.statuses(),
        ).model_copy(update={"approvals": self.gates.statuses()})
        recheck = [*(t for tracker in self.trackers for t in tracker.recheck), *self.gates.recheck]
        return Plan(
            status=status,
            create=creates,
            stop=tuple(dict.fromkeys(name for t in self.trackers for name in t.stop)),
            delete=tuple(dict.fromkeys(name for t in self.trackers for name in t.delete)),
            events=(*approval.gate_events(previous, status), *diff_events(previous, status)),
            requeue_after=(min(recheck) if recheck and not phase.terminal else None),
            ensure_claim=bool(creates or build_creates) and self.compiled.uses_workspace,
            builds=build_creates,
            build_secret=build_secret_wanted(previous, status, bool(build_creates)),
            namespace_held=self.namespace_held and not phase.terminal,
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
        step.fail(reason, why, self.stamp)
        return Result.FAILED

    def _push_target(self, step: StepState) -> tuple[PushTarget | None, str | None]:
        image = dict(self.builds.images(step.run)).get(step.run.service)
        return push_target(self.ref, self.compiled, step.run, image, source=self.status.source)

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
                step.task = step.task.skipped(reason, None)

    def _creates(self, remaining: float | None) -> tuple[PodToCreate, ...]:
        """The pods to create now: every step the walk started, within the pipeline's pod
        limit, except those a ResourceQuota refused a moment ago (tried again later)."""
        creates: list[PodToCreate] = []
        limit = self.settings.max_running_pods
        running = sum(
            1 for s in self.steps.values() if s.phase == StepPhase.RUNNING and not s.start
        )
        slots = NamespaceCap(
            self.settings.max_namespace_pods, self.inputs.namespace_busy, self.steps
        )
        for step in self.steps.values():
            if not step.start or step.blocked:
                continue
            name = self.steps.name(step.run, step.attempt)
            waiting = self.steps.quota_wait(name)
            if waiting is not None:
                step.task = step.task.noted(StepReason.EXCEEDED_QUOTA, waiting)
                self.deferred += 1
                continue
            if limit is not None and running >= limit:
                why = f"waiting: {limit} pods of this pipeline run at once"
                step.task = step.task.noted(StepReason.THROTTLED, why)
                self.deferred += 1
                continue
            if not slots.allows():
                step.task = step.task.noted(StepReason.NAMESPACE_THROTTLED, slots.why(self.ref))
                self.deferred += 1
                self.namespace_held = True
                continue
            deadlines = [t for t in (step.run.timeout, remaining) if t is not None]
            deadline = max(1, math.ceil(min(deadlines))) if deadlines else None
            images = self.builds.images(step.run)
            target = self._push_target(step)[0] if step.run.push is not None else None
            if step.run.push is not None and target is None:
                continue  # its image is gone from the status: the gate fails it next time
            creates.append(
                step_to_create(
                    step.run.id,
                    step.attempt,
                    name,
                    deadline,
                    images=images,
                    push=target,
                    healthchecks=self.builds.healthchecks(step.run),
                )
            )
            running += 1
            slots.took()
            if target is not None:
                step.image = target.target  # what it pushes, from the start (digest at the end)
            # a retry keeps saying which attempt it is
            step.task = step.task.created(name, self.stamp, keep_note=bool(step.attempt))
        return tuple(creates)


def _duration(seconds: float) -> str:
    if seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


def plan(inputs: PlanInput) -> Plan:
    """Decide what happens next for one pipeline (see :class:`PlanInput` for what from).

    A pod name in ``inputs.rejected`` fails its attempt instead of being tried forever; one in
    ``inputs.waiting`` waits, saying so, and the pipeline is planned again in
    :data:`QUOTA_RETRY_SECONDS`.
    """
    return _Planner(inputs).run()
