"""The plan's intents: what the planning half asks the pod half (and the shell) to create.

One intent per pod kind (the checkout, a step, a push, a build), so the pod half picks the
builder by the intent's type and never guesses the kind from a task id. Shared vocabulary:
both halves import it, so neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from shipway.models import (
    Healthcheck,
)


@dataclass(frozen=True)
class PodTask:
    """What the intent of every pod task carries: whose pod, which attempt, its name, its end."""

    step_id: str
    attempt: int
    name: str
    active_deadline: int | None = None


@dataclass(frozen=True)
class SourceToCreate(PodTask):
    """The checkout (or upload receiver) pod: everything it runs comes from the spec."""


@dataclass(frozen=True, kw_only=True)
class StepToCreate(PodTask):
    """One attempt of a step's pod: the service, its linked services as sidecars."""

    images: tuple[tuple[str, str], ...] = ()
    """(service, image by digest) of the built services the pod runs."""
    healthchecks: tuple[tuple[str, Healthcheck], ...] = ()
    """(service, its built image's HEALTHCHECK) of the linked services that have one."""


@dataclass(frozen=True, kw_only=True)
class PushToCreate(PodTask):
    """One attempt of a push step's pod: what it copies where."""

    push: PushTarget
    images: tuple[tuple[str, str], ...] = ()
    """(service, image by digest): the credentials generator's, when it is built."""


PodToCreate: TypeAlias = SourceToCreate | StepToCreate | PushToCreate
"""A pod of a task (``Plan.create``): the builds have their own intent, :class:`BuildToCreate`."""


def step_to_create(
    step_id: str,
    attempt: int,
    name: str,
    active_deadline: int | None = None,
    *,
    images: tuple[tuple[str, str], ...] = (),
    push: PushTarget | None = None,
    healthchecks: tuple[tuple[str, Healthcheck], ...] = (),
) -> StepToCreate | PushToCreate:
    """A step's intent: a push when the planner found what it copies, else a plain step."""
    if push is not None:
        return PushToCreate(step_id, attempt, name, active_deadline, push=push, images=images)
    return StepToCreate(
        step_id, attempt, name, active_deadline, images=images, healthchecks=healthchecks
    )


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
