"""What changed between two looks at a Pipeline, as the follower needs it (pure).

Feed every version of the status seen (watch events, or one final GET) to :meth:`Tracker.update`;
it answers with the attempts that started and ended since, each exactly once, in step order
(an attempt's end before the next step's start), so the caller can start and stop log streams.
Image builds are followed the same way, as steps whose id is ``build-<service>``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from shipway.cli.tree import build_steps
from shipway.engine.plan.report import SOURCE_TITLES
from shipway.models import PipelineStatus, SourceStatus, StepPhase, StepStatus


def source_step(source: SourceStatus) -> StepStatus:
    """The checkout (or upload) as a step named ``checkout`` (``upload``): it has a pod with
    a log and a result, and ``shipway logs --step checkout`` reads it."""
    title = SOURCE_TITLES.get(source.kind, source.kind)
    return StepStatus(
        id="source",
        name=title,
        service=title,
        phase=source.phase,
        pod=source.pod,
        reason=source.reason,
        message=source.message,
        created_at=source.created_at,
        started_at=source.started_at,
        finished_at=source.finished_at,
    )


def every_step(status: PipelineStatus) -> list[StepStatus]:
    """The source's pseudo-step first, then the image builds (``build-<service>``), then the
    steps: the order they run in."""
    first = [source_step(status.source)] if status.source is not None else []
    return first + build_steps(status) + list(status.steps)


@dataclass(frozen=True)
class AttemptStarted:
    step: StepStatus
    pod: str
    attempt: int


@dataclass(frozen=True)
class AttemptEnded:
    step: StepStatus
    pod: str | None
    """None for a step that ended without ever getting a pod (e.g. cancelled before start)."""
    attempt: int
    phase: StepPhase
    exit_code: int | None
    reason: str | None
    message: str | None
    final: bool
    """False when another attempt follows (a retried step)."""


Event = AttemptStarted | AttemptEnded


def _all_steps(_: StepStatus) -> bool:
    return True


@dataclass
class Tracker:
    include: Callable[[StepStatus], bool] = _all_steps
    started: set[str] = field(default_factory=set)
    ended: set[str] = field(default_factory=set)

    def update(self, status: PipelineStatus) -> list[Event]:
        """The checkout, the builds, then the steps (each comes before what needs it)."""
        events: list[Event] = []
        for step in every_step(status):
            if not self.include(step):
                continue
            for earlier in step.attempts:
                if earlier.pod not in self.started:
                    self.started.add(earlier.pod)
                    events.append(AttemptStarted(step, earlier.pod, earlier.attempt))
                if earlier.pod not in self.ended:
                    self.ended.add(earlier.pod)
                    events.append(
                        AttemptEnded(
                            step,
                            earlier.pod,
                            earlier.attempt,
                            earlier.phase,
                            earlier.exit_code,
                            earlier.reason,
                            earlier.message,
                            final=False,
                        )
                    )
            if step.pod is not None and step.phase != StepPhase.SKIPPED:
                if step.pod not in self.started:
                    self.started.add(step.pod)
                    events.append(AttemptStarted(step, step.pod, step.attempt))
                key = step.pod
            else:
                key = f"step/{step.id}"
            ends = step.phase.terminal and (
                step.pod is not None or step.phase in (StepPhase.FAILED, StepPhase.CANCELLED)
            )
            if ends and key not in self.ended and step.phase != StepPhase.SKIPPED:
                self.ended.add(key)
                events.append(
                    AttemptEnded(
                        step,
                        step.pod,
                        step.attempt,
                        step.phase,
                        step.exit_code,
                        step.reason,
                        step.message,
                        final=True,
                    )
                )
        return events
