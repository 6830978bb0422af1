"""Each run step's state, derived from its last recorded status and its pods (pure).

The status is the memory of finished steps; the pods fill in whatever it has not recorded
yet (the operator may have died between creating a pod and writing the status). A step's
attempts, retries and the pods that must be stopped or deleted follow from these two alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from shipway.compiler.tree import RunNode
from shipway.engine.naming import GENERATOR_CONTAINER, pod_name
from shipway.engine.observe import PodView, parse_time
from shipway.engine.outcome import Outcome, _seconds
from shipway.engine.plan.inputs import PlanInput
from shipway.engine.plan.task import Task, Tracked, Tracker
from shipway.engine.reasons import StepReason
from shipway.engine.termination import parse_push_result
from shipway.models import PipelineStatus, StepAttempt, StepPhase, StepStatus


@dataclass
class StepState(Tracked):
    """A run step's state while planning: its current attempt's task, and the attempts before."""

    run: RunNode
    task: Task = field(default_factory=Task)
    attempt: int = 0
    exit_code: int | None = None
    attempts: list[StepAttempt] = field(default_factory=list)
    image: str | None = None
    """Push steps: the reference pushed."""
    digest: str | None = None
    """Push steps: the digest the registry holds under it."""
    blocked: bool = False
    """A retry waits for the previous attempt's pod to be gone."""
    start: bool = False
    rec: StepStatus | None = None
    """What the status recorded for it: reused as is if nothing changed (see
    :func:`~shipway.engine.plan.report.step_status`)."""

    @property
    def started(self) -> bool:
        return self.phase != StepPhase.PENDING or self.pod is not None

    def fail(self, reason: str, message: str | None, at: str) -> None:
        """Failed without a pod (its build failed, its push tag is invalid)."""
        self.task = self.task.ended(StepPhase.FAILED, reason, message, at)


def _push_report(step: StepState, pod: PodView) -> None:
    """A push pod's report: the digest pushed, or why the push failed, in the step's words."""
    main = pod.main
    task = step.task
    if step.phase == StepPhase.SUCCEEDED:
        report = parse_push_result(main.message if main else None)
        if report.problem is None:
            step.image, step.digest = report.image, report.digest
            return
        failed = task.ended(
            StepPhase.FAILED, StepReason.PUSH_FAILED, report.problem, task.finished_at
        )
        step.task = failed
        return
    if step.phase != StepPhase.FAILED:
        return
    generator = next((c for c in pod.sidecars if c.name == GENERATOR_CONTAINER), None)
    if (main is None or main.state != "terminated") and generator is not None:
        if generator.state == "terminated" and generator.exit_code:
            detail = generator.message or f"it exited with a {generator.exit_code} code"
            why = f"the dockercfg service failed: {detail.strip()}"[:1024]
            step.task = task.noted(StepReason.PUSH_FAILED, why)
    elif main is not None and main.state == "terminated" and main.exit_code:
        step.task = task.noted(StepReason.PUSH_FAILED, task.message)


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


class Steps(Tracker):
    """Every run step's state, and the pods found that must be stopped or deleted."""

    def __init__(self, inputs: PlanInput) -> None:
        super().__init__(inputs)
        self.ref = inputs.ref
        self.retry_grace = inputs.settings.retry_grace
        self.pods_by_step = inputs.pods_by_step
        known = recorded(inputs.status)
        self.by_id = {run.id: self._derive(run, known.get(run.id)) for run in inputs.compiled.runs}

    def values(self) -> list[StepState]:
        return list(self.by_id.values())

    def name(self, run: RunNode, attempt: int) -> str:
        return pod_name(self.ref.name, self.ref.uid, run.id, run.name, attempt=attempt)

    def _derive(self, run: RunNode, rec: StepStatus | None) -> StepState:
        pods = self.pods_by_step.get(run.id, {})
        step = StepState(run, Task.recorded(rec), rec=rec)
        if rec is not None:
            step.attempt, step.exit_code = rec.attempt, rec.exit_code
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
                done = self.outcome(old)
                step.attempts.append(_attempt_record(attempt, old.name, done, old.created_at))
        step.attempts.sort(key=lambda a: a.attempt)
        vanished = "the step's pod disappeared before the step finished"
        while True:
            name = self.name(run, step.attempt)
            pod = pods.get(step.attempt)
            step.task, result = self.observe(step.task, name, pod, vanished)
            if result is None:
                if step.phase == StepPhase.RUNNING and step.attempt > 0:
                    self._retry(step, pods.get(step.attempt - 1))
                else:
                    step.task = step.task.pending()
                return step
            if result.phase == StepPhase.RUNNING:
                return step
            if result.phase == StepPhase.FAILED and step.attempt < run.retries:
                created = step.created_at or (pod.created_at if pod else None)
                step.attempts.append(_attempt_record(step.attempt, name, result, created))
                step.attempt += 1
                step.exit_code = None
                step.task = step.task.retried()
                if step.attempt in pods:
                    continue
                self._retry(step, pod)
                return step
            step.exit_code = result.exit_code
            step.task = step.task.started(result.started_at or step.started_at).ended(
                result.phase, result.reason, result.message, result.finished_at or self.stamp
            )
            if run.push is not None and pod is not None:
                _push_report(step, pod)
            return step

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
            step.task = step.task.noted(StepReason.RETRYING, which)
            return
        deleting = previous.deletion_requested_at
        last = step.attempts[-1].finished_at if step.attempts else None
        now = self.inputs.now
        since = deleting or parse_time(last) or now
        left = self.retry_grace - (now - since).total_seconds()
        how = "is being deleted" if deleting is not None else "still runs"
        if left <= 0:
            why = (
                f"{which} could not start: pod {previous.name!r} of the previous attempt "
                f"{how} after {_seconds(self.retry_grace)} (a finalizer or a lost node holds it)"
            )[:1024]
            step.fail(StepReason.RETRY_BLOCKED, why, self.stamp)
            return
        why = (
            f"{which} waits for pod {previous.name!r} of the previous attempt to go (it {how}); "
            f"gives up after {_seconds(self.retry_grace)}"
        )[:1024]
        step.task = step.task.noted(StepReason.WAITING_FOR_RETRY, why)
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

    def stop_everything(self, end: tuple[StepPhase, str, str]) -> None:
        """Cancel or time out: running steps end in ``end``'s phase, the others are skipped."""
        for step in self.by_id.values():
            if not step.phase.terminal:
                self.stop_task(step, end)
