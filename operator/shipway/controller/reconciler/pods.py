"""Which pods are the pipeline's: the watched ones, the ones just created, and only those the
operator itself made (a pod that merely claims the pipeline is named once, never read)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from shipway.controller import metrics
from shipway.controller.kube import EventTarget
from shipway.controller.memory import Memory
from shipway.controller.reconciler.api import KubeApi
from shipway.controller.snapshot import PipelineSnapshot
from shipway.engine.observe import PodView, safe_pod_view
from shipway.engine.ownership import sort_pods
from shipway.engine.plan.planner import EventToEmit
from shipway.engine.plan.steps import own
from shipway.engine.reasons import EventReason
from shipway.models import PipelineStatus

log = logging.getLogger("shipway")

Emit = Callable[[EventTarget, tuple[EventToEmit, ...]], None]
"""Records Events in the background."""


async def pipeline_pods(
    kube: KubeApi,
    snap: PipelineSnapshot,
    status: PipelineStatus,
    indexed: Iterable[PodView],
    *,
    memory: Memory,
    seal_key: bytes,
    emit: Emit,
) -> list[PodView]:
    """The pipeline's own pods: the pod store's, plus the ones created but not watched yet."""
    pods = {pod.name: pod for pod in own(indexed, snap.uid)}
    for name in [n for n in memory.created if n in pods]:
        del memory.created[name]
    for name, view in memory.created.items():
        pods.setdefault(name, view)
    # A pod the status says we created but the watch has not shown: ask before concluding
    # it was deleted (the watch may simply lag behind our own create).
    recorded = [(s.pod, s.phase) for s in status.steps]
    recorded += [(b.pod, b.phase) for b in status.builds]
    for known, phase in recorded:
        if known and not phase.terminal and known not in pods:
            body = await kube.get_pod(snap.namespace, known)
            found = safe_pod_view(body) if body is not None else None
            if found is not None and found.owner_uid == snap.uid:
                pods[known] = found
    return trusted_pods(snap, status, pods.values(), memory, seal_key=seal_key, emit=emit)


def trusted_pods(
    snap: PipelineSnapshot,
    status: PipelineStatus,
    pods: Iterable[PodView],
    memory: Memory,
    *,
    seal_key: bytes,
    emit: Emit,
) -> list[PodView]:
    """The pods the operator created: a pod that only claims the pipeline (its name,
    labels and owner reference copied) is never read, and is named in an Event once."""
    found = sort_pods(snap.uid, status, pods, seal_key)
    for pod in found.strangers:
        if pod.uid in memory.strangers:
            continue
        memory.strangers.add(pod.uid)
        metrics.FOREIGN_PODS.inc()
        why = (
            f"pod {pod.name!r} (uid {pod.uid}) names this pipeline as its owner but the "
            "operator did not create it: it is ignored, its result is not the step's"
        )
        log.warning("%s/%s: %s", snap.namespace, snap.name, why)
        target = EventTarget(snap.name, snap.namespace, snap.uid)
        emit(target, (EventToEmit("Warning", EventReason.FOREIGN_POD, why),))
    memory.trusted = {pod.name: pod.uid for pod in found.trusted if pod.uid}
    return found.trusted
