"""Which pods are the ones the operator created (pure): the only pods a result is read from.

Whoever may create pods in a namespace can make one with a step's name, its labels and a
controller reference carrying the Pipeline's UID: all three are readable with ``kubectl get``.
So neither proves that the operator made the pod. Two things do:

* **The UID recorded at creation.** The create's response carries the new pod's UID; the same
  reconcile writes it into the status next to the pod's name (:func:`record_uids`). From then
  on only the pod of that UID is the step's; another pod of the name (the original deleted and
  replaced) is a stranger, and the step's own pod is gone.
* **The seal, for the moment in between.** The operator may die after the create and before
  the status write. Its pod then exists unrecorded, exactly like a forgery made in advance. So
  every pod it creates carries ``shipway.dev/seal``: an HMAC of the Pipeline's UID and the pod's
  name under a key only the operator holds (``SHIPWAY_POD_SEAL_KEY``, a Secret in its own
  namespace, never in a tenant's). A tenant can compute no seal for a name; the one they can
  read is on the operator's pod of that very name, which the recorded UID then protects.

Any other pod claiming the Pipeline is a stranger: never read, stopped or adopted, named in
an Event; when it holds the name a step wants, that step fails (``PodNameConflict``).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from shipway.engine.naming import ANNOTATION_SEAL
from shipway.engine.observe import PodView
from shipway.models import PipelineStatus, StepAttempt, StepStatus

__all__ = ["ANNOTATION_SEAL", "Sorted", "record_uids", "seal", "sealed", "sort_pods"]


def seal(key: bytes, pipeline_uid: str, pod_name: str) -> str:
    """The seal of the pod ``pod_name`` of the Pipeline ``pipeline_uid``: hex HMAC-SHA256."""
    return hmac.new(key, f"{pipeline_uid}/{pod_name}".encode(), hashlib.sha256).hexdigest()


def sealed(key: bytes, pipeline_uid: str, pod: PodView) -> bool:
    """The pod carries the seal only the operator can make for its name."""
    if not key or not pod.seal:
        return False
    return hmac.compare_digest(pod.seal, seal(key, pipeline_uid, pod.name))


def recorded_uids(status: PipelineStatus) -> dict[str, str | None]:
    """Every pod the status names (steps, their attempts, the checkout, the builds) → the UID
    recorded with it (None: written by an operator that did not record UIDs)."""
    known: dict[str, str | None] = {}
    for step in status.steps:
        for attempt in step.attempts:
            known[attempt.pod] = attempt.pod_uid
        if step.pod:
            known[step.pod] = step.pod_uid
    for prep in (status.source, *status.builds):
        if prep is not None and prep.pod:
            known[prep.pod] = prep.pod_uid
    return known


@dataclass(frozen=True)
class Sorted:
    trusted: list[PodView]
    """The pipeline's own pods: results are read from these alone."""
    strangers: list[PodView]
    """Pods that claim the pipeline as their controller but that the operator did not create."""


def sort_pods(uid: str, status: PipelineStatus, pods: Iterable[PodView], key: bytes) -> Sorted:
    """Tell the pods the operator created from those that only say they are the pipeline's.

    A pod whose name the status records with a UID is the pipeline's if it has that UID; one
    recorded without a UID (an earlier version's status) if its controller is the pipeline;
    any other if it carries the seal. Pods controlled by something else are in neither list.
    """
    known = recorded_uids(status)
    trusted: list[PodView] = []
    strangers: list[PodView] = []
    for pod in pods:
        if pod.owner_uid != uid:
            continue
        want = known.get(pod.name)
        if want is not None:
            ours = pod.uid == want
        elif pod.name in known:  # named by an operator that recorded no UIDs
            ours = True
        else:
            ours = sealed(key, uid, pod)
        (trusted if ours else strangers).append(pod)
    return Sorted(trusted, strangers)


def record_uids(
    status: PipelineStatus, previous: PipelineStatus, pods: Mapping[str, str]
) -> PipelineStatus:
    """``status`` with each named pod's UID: kept from ``previous``, else from ``pods`` (name →
    UID of the pods trusted in this reconcile, created ones included)."""
    before = recorded_uids(previous)

    def uid_of(name: str | None, current: str | None) -> str | None:
        if not name:
            return None
        return current or before.get(name) or pods.get(name)

    def attempt(item: StepAttempt) -> StepAttempt:
        found = uid_of(item.pod, item.pod_uid)
        return item if found == item.pod_uid else item.model_copy(update={"pod_uid": found})

    def step(item: StepStatus) -> StepStatus:
        found = uid_of(item.pod, item.pod_uid)
        attempts = [attempt(a) for a in item.attempts]
        if found == item.pod_uid and attempts == item.attempts:
            return item
        return item.model_copy(update={"pod_uid": found, "attempts": attempts})

    steps = [step(s) for s in status.steps]
    source = status.source
    if source is not None and (found := uid_of(source.pod, source.pod_uid)) != source.pod_uid:
        source = source.model_copy(update={"pod_uid": found})
    builds = [
        b
        if (found := uid_of(b.pod, b.pod_uid)) == b.pod_uid
        else b.model_copy(update={"pod_uid": found})
        for b in status.builds
    ]
    if steps == status.steps and source is status.source and builds == status.builds:
        return status
    return status.model_copy(update={"steps": steps, "source": source, "builds": builds})
