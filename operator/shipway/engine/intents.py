"""The plan's intents: what the planning half asks the pod half (and the shell) to create.

Shared vocabulary: both halves import it, so neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass

from shipway.models import (
    Healthcheck,
)


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
    healthchecks: tuple[tuple[str, Healthcheck], ...] = ()
    """(service, its built image's HEALTHCHECK) of the linked services that have one."""


@dataclass(frozen=True)
class Refusal:
    """Why a step's pod could not be created: the API server refused it, or its name is taken."""

    reason: str
    message: str


@dataclass(frozen=True)
class BuildToCreate:
    """One service's build pod to create now (the plan decided it; names are deterministic)."""

    service: str
    name: str
    repository: str
    cache_repository: str | None = None
    """Set for ``cached: true``: import and export BuildKit's cache there."""
    cache_tags: tuple[str, ...] = ()
    """The branch's tag first (exported to), then the default cache branch's."""
    active_deadline: int | None = None
    inspect: bool = False
    """A step links the service: read the image's HEALTHCHECK after the build."""
    args: tuple[tuple[str, str], ...] = ()
    """The build args, rendered (:func:`shipway.engine.plan.builds.args.render_args`)."""


@dataclass(frozen=True)
class PushTarget:
    """What one push copies where, decided by the planner."""

    source: str
    """``repository@sha256:...`` in the cluster's registry: the image the steps ran."""
    digest: str
    target: str
    """``repository:tag`` to push to."""
