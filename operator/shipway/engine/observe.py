"""What a step's pod says about the step, read from the pod object alone (pure).

The rules that keep results honest live here: a pod deleted or evicted while its step ran is a
failure, never a success; a pod stuck before its container starts (missing image, missing
Secret) fails the step after a bounded grace period instead of hanging.
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
from shipway.engine.reasons import StepReason
from shipway.engine.untrusted import (
    MalformedObjectError,
    attempt_label,
    integer,
    items,
    mapping,
    number,
    text,
)
from shipway.models import StepPhase

START_GRACE_SECONDS = 60.0
"""How long a container may wait on a retryable start problem (image pull, config) first."""
UNSCHEDULABLE_GRACE_SECONDS = 600.0
"""How long a step's pod may wait for a node: long enough for a cluster autoscaler to add one."""
FATAL_WAITING = {"InvalidImageName", "ErrImageNeverPull"}
PULL_THROTTLED = "pull QPS exceeded"
"""The kubelet's own pull rate limit (registryPullQPS): it pulls again by itself, so a pod
throttled among many that start at once is waiting its turn, not stuck on its image."""
STUCK_WAITING = {
    "ErrImagePull",
    "ImagePullBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
    "CrashLoopBackOff",
}


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
            disruption = text(cond.get("reason")) or "DisruptionTarget"
        elif (
            cond.get("type") == "PodScheduled"
            and cond.get("status") == "False"
            and cond.get("reason") == "Unschedulable"
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


@dataclass(frozen=True)
class Outcome:
    """What a pod says about its step's attempt."""

    phase: StepPhase
    """RUNNING, SUCCEEDED or FAILED."""
    exit_code: int | None = None
    reason: str | None = None
    message: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    stop: bool = False
    """The pod must be stopped: its step failed before its container could run."""
    recheck_after: float | None = None
    """Look again after this many seconds (a start problem's grace period runs out)."""


def _finished_before(main: ContainerView | None, moment: datetime) -> bool:
    if main is None or main.state != "terminated":
        return False
    finished = parse_time(main.finished_at)
    return finished is not None and finished < moment


def _exit_message(main: ContainerView) -> str:
    if main.message:
        return main.message.strip()[:1024]
    return f"container exited with a {main.exit_code} code"


def exited_cleanly(pod: PodView) -> bool:
    """The step's container exited 0 on its own and nothing else runs in its pod.

    The kubelet reports a pod's terminal phase only after tearing its sandbox down, about a
    second after the container exits; the step is over by then, and waiting for the phase
    would add that second to every step. Not when the kubelet may have killed the container
    itself (a disruption, or the pod's deadline within reach: a process may exit 0 on
    SIGTERM) nor while linked services' sidecars run: those wait for the pod's phase.
    """
    main = pod.main
    if main is None or main.state != "terminated" or main.exit_code != 0:
        return False
    if pod.sidecars or pod.disruption is not None or pod.reason is not None:
        return False
    if pod.active_deadline is None:
        return True
    started, finished = parse_time(pod.start_time), parse_time(main.finished_at)
    if started is None or finished is None:
        return False
    # Both times are whole seconds: a margin of 2 s keeps a deadline kill out.
    return (finished - started).total_seconds() < pod.active_deadline - 2


def outcome(
    pod: PodView,
    now: datetime,
    start_grace: float = START_GRACE_SECONDS,
    unschedulable_grace: float = UNSCHEDULABLE_GRACE_SECONDS,
) -> Outcome:
    """Classify one attempt from its pod."""
    main = pod.main
    started = main.started_at if main else None
    finished = main.finished_at if main else None
    if pod.deletion_requested_at is not None and not _finished_before(
        main, pod.deletion_requested_at
    ):
        how = f"evicted ({pod.disruption})" if pod.disruption else "deleted"
        return Outcome(
            StepPhase.FAILED,
            exit_code=main.exit_code if main else None,
            reason=StepReason.POD_EVICTED if pod.disruption else StepReason.POD_DELETED,
            message=f"the step's pod was {how} before the step finished",
            started_at=started,
            finished_at=finished or format_time(now),
        )
    if pod.phase == "Succeeded" or (pod.phase != "Failed" and exited_cleanly(pod)):
        return Outcome(
            StepPhase.SUCCEEDED,
            exit_code=main.exit_code if main else 0,
            reason=StepReason.COMPLETED,
            started_at=started,
            finished_at=finished,
        )
    if pod.phase == "Failed":
        if pod.disruption is not None or pod.reason in ("Evicted", "DeadlineExceeded"):
            reason = pod.reason or pod.disruption
            message = pod.message or f"the step's pod was stopped: {reason}"
        elif main is not None and main.state == "terminated":
            reason, message = main.reason or StepReason.ERROR, _exit_message(main)
        else:
            reason = pod.reason or StepReason.POD_FAILED
            message = pod.message or "the step's pod failed"
        return Outcome(
            StepPhase.FAILED,
            exit_code=main.exit_code if main else None,
            reason=reason,
            message=message,
            started_at=started,
            finished_at=finished or format_time(now),
        )
    if pod.unschedulable is not None and pod.phase == "Pending":
        return _unschedulable(pod, pod.unschedulable, now, unschedulable_grace)
    waiting = [c for c in (main, *pod.sidecars) if c is not None and c.state == "waiting"]
    for container in waiting:
        if container.reason in FATAL_WAITING:
            return Outcome(
                StepPhase.FAILED,
                reason=container.reason,
                message=f"{container.name}: {container.message or container.reason}",
                finished_at=format_time(now),
                stop=True,
            )
    for container in waiting:
        if PULL_THROTTLED in (container.message or ""):
            return Outcome(
                StepPhase.RUNNING,
                reason=container.reason,
                message=container.message,
                recheck_after=5.0,
            )
        if container.reason in STUCK_WAITING:
            created = parse_time(pod.created_at) or now
            left = start_grace - (now - created).total_seconds()
            if left <= 0:
                return Outcome(
                    StepPhase.FAILED,
                    reason=container.reason,
                    message=f"{container.name}: {container.message or container.reason}",
                    finished_at=format_time(now),
                    stop=True,
                )
            return Outcome(
                StepPhase.RUNNING,
                reason=container.reason,
                message=container.message,
                recheck_after=left,
            )
    unhealthy = waiting_for_service(pod)
    if unhealthy is not None:
        return Outcome(
            StepPhase.RUNNING,
            reason=StepReason.WAITING_FOR_SERVICE,
            message=f"waiting for service {unhealthy} to become healthy",
        )
    return Outcome(StepPhase.RUNNING, started_at=started)


def waiting_for_service(pod: PodView) -> str | None:
    """The linked service whose health check holds the step's container back, if one does.

    A native sidecar with a startupProbe runs but is not ``started`` until the probe passes;
    the kubelet starts the step's container only after every sidecar has started.
    """
    if pod.main is not None and pod.main.state != "waiting":
        return None
    for sidecar in pod.sidecars:
        if sidecar.name in pod.probed and sidecar.state == "running" and not sidecar.started:
            return sidecar.name
    return None


def _unschedulable(pod: PodView, message: str, now: datetime, grace: float) -> Outcome:
    """No node for the pod (impossible requests, an unbindable claim, taints): say so in the
    step while an autoscaler may still add a node, then fail the step with the scheduler's
    message."""
    created = parse_time(pod.created_at) or now
    left = grace - (now - created).total_seconds()
    if left <= 0:
        return Outcome(
            StepPhase.FAILED,
            reason=StepReason.UNSCHEDULABLE,
            message=f"no node could run the step's pod for {_seconds(grace)}: {message}"[:1024],
            finished_at=format_time(now),
            stop=True,
        )
    return Outcome(
        StepPhase.RUNNING, reason=StepReason.UNSCHEDULABLE, message=message, recheck_after=left
    )


def _seconds(value: float) -> str:
    return f"{value / 60:g}m" if value >= 60 and value % 60 == 0 else f"{value:g}s"
