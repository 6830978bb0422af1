"""What a step's pod says about its attempt (pure): running, succeeded or failed, and why.

The rules that keep results honest live here: a pod deleted or evicted while its step ran is a
failure, never a success; a pod stuck before its container starts (missing image, missing
Secret) fails the step after a bounded grace period instead of hanging, a longer one when
the kubelet only says its own caches are behind; a step held back by a
linked service's health check says which service it waits for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shipway.engine.observe import ContainerView, PodView, format_time, parse_time
from shipway.engine.reasons import PodReason, StepReason
from shipway.models import StepPhase

START_GRACE_SECONDS = 60.0
"""How long a container may wait on a retryable start problem (image pull, config) first."""
UNSCHEDULABLE_GRACE_SECONDS = 600.0
"""How long a step's pod may wait for a node: long enough for a cluster autoscaler to add one."""
CLAIM_NOT_BOUND = "pod has unbound immediate PersistentVolumeClaims"
"""The scheduler's word for a pod whose claim of an ``Immediate`` StorageClass has no volume
yet: the provisioner is making it, and the scheduler tries the pod again once it is bound."""
CLAIM_BINDING_GRACE_SECONDS = 30.0
"""How long that is ordinary waiting, not shown as ``Unschedulable``: a pipeline's pods are
made together with its claim, so each run's first pods see it for the second or two the
provisioner takes (as they wait unseen in the scheduler with ``WaitForFirstConsumer``)."""
FATAL_WAITING = {"InvalidImageName", "ErrImageNeverPull"}
KUBELET_BUSY = ("failed to sync secret cache", "failed to sync configmap cache")
"""The kubelet's own caches not synced in time (its API watch slow under load): it tries
again by itself, and a missing Secret says ``secret "x" not found`` instead."""
KUBELET_BUSY_GRACE_SECONDS = 300.0
"""How long a container may wait on a busy kubelet: a step is not failed for its load."""
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
        if pod.disruption is not None or pod.reason in (
            PodReason.EVICTED,
            PodReason.DEADLINE_EXCEEDED,
        ):
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
            busy = any(m in (container.message or "") for m in KUBELET_BUSY)
            grace = max(start_grace, KUBELET_BUSY_GRACE_SECONDS) if busy else start_grace
            left = grace - (now - created).total_seconds()
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
    message. A claim still being provisioned is said only after :data:`CLAIM_BINDING_GRACE_SECONDS`."""
    created = parse_time(pod.created_at) or now
    waited = (now - created).total_seconds()
    left = grace - waited
    binding = CLAIM_BINDING_GRACE_SECONDS - waited
    if CLAIM_NOT_BOUND in message and 0 < binding < left:
        return Outcome(StepPhase.RUNNING, recheck_after=binding)
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
