"""Each run step's state, derived from its last recorded status and its pods (pure).

The status is the memory of finished steps; the pods fill in whatever it has not recorded
yet (the operator may have died between creating a pod and writing the status). A step's
attempts, retries and the pods that must be stopped or deleted follow from these two alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from shipway.compiler.tree import RunNode
from shipway.engine.naming import pod_name
from shipway.engine.objects import PipelineRef
from shipway.engine.observe import PodView, format_time, parse_time
from shipway.engine.outcome import Outcome, _seconds, outcome
from shipway.engine.pushpods import GENERATOR_CONTAINER, parse_push_result
from shipway.engine.reasons import StepReason
from shipway.models import PipelineStatus, StepAttempt, StepPhase, StepStatus

RETRY_GRACE_SECONDS = 120.0
"""How long a retry waits for the previous attempt's pod to go (a finalizer or a lost node
can hold it forever) before the step fails with ``RetryBlocked``."""


@dataclass
class StepState:
    """A run step's state while planning."""

    run: RunNode
    phase: StepPhase = StepPhase.PENDING
    attempt: int = 0
    pod: str | None = None
    exit_code: int | None = None
    reason: str | None = None
    message: str | None = None
    created_at: str | None = None
    """When the current attempt's pod was created."""
    started_at: str | None = None
    """When its container started: known once it has ended (a running container's start
    would cost a status write of its own)."""
    finished_at: str | None = None
    attempts: list[StepAttempt] = field(default_factory=list)
    image: str | None = None
    """Push steps: the reference pushed."""
    digest: str | None = None
    """Push steps: the digest the registry holds under it."""
    live_pod: PodView | None = None
    """The current attempt's pod, if it exists and is still active."""
    blocked: bool = False
    """A retry waits for the previous attempt's pod to be gone."""
    start: bool = False
    """Create the current attempt's pod now."""

    @property
    def started(self) -> bool:
        return self.phase != StepPhase.PENDING or self.pod is not None


def halt(pod: PodView | None) -> str | None:
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


def _push_report(step: StepState, pod: PodView) -> None:
    """A push pod's report: the digest pushed, or why the push failed, in the step's words."""
    main = pod.main
    if step.phase == StepPhase.SUCCEEDED:
        report = parse_push_result(main.message if main else None)
        if report.problem is None:
            step.image, step.digest = report.image, report.digest
            return
        step.phase, step.message = StepPhase.FAILED, report.problem
        step.reason = StepReason.PUSH_FAILED
        return
    if step.phase != StepPhase.FAILED:
        return
    generator = next((c for c in pod.sidecars if c.name == GENERATOR_CONTAINER), None)
    if (main is None or main.state != "terminated") and generator is not None:
        if generator.state == "terminated" and generator.exit_code:
            detail = generator.message or f"it exited with a {generator.exit_code} code"
            step.reason = StepReason.PUSH_FAILED
            step.message = f"the dockercfg service failed: {detail.strip()}"[:1024]
    elif main is not None and main.state == "terminated" and main.exit_code:
        step.reason = StepReason.PUSH_FAILED


@dataclass(frozen=True)
class Refusal:
    """Why a step's pod could not be created: the API server refused it, or its name is taken."""

    reason: str
    message: str


def own(pods: Iterable[PodView], uid: str) -> list[PodView]:
    """The pods whose controller is the Pipeline of ``uid``: the only ones it may act on."""
    return [pod for pod in pods if pod.owner_uid == uid]


def recorded(status: PipelineStatus) -> dict[str, StepStatus]:
    return {step.id: step for step in status.steps}


def _attempt_record(
    attempt: int, name: str, result: Outcome, created_at: str | None
) -> StepAttempt:
    return StepAttempt(
        attempt=attempt,
        pod=name,
        phase=result.phase,
        exit_code=result.exit_code,
        reason=result.reason,
        message=result.message,
        created_at=created_at,
        started_at=result.started_at,
        finished_at=result.finished_at,
    )


class Steps:
    """Every run step's state, and the pods found that must be stopped or deleted."""

    def __init__(
        self,
        ref: PipelineRef,
        runs: Sequence[RunNode],
        status: PipelineStatus,
        pods: Sequence[PodView],
        now: datetime,
        start_grace: float,
        unschedulable_grace: float,
        rejected: Mapping[str, Refusal],
        retry_grace: float = RETRY_GRACE_SECONDS,
    ) -> None:
        self.ref = ref
        self.now = now
        self.stamp = format_time(now)
        self.start_grace = start_grace
        self.unschedulable_grace = unschedulable_grace
        self.retry_grace = retry_grace
        self.rejected = rejected
        self.pods_by_step: dict[str, dict[int, PodView]] = {}
        for pod in own(pods, ref.uid):
            self.pods_by_step.setdefault(pod.step_id, {})[pod.attempt] = pod
        self.recheck: list[float] = []
        """Seconds after which to look again (a start problem's grace runs out)."""
        self.stop: list[str] = []
        self.delete: list[str] = []
        known = recorded(status)
        self.by_id = {run.id: self._derive(run, known.get(run.id)) for run in runs}

    def values(self) -> list[StepState]:
        return list(self.by_id.values())

    def name(self, run: RunNode, attempt: int) -> str:
        return pod_name(self.ref.name, self.ref.uid, run.id, run.name, attempt)

    def stop_if_live(self, pod: PodView | None) -> None:
        action = halt(pod)
        if pod is not None and action == "delete":
            self.delete.append(pod.name)
        elif pod is not None and action == "stop":
            self.stop.append(pod.name)

    def _derive(self, run: RunNode, rec: StepStatus | None) -> StepState:
        pods = self.pods_by_step.get(run.id, {})
        step = StepState(run)
        if rec is not None:
            step.phase, step.attempt, step.pod = rec.phase, rec.attempt, rec.pod
            step.exit_code, step.reason, step.message = rec.exit_code, rec.reason, rec.message
            step.created_at = rec.created_at
            step.started_at, step.finished_at = rec.started_at, rec.finished_at
            step.attempts = list(rec.attempts)
            step.image, step.digest = rec.image, rec.digest
        if step.phase.terminal:
            # The status remembers the result; a pod still running for it is stopped.
            self.stop_if_live(pods.get(step.attempt))
            return step
        if pods:
            step.attempt = max(step.attempt, *pods)
        known = {a.attempt for a in step.attempts}
        for attempt in range(step.attempt):
            old = pods.get(attempt)
            if attempt not in known and old is not None:
                result = self._outcome(old)
                step.attempts.append(_attempt_record(attempt, old.name, result, old.created_at))
        step.attempts.sort(key=lambda a: a.attempt)
        while True:
            name = self.name(run, step.attempt)
            pod = pods.get(step.attempt)
            if pod is None and name in self.rejected:
                refusal = self.rejected[name]
                result = Outcome(
                    StepPhase.FAILED,
                    reason=refusal.reason,
                    message=refusal.message[:1024],
                    finished_at=self.stamp,
                )
            elif pod is None:
                if step.pod == name and step.phase == StepPhase.RUNNING:
                    result = Outcome(
                        StepPhase.FAILED,
                        reason=StepReason.POD_DELETED,
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
                step.created_at = step.created_at or pod.created_at
                result = self._outcome(pod)
                if result.recheck_after is not None:
                    self.recheck.append(result.recheck_after)
            if result.phase == StepPhase.RUNNING:
                step.phase, step.live_pod = StepPhase.RUNNING, pod
                step.reason, step.message = result.reason, result.message
                return step
            if result.stop:
                self.stop_if_live(pod)
            if result.phase == StepPhase.FAILED and step.attempt < run.retries:
                created = step.created_at or (pod.created_at if pod else None)
                step.attempts.append(_attempt_record(step.attempt, name, result, created))
                step.attempt += 1
                step.phase, step.pod, step.exit_code = StepPhase.RUNNING, None, None
                step.created_at = step.started_at = None
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
            if run.push is not None and pod is not None:
                _push_report(step, pod)
            return step

    def _outcome(self, pod: PodView) -> Outcome:
        return outcome(pod, self.now, self.start_grace, self.unschedulable_grace)

    def _retry(self, step: StepState, previous: PodView | None) -> None:
        """The next attempt starts only once the previous attempt's pod is gone or over.

        The wait names the pod and is bounded: a pod held by a finalizer or on a lost node
        may never go, and the step then fails (``RetryBlocked``) after ``retry_grace``,
        counted from the pod's deletion (else from the end of its attempt).
        """
        step.blocked = previous is not None and (
            previous.active or previous.deletion_requested_at is not None
        )
        step.start = not step.blocked
        which = f"attempt {step.attempt + 1} of {step.run.retries + 1}"
        if previous is None or not step.blocked:
            step.reason, step.message = StepReason.RETRYING, which
            return
        deleting = previous.deletion_requested_at
        last = step.attempts[-1].finished_at if step.attempts else None
        since = deleting or parse_time(last) or self.now
        left = self.retry_grace - (self.now - since).total_seconds()
        how = "is being deleted" if deleting is not None else "still runs"
        if left <= 0:
            step.phase, step.reason = StepPhase.FAILED, StepReason.RETRY_BLOCKED
            step.message = (
                f"{which} could not start: pod {previous.name!r} of the previous attempt "
                f"{how} after {_seconds(self.retry_grace)} (a finalizer or a lost node holds it)"
            )[:1024]
            step.finished_at = self.stamp
            return
        step.reason = StepReason.WAITING_FOR_RETRY
        step.message = (
            f"{which} waits for pod {previous.name!r} of the previous attempt to go (it {how}); "
            f"gives up after {_seconds(self.retry_grace)}"
        )[:1024]
        self.recheck.append(left)

    def halted(self) -> bool:
        """A regular step failed or was cancelled: no new regular step starts."""
        return any(
            s.phase in (StepPhase.FAILED, StepPhase.CANCELLED)
            for s in self.by_id.values()
            if s.run.on_fail_of is None
        )

    def any_running(self) -> bool:
        return any(s.phase == StepPhase.RUNNING for s in self.by_id.values())

    def stop_everything(self, phase: StepPhase, reason: str, message: str) -> None:
        """Cancel or time out: running steps end in ``phase``, the others are skipped."""
        for step in self.by_id.values():
            if step.phase.terminal:
                continue
            if step.started and step.phase == StepPhase.RUNNING:
                self.stop_if_live(step.live_pod)
                step.phase, step.reason, step.message = phase, reason, message
                step.finished_at = self.stamp
            else:
                step.phase, step.reason, step.message = StepPhase.SKIPPED, reason, message
            step.start = False
