"""A step pod, read from the pod object alone into a small summary (pure).

A pod is input: whoever may create pods writes its labels, annotations and owner references,
so every field is read by type (:mod:`shipway.engine.untrusted`) and nothing in one raises
but a label the summary cannot do without. What the summary means for the step is
:mod:`shipway.engine.outcome`'s to say.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shipway import GROUP, KIND
from shipway.engine.naming import (
    ANNOTATION_DEFAULT_CONTAINER,
    ANNOTATION_SEAL,
    LABEL_ATTEMPT,
    LABEL_STEP,
)
from shipway.engine.reasons import PodReason
from shipway.engine.untrusted import (
    MalformedObjectError,
    attempt_label,
    integer,
    items,
    mapping,
    number,
    text,
)


def parse_time(value: str | None) -> datetime | None:
    """An RFC 3339 time; None when absent or unreadable (it came from an object)."""
    if not value or not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class ContainerView:
    name: str
    state: str
    """waiting, running or terminated."""
    reason: str | None = None
    message: str | None = None
    exit_code: int | None = None
    started_at: str | None = None
    finished_at: str | None = None
    started: bool | None = None
    """The kubelet's ``started``: a container with a startupProbe is started once it passed."""


@dataclass(frozen=True, slots=True)
class PodView:
    """The few facts of a step pod the planner needs; small, so thousands fit in memory."""

    name: str
    uid: str
    step_id: str
    attempt: int
    phase: str
    created_at: str | None
    node_name: str | None
    deletion_requested_at: datetime | None
    reason: str | None
    message: str | None
    disruption: str | None
    active_deadline: int | None
    started: bool
    main: ContainerView | None
    sidecars: tuple[ContainerView, ...] = ()
    start_time: str | None = None
    owner_uid: str | None = None
    """UID of the Pipeline named by the pod's controller ownerReference: whose pod it is."""
    unschedulable: str | None = None
    """The scheduler's message while it finds no node for the pod."""
    seal: str | None = None
    """The ``shipway.dev/seal`` annotation: proves the operator made the pod (engine.ownership)."""
    probed: tuple[str, ...] = ()
    """Linked services' sidecars with a startupProbe (a health check): the step's container
    starts only once each has passed."""

    @property
    def active(self) -> bool:
        return self.phase not in ("Succeeded", "Failed")


def _container(status: Mapping[str, Any]) -> ContainerView:
    state = mapping(status.get("state"))
    name = text(status.get("name")) or ""
    for kind in ("terminated", "running", "waiting"):
        if isinstance(state.get(kind), Mapping):
            detail = state[kind]
            return ContainerView(
                name=name,
                state=kind,
                reason=text(detail.get("reason")),
                message=text(detail.get("message")),
                exit_code=integer(detail.get("exitCode")),
                started_at=text(detail.get("startedAt")),
                finished_at=text(detail.get("finishedAt")),
                started=status.get("started") if isinstance(status.get("started"), bool) else None,
            )
    return ContainerView(name=name, state="waiting")


def pod_view(pod: Mapping[str, Any]) -> PodView | None:
    """Summarise a step pod; None for a pod without Shipway's step labels.

    Never raises on a field of the wrong type (anyone may create a pod): such fields read as
    absent. A step label that is not a string, or an attempt label that is not a number,
    raises :class:`MalformedObjectError`: the watch skips that pod, naming it.
    """
    meta = mapping(pod.get("metadata"))
    labels = mapping(meta.get("labels"))
    if LABEL_STEP not in labels:
        return None
    step_id = text(labels[LABEL_STEP])
    if not step_id:
        raise MalformedObjectError(f"step label {str(labels[LABEL_STEP])[:64]!r} is not a name")
    attempt = attempt_label(labels.get(LABEL_ATTEMPT))
    spec = mapping(pod.get("spec"))
    status = mapping(pod.get("status"))
    annotations = mapping(meta.get("annotations"))
    main_name = annotations.get(ANNOTATION_DEFAULT_CONTAINER)
    seal = text(annotations.get(ANNOTATION_SEAL))
    main = None
    for item in items(status.get("containerStatuses")):
        if main is None or item.get("name") == main_name:
            main = _container(item)
    sidecars = tuple(_container(item) for item in items(status.get("initContainerStatuses")))
    disruption = unschedulable = None
    for cond in items(status.get("conditions")):
        if cond.get("type") == "DisruptionTarget" and cond.get("status") == "True":
            disruption = text(cond.get("reason")) or PodReason.DISRUPTION_TARGET
        elif (
            cond.get("type") == "PodScheduled"
            and cond.get("status") == "False"
            and cond.get("reason") == PodReason.UNSCHEDULABLE
        ):
            unschedulable = (text(cond.get("message")) or "no node fits the pod")[:1024]
    # When the deletion was asked for: the timestamp is that moment plus the grace period.
    deletion_at = parse_time(text(meta.get("deletionTimestamp")))
    if deletion_at is not None:
        grace = number(meta.get("deletionGracePeriodSeconds")) or 0.0
        with contextlib.suppress(OverflowError):
            deletion_at = deletion_at - timedelta(seconds=min(max(grace, 0.0), 1e9))
    node_name = text(spec.get("nodeName"))
    probed = tuple(
        text(c.get("name")) or ""
        for c in items(spec.get("initContainers"))
        if c.get("restartPolicy") == "Always" and c.get("startupProbe") is not None
    )
    return PodView(
        name=text(meta.get("name")) or "",
        uid=text(meta.get("uid")) or "",
        step_id=step_id,
        attempt=attempt,
        phase=text(status.get("phase")) or "Pending",
        created_at=text(meta.get("creationTimestamp")),
        node_name=node_name,
        deletion_requested_at=deletion_at,
        reason=text(status.get("reason")),
        message=text(status.get("message")),
        disruption=disruption,
        active_deadline=integer(spec.get("activeDeadlineSeconds")),
        started=status.get("startTime") is not None,
        main=main,
        sidecars=sidecars,
        start_time=text(status.get("startTime")),
        owner_uid=controller_uid(meta),
        unschedulable=unschedulable if not node_name else None,
        probed=probed,
        seal=seal[:64] if seal else None,
    )


def safe_pod_view(pod: Any) -> PodView | None:
    """:func:`pod_view`, or None for a pod that cannot be a step's (a malformed label)."""
    try:
        return pod_view(mapping(pod))
    except MalformedObjectError:
        return None


def container_named(pod: PodView, name: str) -> ContainerView | None:
    """The pod's container (or init container) of that name, once the kubelet reports it."""
    return next((c for c in (pod.main, *pod.sidecars) if c is not None and c.name == name), None)


def controller_uid(meta: Mapping[str, Any]) -> str | None:
    """The UID of the Pipeline that controls an object, from its ownerReferences; else None.

    A name or a label proves nothing (anyone may create a pod called ``foo-1-1-y``, labelled
    as a step of ``foo``); the controller reference is set by the operator alone.
    """
    for ref in items(meta.get("ownerReferences")):
        if (
            ref.get("controller") is True
            and ref.get("kind") == KIND
            and _ours(ref.get("apiVersion"))
        ):
            return text(ref.get("uid")) or None
    return None


def controller_name(meta: Mapping[str, Any]) -> str | None:
    """The name of the Pipeline that controls an object (see :func:`controller_uid`)."""
    for ref in items(meta.get("ownerReferences")):
        if (
            ref.get("controller") is True
            and ref.get("kind") == KIND
            and _ours(ref.get("apiVersion"))
        ):
            return text(ref.get("name")) or None
    return None


def _ours(api_version: Any) -> bool:
    return isinstance(api_version, str) and api_version.split("/")[0] == GROUP
