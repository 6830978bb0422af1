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
from shipway.models import PipelineStatus, StepPhase, StepStatus


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
        """Builds first (they come before the steps that run their images), then steps."""
        events: list[Event] = []
        for step in (*build_steps(status), *status.steps):
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
