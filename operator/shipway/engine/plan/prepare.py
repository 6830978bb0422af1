"""Preparation: work done in pods before the steps that need it (pure).

Today one task, the ``source`` (a git checkout or an upload into the workspace), which every
step waits for; image builds join later as more tasks with their own ``needs``. A task has
one pod, no retries, and its state follows from its status record and its pod the way a
step's does: the record remembers a result, the pod tells what the record lacks. A task that
fails fails the pipeline before any step pod exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shipway.compiler.source import CompiledSource, GitCheckout, Upload
from shipway.engine.naming import (
    CHECKOUT_CONTAINER,
    CHECKOUT_TIMEOUT,
    SOURCE_TASK,
    UPLOAD_CONTAINER,
    source_pod_name,
    task_title,
)
from shipway.engine.observe import PodView
from shipway.engine.plan.inputs import PlanInput
from shipway.engine.plan.task import Task, Tracked, Tracker
from shipway.engine.reasons import PodReason, SourceReason, StepReason
from shipway.engine.termination import parse_report, redact
from shipway.models import SourceStatus, StepPhase


@dataclass
class Prepared(Tracked):
    """One preparation task while planning: its task, and the facts its pod reported."""

    id: str
    title: str
    kind: str
    task: Task = field(default_factory=Task)
    facts: dict[str, str] = field(default_factory=dict)
    start: bool = False
    deadline: int | None = None


_TIMEOUT = {
    CHECKOUT_CONTAINER: SourceReason.CHECKOUT_TIMEOUT,
    UPLOAD_CONTAINER: SourceReason.UPLOAD_TIMEOUT,
}
"""The reason of a checkout or upload that ran past its deadline, by its title."""


def _int(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None


class Preparation(Tracker):
    """Every preparation task's state, and the pods found that must be stopped or deleted."""

    def __init__(self, inputs: PlanInput) -> None:
        super().__init__(inputs)
        self.ref = inputs.ref
        self.source = inputs.compiled.source
        self.task: Prepared | None = None
        if self.source is not None:
            pod = inputs.pods_by_step.get(SOURCE_TASK, {}).get(0)
            self.task = self._derive(self.source, inputs.status.source, pod)

    def _derive(
        self, source: CompiledSource, rec: SourceStatus | None, pod: PodView | None
    ) -> Prepared:
        kind = "git" if isinstance(source, GitCheckout) else "upload"
        prep = Prepared(SOURCE_TASK, task_title(source), kind, Task.recorded(rec))
        if rec is not None:
            prep.facts = _facts_of(rec)
        if prep.phase.terminal:
            self.stop_if_live(pod)
            return prep
        name = source_pod_name(self.ref, source)
        vanished = f"the {prep.title} pod disappeared before it finished"
        prep.task, result = self.observe(prep.task, name, pod, vanished)
        if result is None:
            prep.task = prep.task.pending()
            return prep
        if result.phase == StepPhase.RUNNING:
            return prep
        if pod is None:  # refused (its whole message, redacted), or its pod vanished
            refusal = self.inputs.rejected.get(name)
            reason = refusal.reason if refusal is not None else StepReason.POD_DELETED
            message = refusal.message if refusal is not None else result.message
            self._end(prep, StepPhase.FAILED, reason, message)
            return prep
        main = pod.main
        facts = parse_report(main.message) if main and main.state == "terminated" else {}
        prep.task = prep.task.started(result.started_at)
        if result.phase == StepPhase.SUCCEEDED:
            prep.facts = facts
            self._end(
                prep,
                StepPhase.SUCCEEDED,
                StepReason.COMPLETED,
                None,
                finished_at=result.finished_at,
            )
            return prep
        reason = facts.get("reason") or result.reason or StepReason.POD_FAILED
        message = facts.get("message") or result.message
        if result.reason == PodReason.DEADLINE_EXCEEDED:
            reason = _TIMEOUT[prep.title]
            message = f"the {prep.title} did not finish within {pod.active_deadline}s"
            if prep.kind == "upload":
                message = f"no complete upload arrived within {pod.active_deadline}s"
        self._end(prep, StepPhase.FAILED, reason, message, finished_at=result.finished_at)
        return prep

    def _end(
        self,
        prep: Prepared,
        phase: StepPhase,
        reason: str,
        message: str | None,
        *,
        finished_at: str | None = None,
    ) -> None:
        """Over, its message redacted (a checkout's error may quote a URL with a token)."""
        shown = redact(message)[:1024] if message else None
        prep.task = prep.task.ended(phase, reason, shown, finished_at or self.stamp)

    # -- what the planner asks ------------------------------------------------------------

    def ready(self) -> bool:
        """Steps may start: every task has succeeded (or there is none)."""
        return self.task is None or self.task.phase == StepPhase.SUCCEEDED

    def failed(self) -> Prepared | None:
        task = self.task
        return task if task is not None and task.phase == StepPhase.FAILED else None

    def active(self) -> bool:
        """Still to do: running, about to start, or waiting for quota."""
        return self.task is not None and not self.task.phase.terminal

    def stop_everything(self, end: tuple[StepPhase, str, str]) -> None:
        """Cancel or time out: a running task ends in ``end``'s phase, a pending one never starts."""
        prep = self.task
        if prep is None or prep.phase.terminal:
            return
        self.stop_task(prep, end, skip_at=self.stamp)

    def plan_start(self, remaining: float | None) -> Prepared | None:
        """The task whose pod to create now, with its deadline; None when nothing starts."""
        prep = self.task
        if prep is None or prep.phase != StepPhase.PENDING or self.source is None:
            return None
        name = source_pod_name(self.ref, self.source)
        waiting = self.quota_wait(name)
        if waiting is not None:
            prep.task = prep.task.noted(StepReason.EXCEEDED_QUOTA, waiting)
            return None
        limit = self.source.timeout if isinstance(self.source, Upload) else CHECKOUT_TIMEOUT
        deadlines = [t for t in (limit, remaining) if t is not None]
        prep.deadline = max(1, int(min(deadlines)))
        prep.start = True
        prep.task = prep.task.created(name, self.stamp)
        return prep

    def source_status(self) -> SourceStatus | None:
        prep = self.task
        if prep is None:
            return None
        facts, task = prep.facts, prep.task
        return SourceStatus(
            kind=prep.kind,
            commit=facts.get("commit") or None,
            branch=facts.get("branch") or None,
            tag=facts.get("tag") or None,
            commit_message=facts.get("message") or None,
            committer_name=facts.get("committerName") or None,
            committer_email=facts.get("committerEmail") or None,
            repo_name=self.source.repo_name if isinstance(self.source, GitCheckout) else None,
            files=_int(facts.get("files")),
            bytes=_int(facts.get("bytes")),
            **task.record(),
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
