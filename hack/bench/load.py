"""Many pipelines on fake nodes: their claims, their submission, and what the watches saw.

Claims are created and bound by the benchmark before the clock starts. Left to the
controller-manager, binding 1000 claims takes minutes (three writes per claim at its default
20 requests/s), which would measure the controller-manager rather than Shipway. Each claim is
pre-bound to a ``local`` PersistentVolume whose node affinity names the fake nodes' pool, so
it can only ever be used there; the operator's own create of the claim then answers
AlreadyExists (and still counts as a write it made).
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kubernetes.client.exceptions import ApiException

from bench.kube import BENCH_LABEL, Kube
from bench.overhead import pipeline_body
from bench.procs import POOL_LABEL
from bench.watch import PipelineRecord, PipelineWatch, PodRecord, PodWatch
from shipway.engine.objects import Manifest

STORAGE_CLASS = "shipway-bench-static"
"""No StorageClass of that name exists: only the benchmark's own volumes match it."""
BIND_COMPLETED = "pv.kubernetes.io/bind-completed"


def pipeline_names(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-{i:04d}" for i in range(count)]


def _volume(run_id: str, name: str, namespace: str, claim: str, *, uid: str) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name, "labels": {BENCH_LABEL: run_id}},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": STORAGE_CLASS,
            "claimRef": {"namespace": namespace, "name": claim, "uid": uid},
            "local": {"path": "/nonexistent/shipway-bench"},
            "nodeAffinity": {
                "required": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": POOL_LABEL, "operator": "In", "values": [run_id]}
                            ]
                        }
                    ]
                }
            },
        },
    }


def claim_name(pipeline: str) -> str:
    return f"{pipeline}-workspace"


def prepare_claims(kube: Kube, run_id: str, namespace: str, pipelines: Iterable[str]) -> None:
    """One bound claim per pipeline: claim (pre-bound by name), volume (bound by UID), statuses."""

    def one(item: Manifest) -> None:
        pipeline = item["pipeline"]
        name = claim_name(pipeline)
        volume_name = f"bench-{run_id}-{namespace[-12:]}-{pipeline}"[:253]
        claim = {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {
                "name": name,
                "labels": {"shipway.dev/pipeline": pipeline, BENCH_LABEL: run_id},
            },
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
                "storageClassName": STORAGE_CLASS,
                "volumeName": volume_name,
            },
        }
        created = kube.list_json(
            kube.core.create_namespaced_persistent_volume_claim, namespace, claim
        )
        uid = created["metadata"]["uid"]
        kube.core.create_persistent_volume(
            _volume(run_id, volume_name, namespace, name, uid=uid), _preload_content=False
        )
        kube.core.patch_persistent_volume_status(
            volume_name, {"status": {"phase": "Bound"}}, _preload_content=False
        )
        kube.core.patch_namespaced_persistent_volume_claim(
            name,
            namespace,
            {"metadata": {"annotations": {BIND_COMPLETED: "yes"}}},
            _preload_content=False,
        )
        kube.core.patch_namespaced_persistent_volume_claim_status(
            name,
            namespace,
            {
                "status": {
                    "phase": "Bound",
                    "accessModes": ["ReadWriteOnce"],
                    "capacity": {"storage": "1Gi"},
                }
            },
            _preload_content=False,
        )

    kube.parallel(one, ({"pipeline": p} for p in pipelines))


def with_volumes() -> bool:
    """``BENCH_VOLUMES=1``: the steps mount a workspace, so each pipeline has a claim.

    Off by default: the figures are for no-op steps, as raw pods would run them. On, the
    benchmark binds one static volume per pipeline first (kwok nodes provision no storage).
    """
    return os.environ.get("BENCH_VOLUMES", "").strip() not in ("", "0")


def bench_pipeline(name: str, steps: int) -> Manifest:
    if with_volumes():
        # The claim is the one prepare_claims bound beforehand: reused by name.
        return pipeline_body(name, steps, {"claimName": claim_name(name)})
    return pipeline_body(name, steps)


def prepare_storage(kube: Kube, run_id: str, namespace: str, pipelines: Iterable[str]) -> None:
    """The pipelines' claims, bound, when they have any (``BENCH_VOLUMES``)."""
    if with_volumes():
        prepare_claims(kube, run_id, namespace, pipelines)


def submit(kube: Kube, namespace: str, names: list[str], steps: int) -> None:
    kube.parallel(
        lambda body: kube.create_pipeline(namespace, body),
        (bench_pipeline(name, steps) for name in names),
    )


def release_storage(kube: Kube, run_id: str, namespace: str | None) -> None:
    """Finish deleting claims and volumes without waiting for the controller-manager.

    Its protection controllers remove the ``kubernetes.io/pvc-protection`` and
    ``pv-protection`` finalizers at 20 requests/s, and put them back on objects not being
    deleted; so the finalizers of claims and volumes already being deleted are dropped here.
    The volumes of ``namespace`` (with None, every volume of the run) are deleted first.
    """

    def unprotect_claim(item: Manifest) -> None:
        assert namespace is not None
        try:
            kube.core.patch_namespaced_persistent_volume_claim(
                item["metadata"]["name"],
                namespace,
                {"metadata": {"finalizers": None}},
                _preload_content=False,
            )
        except ApiException as exc:
            if exc.status != 404:
                raise

    def unprotect_volume(item: Manifest) -> None:
        try:
            kube.core.patch_persistent_volume(
                item["metadata"]["name"], {"metadata": {"finalizers": None}}, _preload_content=False
            )
        except ApiException as exc:
            if exc.status != 404:
                raise

    def delete_volume(item: Manifest) -> None:
        try:
            kube.core.delete_persistent_volume(item["metadata"]["name"], _preload_content=False)
        except ApiException as exc:
            if exc.status != 404:
                raise

    def terminating(items: list[Manifest]) -> list[Manifest]:
        return [
            i
            for i in items
            if i["metadata"].get("deletionTimestamp") and i["metadata"].get("finalizers")
        ]

    if namespace:
        claims = kube.list_json(kube.core.list_namespaced_persistent_volume_claim, namespace)
        kube.parallel(unprotect_claim, terminating(claims["items"]))

    def volumes() -> list[Manifest]:
        items = kube.list_json(
            kube.core.list_persistent_volume, label_selector=f"{BENCH_LABEL}={run_id}"
        )["items"]
        return [
            v
            for v in items
            if namespace is None or (v["spec"].get("claimRef") or {}).get("namespace") == namespace
        ]

    kube.parallel(
        delete_volume, [v for v in volumes() if not v["metadata"].get("deletionTimestamp")]
    )
    kube.parallel(unprotect_volume, terminating(volumes()))


def delete_namespace(kube: Kube, run_id: str, namespace: str, timeout: float = 300) -> float:
    """Delete a benchmark namespace and its volumes; seconds it took (bounded)."""
    started = time.monotonic()
    try:
        kube.core.delete_namespace(namespace, _preload_content=False)
    except ApiException as exc:
        if exc.status != 404:
            raise
    while time.monotonic() - started < timeout:
        try:
            kube.core.read_namespace(namespace, _preload_content=False)
        except ApiException as exc:
            if exc.status == 404:
                break
            raise
        release_storage(kube, run_id, namespace)
        time.sleep(2)
    release_storage(kube, run_id, namespace)
    return time.monotonic() - started


@dataclass
class Seen:
    """What the watches saw of one load, copied under their locks."""

    pods: list[PodRecord]
    finished: dict[str, float | None]
    phases: dict[str, str | None]
    pipelines: list[PipelineRecord]

    @classmethod
    def take(cls, pods: PodWatch, pipelines: PipelineWatch) -> Seen:
        with pods.lock:
            records = list(pods.pods.values())
        with pipelines.lock:
            finished = {n: p.finished_at for n, p in pipelines.pipelines.items()}
            phases = {n: p.phase for n, p in pipelines.pipelines.items()}
            everything = list(pipelines.pipelines.values())
        return cls(records, finished, phases, everything)

    def by_pipeline(self) -> dict[str, list[PodRecord]]:
        grouped: dict[str, list[PodRecord]] = {}
        for record in self.pods:
            if record.pipeline:
                grouped.setdefault(record.pipeline, []).append(record)
        for records in grouped.values():
            records.sort(key=lambda r: (int(r.step or 0), r.name))
        return grouped

    def gaps(self) -> list[float]:
        result = []
        for records in self.by_pipeline().values():
            for before, after in itertools.pairwise(records):
                if before.terminated_at is not None and after.added_at is not None:
                    result.append(after.added_at - before.terminated_at)
        return result

    def duplicates(self) -> dict[str, Any]:
        """Pods created more than once under one name, and steps with more than one pod."""
        recreated = sorted(r.name for r in self.pods if len(r.uids) > 1)
        per_step: dict[tuple[str, str], list[str]] = {}
        for record in self.pods:
            if record.pipeline and record.step:
                per_step.setdefault((record.pipeline, record.step), []).append(record.name)
        several = sorted(f"{p}/{s}" for (p, s), names in per_step.items() if len(names) > 1)
        return {"pods_added_twice": recreated, "steps_with_several_pods": several}
