"""Preparation: work done in pods before the steps that need it (pure).

Today one task, the ``source`` (a git checkout or an upload into the workspace), which every
step waits for; image builds join later as more tasks with their own ``needs``. A task has
one pod, no retries, and its state follows from its status record and its pod the way a
step's does: the record remembers a result, the pod tells what the record lacks. A task that
fails fails the pipeline before any step pod exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from shipway.compiler.source import CompiledSource, GitCheckout, Upload
from shipway.engine.checkout import CHECKOUT_TIMEOUT, parse_report, redact, task_title
from shipway.engine.naming import pod_name
from shipway.engine.objects import PipelineRef
from shipway.engine.observe import PodView, format_time
from shipway.engine.outcome import outcome
from shipway.engine.reasons import StepReason
from shipway.engine.steps import Refusal, halt
from shipway.models import PipelineStatus, SourceStatus, StepPhase

SOURCE_TASK = "source"
"""The source task's id: its pod's ``shipway.dev/step`` label (step ids are numbers)."""


@dataclass
class TaskState:
    """One preparation task's state while planning."""

    id: str
    title: str
    kind: str
    phase: StepPhase = StepPhase.PENDING
    pod: str | None = None
    reason: str | None = None
    message: str | None = None
    created_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    facts: dict[str, str] = field(default_factory=dict)
    live_pod: PodView | None = None
    start: bool = False
    deadline: int | None = None


def _int(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None


def source_pod_name(ref: PipelineRef, source: CompiledSource) -> str:
    """Named by the same rule as step pods: ``<pipeline>-<uid hash>-source-checkout`` (or
    ``-upload``), so a name never collides with another instance's pods."""
    return pod_name(ref.name, ref.uid, SOURCE_TASK, task_title(source), 0)


class Preparation:
    """Every preparation task's state, and the pods found that must be stopped or deleted."""

    def __init__(
        self,
        ref: PipelineRef,
        source: CompiledSource | None,
        status: PipelineStatus,
        pods: Mapping[int, PodView],
        now: datetime,
        start_grace: float,
        unschedulable_grace: float,
        rejected: Mapping[str, Refusal],
        waiting: Mapping[str, str],
    ) -> None:
        self.ref = ref
        self.source = source
        self.now = now
        self.stamp = format_time(now)
        self.start_grace = start_grace
        self.unschedulable_grace = unschedulable_grace
        self.rejected = rejected
        self.waiting = waiting
        self.quota: str | None = None
        """Why the task's pod waits: a ResourceQuota refused it (tried again later)."""
        self.stop: list[str] = []
        self.delete: list[str] = []
        self.recheck: list[float] = []
        self.task: TaskState | None = None
        if source is not None:
            self.task = self._derive(source, status.source, pods.get(0))

    def _stop_if_live(self, pod: PodView | None) -> None:
        action = halt(pod)
        if pod is not None and action == "delete":
            self.delete.append(pod.name)
        elif pod is not None and action == "stop":
            self.stop.append(pod.name)

    def _derive(
        self, source: CompiledSource, rec: SourceStatus | None, pod: PodView | None
    ) -> TaskState:
        kind = "git" if isinstance(source, GitCheckout) else "upload"
        task = TaskState(SOURCE_TASK, task_title(source), kind)
        if rec is not None:
            task.phase, task.pod, task.reason, task.message = (
                rec.phase,
                rec.pod,
                rec.reason,
                rec.message,
            )
            task.created_at, task.started_at, task.finished_at = (
                rec.created_at,
                rec.started_at,
                rec.finished_at,
            )
            task.facts = _facts_of(rec)
        if task.phase.terminal:
            self._stop_if_live(pod)
            return task
        name = source_pod_name(self.ref, source)
        if pod is None:
            if name in self.rejected:
                refusal = self.rejected[name]
                self._end(task, StepPhase.FAILED, refusal.reason, refusal.message)
            elif task.pod == name and task.phase == StepPhase.RUNNING:
                why = f"the {task.title} pod disappeared before it finished"
                self._end(task, StepPhase.FAILED, StepReason.POD_DELETED, why)
            else:
                task.phase, task.pod = StepPhase.PENDING, None
            return task
        task.pod = name
        task.created_at = task.created_at or pod.created_at
        result = outcome(pod, self.now, self.start_grace, self.unschedulable_grace)
        if result.recheck_after is not None:
            self.recheck.append(result.recheck_after)
        if result.phase == StepPhase.RUNNING:
            task.phase, task.live_pod = StepPhase.RUNNING, pod
            task.reason, task.message = result.reason, result.message
            return task
        if result.stop:
            self._stop_if_live(pod)
        main = pod.main
        facts = parse_report(main.message) if main and main.state == "terminated" else {}
        task.started_at = result.started_at
        if result.phase == StepPhase.SUCCEEDED:
            task.facts = facts
            self._end(task, StepPhase.SUCCEEDED, StepReason.COMPLETED, None, result.finished_at)
            return task
        reason = facts.get("reason") or result.reason or StepReason.POD_FAILED
        message = facts.get("message") or result.message
        if result.reason == "DeadlineExceeded":
            reason = f"{task.title.capitalize()}Timeout"
            message = f"the {task.title} did not finish within {pod.active_deadline}s"
            if task.kind == "upload":
                message = f"no complete upload arrived within {pod.active_deadline}s"
        self._end(task, StepPhase.FAILED, reason, message, result.finished_at)
        return task

    def _end(
        self,
        task: TaskState,
        phase: StepPhase,
        reason: str,
        message: str | None,
        finished_at: str | None = None,
    ) -> None:
        task.phase, task.reason = phase, reason
        task.message = redact(message)[:1024] if message else None
        task.finished_at = finished_at or self.stamp
        task.live_pod = None

    # -- what the planner asks ------------------------------------------------------------

    def ready(self) -> bool:
        """Steps may start: every task has succeeded (or there is none)."""
        return self.task is None or self.task.phase == StepPhase.SUCCEEDED

    def failed(self) -> TaskState | None:
        task = self.task
        return task if task is not None and task.phase == StepPhase.FAILED else None

    def active(self) -> bool:
        """Still to do: running, about to start, or waiting for quota."""
        return self.task is not None and not self.task.phase.terminal

    def stop_everything(self, phase: StepPhase, reason: str, message: str) -> None:
        """Cancel or time out: a running task ends in ``phase``, a pending one never starts."""
        task = self.task
        if task is None or task.phase.terminal:
            return
        if task.phase == StepPhase.RUNNING:
            self._stop_if_live(task.live_pod)
            self._end(task, phase, reason, message)
        else:
            self._end(task, StepPhase.SKIPPED, reason, message)

    def plan_start(self, remaining: float | None) -> TaskState | None:
        """The task whose pod to create now, with its deadline; None when nothing starts."""
        task = self.task
        if task is None or task.phase != StepPhase.PENDING or self.source is None:
            return None
        name = source_pod_name(self.ref, self.source)
        if name in self.waiting:
            self.quota = f"waiting for quota: {self.waiting[name]}"[:1024]
            task.reason, task.message = StepReason.EXCEEDED_QUOTA, self.waiting[name][:1024]
            return None
        limit = self.source.timeout if isinstance(self.source, Upload) else CHECKOUT_TIMEOUT
        deadlines = [t for t in (limit, remaining) if t is not None]
        task.deadline = max(1, int(min(deadlines)))
        task.start = True
        task.phase, task.pod = StepPhase.RUNNING, name
        task.created_at, task.reason, task.message = self.stamp, None, None
        return task

    def source_status(self) -> SourceStatus | None:
        task = self.task
        if task is None:
            return None
        facts = task.facts
        return SourceStatus(
            kind=task.kind,
            phase=task.phase,
            pod=task.pod,
            reason=task.reason,
            message=task.message,
            created_at=task.created_at,
            started_at=task.started_at,
            finished_at=task.finished_at if task.phase.terminal else None,
            commit=facts.get("commit") or None,
            branch=facts.get("branch") or None,
            tag=facts.get("tag") or None,
            commit_message=facts.get("message") or None,
            committer_name=facts.get("committerName") or None,
            committer_email=facts.get("committerEmail") or None,
            repo_name=self.source.repo_name if isinstance(self.source, GitCheckout) else None,
            files=_int(facts.get("files")),
            bytes=_int(facts.get("bytes")),
        )


def _facts_of(rec: SourceStatus) -> dict[str, str]:
    pairs = {
        "commit": rec.commit,
        "branch": rec.branch,
        "tag": rec.tag,
        "message": rec.commit_message,
        "committerName": rec.committer_name,
        "committerEmail": rec.committer_email,
        "files": None if rec.files is None else str(rec.files),
        "bytes": None if rec.bytes is None else str(rec.bytes),
    }
    return {k: v for k, v in pairs.items() if v is not None}
