"""An in-memory stand-in for the API server, for the reconciler and operator tests."""

from __future__ import annotations

from typing import Any

from shipway.controller.callpool import Priority
from shipway.controller.kube import EventTarget, KubeError, LogRead, PodLogs
from shipway.controller.snapshot import PipelineSnapshot
from shipway.engine.objects import Manifest
from shipway.engine.observe import PodView, pod_view
from shipway.history.logs import cap_log

from .builders import WALKTHROUGH


class FakeKube:
    """Keeps pods, claims, the status and events; counts every write."""

    def __init__(self) -> None:
        self.pods: dict[str, Manifest] = {}
        self.claims: list[str] = []
        self.claim_bodies: dict[str, Manifest] = {}
        self.status: Manifest = {}
        self.events: list[tuple[str, str]] = []
        self.writes: list[str] = []
        self.reject: dict[str, KubeError] = {}
        self.priorities: dict[str, Priority] = {}
        self.secrets: dict[tuple[str, str], Manifest] = {}
        self.logs: dict[tuple[str, str], bytes] = {}
        """(pod, container) → its log, for the archiver."""
        self.log_reads: list[tuple[str, str]] = []
        self.deleted_pipelines: list[str] = []
        self.config_maps: dict[tuple[str, str], Manifest] = {}

    async def create_pod(
        self, namespace: str, manifest: Manifest, priority: Priority = Priority.STEP
    ) -> Manifest | None:
        name = manifest["metadata"]["name"]
        self.priorities[name] = priority
        if name in self.reject:
            raise self.reject[name]
        self.writes.append(f"create pod {name}")
        if name in self.pods:
            return None
        body = {
            **manifest,
            "metadata": {
                **manifest["metadata"],
                "uid": f"uid-{name}",
                "creationTimestamp": "2026-11-27T12:00:00Z",
            },
            "status": {"phase": "Pending"},
        }
        self.pods[name] = body
        return body

    async def get_pod(self, namespace: str, name: str) -> Manifest | None:
        return self.pods.get(name)

    async def create_claim(self, namespace: str, manifest: Manifest) -> bool:
        name = manifest["metadata"]["name"]
        if name in self.reject:
            raise self.reject[name]
        self.writes.append("create claim")
        if name in self.claim_bodies:
            return False
        self.claims.append(name)
        self.claim_bodies[name] = manifest
        return True

    async def get_claim(self, namespace: str, name: str) -> Manifest | None:
        return self.claim_bodies.get(name)

    async def get_secret(self, namespace: str, name: str) -> Manifest | None:
        return self.secrets.get((namespace, name))

    async def create_secret(self, namespace: str, manifest: Manifest) -> None:
        self.writes.append(f"create secret {manifest['metadata']['name']}")
        self.secrets.setdefault((namespace, manifest["metadata"]["name"]), manifest)

    async def delete_secret(self, namespace: str, name: str) -> None:
        self.writes.append(f"delete secret {name}")
        self.secrets.pop((namespace, name), None)

    async def stop_pod(self, namespace: str, name: str) -> None:
        self.writes.append(f"stop {name}")

    async def delete_pod(self, namespace: str, name: str) -> None:
        self.writes.append(f"delete {name}")
        self.pods.pop(name, None)

    async def patch_status(self, namespace: str, name: str, status: Manifest) -> None:
        self.writes.append("patch status")
        self.status = _merged(self.status, status)

    async def emit_event(self, target: EventTarget, type_: str, reason: str, message: str) -> None:
        self.events.append((reason, message))

    async def read_log(self, namespace: str, pod: str, container: str, cap: int) -> LogRead | None:
        self.log_reads.append((pod, container))
        if pod in self.reject:
            raise self.reject[pod]
        if pod not in self.pods:
            return None
        data = self.logs.get((pod, container), b"")
        kept, size, truncated = cap_log([data], cap)
        return LogRead(kept, size, truncated)

    async def read_logs(
        self, pods: list[PodLogs], cap: int
    ) -> list[list[LogRead] | KubeError | None]:
        """As Kube's: each pod's containers in turn, None if it went, its error if one."""
        return [await self._pod_logs(ns, pod, containers, cap) for ns, pod, containers in pods]

    async def _pod_logs(
        self, namespace: str, pod: str, containers: tuple[str, ...], cap: int
    ) -> list[LogRead] | KubeError | None:
        logs = []
        for container in containers:
            try:
                read = await self.read_log(namespace, pod, container, cap)
            except KubeError as exc:
                return exc
            if read is None:
                return None
            logs.append(read)
        return logs

    async def get_config_map(self, namespace: str, name: str) -> Manifest | None:
        return self.config_maps.get((namespace, name))

    async def delete_pipeline(self, namespace: str, name: str, uid: str) -> None:
        self.writes.append(f"delete pipeline {name}")
        self.deleted_pipelines.append(name)

    def finish(self, name: str, code: int) -> None:
        pod = self.pods[name]
        pod["spec"]["nodeName"] = "node-1"
        pod["status"] = {
            "phase": "Succeeded" if code == 0 else "Failed",
            "startTime": "2026-11-27T12:00:00Z",
            "containerStatuses": [
                {
                    "name": pod["spec"]["containers"][0]["name"],
                    "state": {
                        "terminated": {
                            "exitCode": code,
                            "startedAt": "2026-11-27T12:00:01Z",
                            "finishedAt": "2026-11-27T12:00:02Z",
                        }
                    },
                }
            ],
        }

    def views(self) -> list[PodView]:
        return [v for p in self.pods.values() if (v := pod_view(p)) is not None]


def snapshot(kube: FakeKube, spec: dict[str, Any] = WALKTHROUGH) -> PipelineSnapshot:
    return PipelineSnapshot.from_body(
        {
            "metadata": {
                "name": "demo",
                "namespace": "ci",
                "uid": "uid-1",
                "generation": 1,
                "creationTimestamp": "2026-11-27T11:59:00Z",
            },
            "spec": spec,
            "status": kube.status,
        }
    )


KEY = ("ci", "demo")


def _merged(target: Any, patch: Any) -> Any:
    """RFC 7386, as the API server applies a merge patch: null deletes, maps merge."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merged(result.get(key), value)
    return result
