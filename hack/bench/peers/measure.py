"""One engine running one piece of work: its wall time, gaps, throughput, CPU, memory, writes.

Both engines are measured alike: the benchmark's own pod watch stamps every pod's creation and
its main container's termination; a pipeline's gaps are the times from one step's termination
to the next step's pod appearing; the controller's CPU seconds and peak RSS come from /proc
(it is restarted for each piece of work, so the peak is that work's); writes are the
apiserver's own counters of the requests each engine makes (cluster-wide: other users of the
cluster add noise, reported beside).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from bench.kube import Kube, write_deltas
from bench.stats import summary_ms
from bench.watch import PodRecord, PodWatch

ARGO_WRITES = (
    "POST core/pods ",
    "PATCH core/pods ",
    "DELETE core/pods ",
    "PUT argoproj.io/workflows ",
    "PATCH argoproj.io/workflows ",
    "POST argoproj.io/workflowtaskresults ",
    "PATCH argoproj.io/workflowtaskresults ",
    "DELETE argoproj.io/workflowtaskresults ",
    "DELETECOLLECTION argoproj.io/workflowtaskresults ",
    "POST core/events ",
    "PATCH core/events ",
    "POST core/persistentvolumeclaims ",
    "DELETE core/persistentvolumeclaims ",
)
"""The requests Argo's controller and its executors (``argoexec wait``) make."""

NODE_ID = "workflows.argoproj.io/node-id"
WORKFLOW_LABEL = "workflows.argoproj.io/workflow"
COMPLETED_LABEL = "workflows.argoproj.io/report-outputs-completed"


def group_key(engine: str) -> str:
    return "shipway.dev/pipeline" if engine == "shipway" else WORKFLOW_LABEL


def by_pipeline(pods: list[PodRecord], engine: str) -> dict[str, list[PodRecord]]:
    """Each pipeline's step pods in the order they appeared (every piece of work is serial)."""
    key = group_key(engine)
    grouped: dict[str, list[PodRecord]] = {}
    for record in pods:
        name = record.labels.get(key)
        if name and record.added_at is not None:
            grouped.setdefault(name, []).append(record)
    for records in grouped.values():
        records.sort(key=lambda r: r.added_at or 0.0)
    return grouped


def gaps(groups: dict[str, list[PodRecord]]) -> list[float]:
    result = []
    for records in groups.values():
        for before, after in itertools.pairwise(records):
            if before.terminated_at is not None and after.added_at is not None:
                result.append(after.added_at - before.terminated_at)
    return result


def writes_of(deltas: dict[str, int], prefixes: tuple[str, ...]) -> dict[str, int]:
    return {k: v for k, v in deltas.items() if k.startswith(prefixes)}


@dataclass
class Figures:
    wall_s: float
    steps: int
    gaps: list[float]
    cpu_s: float
    peak_rss_mb: float
    writes: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        total = sum(self.writes.values())
        return {
            "wall_s": round(self.wall_s, 2),
            "steps": self.steps,
            "transition_gap_ms": summary_ms(self.gaps),
            "steps_per_second": round(self.steps / self.wall_s, 2) if self.wall_s else None,
            "controller_cpu_s": round(self.cpu_s, 2),
            "controller_cpu_ms_per_step": round(1000 * self.cpu_s / self.steps, 2)
            if self.steps
            else None,
            "controller_peak_rss_mb": self.peak_rss_mb,
            "api_writes_per_step": round(total / self.steps, 2) if self.steps else None,
            "api_writes": self.writes,
        }


def finished(watch: PodWatch, engine: str, expected: dict[str, int]) -> Callable[[], bool]:
    """Every pipeline has its expected number of step pods, all terminated."""

    def check() -> bool:
        groups = by_pipeline(list(watch.pods.values()), engine)
        return all(
            len(groups.get(name, ())) >= count
            and all(r.terminated_at is not None for r in groups[name])
            for name, count in expected.items()
        )

    return check


def collect(
    kube: Kube,
    watch: PodWatch,
    engine: str,
    started: float,
    *,
    before: Any,
    cpu_before: float,
    usage: Any,
    prefixes: tuple[str, ...],
) -> Figures:
    with watch.lock:
        records = list(watch.pods.values())
    groups = by_pipeline(records, engine)
    ends = [r.terminated_at for rs in groups.values() for r in rs if r.terminated_at]
    wall = (max(ends) - started) if ends else float("nan")
    deltas = write_deltas(before, kube.request_counts())
    return Figures(
        wall_s=wall,
        steps=len(ends),
        gaps=gaps(groups),
        cpu_s=usage.cpu_s - cpu_before,
        peak_rss_mb=usage.peak_rss_mb,
        writes=writes_of(deltas, prefixes),
    )


class FakeExecutor:
    """What ``argoexec wait`` does for a pod on a kwok node, where no container runs.

    On a real node the wait container reports the step's result as a WorkflowTaskResult
    labelled ``report-outputs-completed=true``; Argo's controller waits for it before it
    moves on. kwok runs nothing, so the benchmark writes that one object per finished pod
    (the real executor writes it at least once too), counted among Argo's writes.
    """

    def __init__(self, kube: Kube, namespace: str) -> None:
        self.kube = kube
        self.namespace = namespace
        self.pool = ThreadPoolExecutor(max_workers=8)
        self.done: set[str] = set()
        self.lock = threading.Lock()
        self.errors: list[str] = []

    def seen(self, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        node_id = (meta.get("annotations") or {}).get(NODE_ID)
        workflow = (meta.get("labels") or {}).get(WORKFLOW_LABEL)
        if not node_id or not workflow:
            return
        with self.lock:
            if node_id in self.done:
                return
            self.done.add(node_id)
        owners = [o for o in meta.get("ownerReferences") or () if o.get("kind") == "Workflow"]
        body = {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "WorkflowTaskResult",
            "metadata": {
                "name": node_id,
                "labels": {WORKFLOW_LABEL: workflow, COMPLETED_LABEL: "true"},
                "ownerReferences": owners,
            },
            "phase": "Succeeded",
        }
        self.pool.submit(self._create, body)

    def _create(self, body: dict[str, Any]) -> None:
        try:
            self.kube.custom.create_namespaced_custom_object(
                "argoproj.io", "v1alpha1", self.namespace, "workflowtaskresults", body,
                _preload_content=False,
            )  # fmt: skip
        except Exception as exc:  # reported, never fatal: the run's figures show it
            self.errors.append(repr(exc)[:200])

    def stop(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


class ArgoPodWatch(PodWatch):
    """The pod watch, also playing ``argoexec wait`` for pods that terminate on kwok nodes."""

    executor: FakeExecutor | None = None

    def handle(self, kind: str, obj: dict[str, Any], at: float) -> None:
        before = self.pods.get(str((obj.get("metadata") or {}).get("name")))
        was_done = before is not None and before.terminated_at is not None
        super().handle(kind, obj, at)
        record = self.pods.get(str((obj.get("metadata") or {}).get("name")))
        done = record is not None and record.terminated_at is not None
        if self.executor is not None and done and not was_done:
            self.executor.seen(obj)


def wait(watch: PodWatch, predicate: Callable[[], bool], timeout: float, what: str) -> None:
    if not watch.wait_for(predicate, timeout, poll=0.2):
        raise RuntimeError(f"{what} did not finish in {timeout:.0f}s")


def now() -> float:
    return time.monotonic()
