"""A build's state while planning, what the status records of it, and the gate it is to steps (pure).

A build's state follows from its status record and its pod, like a step's: the record remembers
a result, the pod tells what the record lacks. The lifecycle is the shared
:class:`~shipway.engine.plan.task.Task`; a build adds its image (repository and digest), the
cache hits and the image's HEALTHCHECK.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from shipway.compiler.builds import ResolvedBuild
from shipway.engine.plan.task import Task, Tracked
from shipway.models import BuildStatus, ImageHealthcheck, PipelineStatus, StepPhase


class Gate(Enum):
    READY = "ready"
    """Every image the step runs is built."""
    WAIT = "wait"
    """A build the step needs has not finished yet."""
    FAILED = "failed"
    """A build the step needs failed: the step fails without a pod."""


@dataclass
class BuildState(Tracked):
    """One service's build while planning: its task, and what the build made."""

    build: ResolvedBuild
    repository: str
    task: Task = field(default_factory=Task)
    digest: str | None = None
    cached_steps: int | None = None
    total_steps: int | None = None
    healthcheck: ImageHealthcheck | None = None
    """The image's HEALTHCHECK, read after the build when a step links the service."""
    wanted: bool = False
    """A regular step that may run needs it: built as soon as the checkout is there."""
    requested: bool = False
    """A step about to start needs it (an ``on_fail`` step, or one the build holds)."""
    start: bool = False

    @property
    def service(self) -> str:
        return self.build.service

    @property
    def image(self) -> str | None:
        """The image by digest, once pushed."""
        return f"{self.repository}@{self.digest}" if self.digest else None


def shown(state: BuildState) -> bool:
    """Builds no step ever needed are left out (services of filtered-out steps)."""
    return state.wanted or state.requested or state.pod is not None or state.phase.terminal


def record(state: BuildState) -> BuildStatus:
    return BuildStatus(
        service=state.service,
        image=state.repository if state.phase != StepPhase.SKIPPED else None,
        digest=state.digest,
        cached_steps=state.cached_steps,
        total_steps=state.total_steps,
        healthcheck=state.healthcheck,
        **state.task.record(),
    )


def build_secret_wanted(old: PipelineStatus, new: PipelineStatus, starting: bool) -> bool | None:
    """Whether the client certificate must be in the namespace now, or can go."""
    if starting:
        return True
    was_building = any(not b.phase.terminal for b in old.builds)
    if was_building and all(b.phase.terminal for b in new.builds):
        return False
    return None
