"""Small builders for realistic Pipeline specs and pod objects in unit tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from shipway.compiler.pipeline import CompiledPipeline, compile_pipeline
from shipway.engine.objects import PipelineRef
from shipway.engine.observe import PodView, format_time, pod_view

NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
REF = PipelineRef("demo", "ci", "uid-1", 1, "2026-11-27T11:59:00Z")

WALKTHROUGH: dict[str, Any] = {
    "services": {
        "demo": {"image": "busybox:1.36", "volumes": ["./tmp:/app"]},
        "volumes_test": {"image": "busybox:1.36", "volumes_from": ["demo"]},
    },
    "steps": [
        {
            "name": "write artifact",
            "service": "demo",
            "command": "sh -c 'echo built > /app/artifact.txt'",
        },
        {
            "name": "check artifact",
            "service": "volumes_test",
            "command": "test -s /app/artifact.txt",
        },
    ],
}


def spec(steps: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """A spec with services a, b, c (busybox) and the given steps."""
    services = {name: {"image": "busybox:1.36"} for name in ("a", "b", "c")}
    return {"services": services, "steps": steps, **extra}


def compiled(raw: dict[str, Any]) -> CompiledPipeline:
    return compile_pipeline(raw)


def at(seconds: float) -> str:
    return format_time(NOW + timedelta(seconds=seconds))


def pod(
    name: str,
    step_id: str,
    attempt: int = 0,
    *,
    phase: str = "Running",
    exit_code: int | None = None,
    waiting: str | None = None,
    created: float = -30,
    node: str | None = "node-1",
    deleted: bool = False,
    reason: str | None = None,
    disruption: str | None = None,
    deadline: int | None = None,
    message: str | None = None,
    owner_uid: str = REF.uid,
    unschedulable: str | None = None,
    waiting_message: str | None = None,
) -> PodView:
    """A step pod as the API server would show it, summarised by the real pod_view."""
    if waiting is not None:
        detail = waiting_message or f"{waiting} detail"
        state: dict[str, Any] = {"waiting": {"reason": waiting, "message": detail}}
    elif exit_code is not None:
        state = {
            "terminated": {
                "exitCode": exit_code,
                "reason": "Completed" if exit_code == 0 else "Error",
                "startedAt": at(created + 1),
                "finishedAt": at(created + 5),
                "message": message,
            }
        }
    else:
        state = {"running": {"startedAt": at(created + 1)}}
    meta: dict[str, Any] = {
        "name": name,
        "uid": f"uid-{name}",
        "creationTimestamp": at(created),
        "labels": {
            "shipway.dev/pipeline": "demo",
            "shipway.dev/step": step_id,
            "shipway.dev/attempt": str(attempt),
        },
        "annotations": {"kubectl.kubernetes.io/default-container": "main"},
        "ownerReferences": [
            {
                "apiVersion": "shipway.dev/v1alpha1",
                "kind": "Pipeline",
                "name": REF.name,
                "uid": owner_uid,
                "controller": True,
            }
        ],
    }
    if deleted:
        meta["deletionTimestamp"] = at(0)
        meta["deletionGracePeriodSeconds"] = 0
    conditions = []
    if unschedulable:
        conditions.append(
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": unschedulable,
            }
        )
    if disruption:
        conditions.append({"type": "DisruptionTarget", "status": "True", "reason": disruption})
    body = {
        "metadata": meta,
        "spec": {"nodeName": node, "activeDeadlineSeconds": deadline},
        "status": {
            "phase": phase,
            "reason": reason,
            "startTime": at(created) if node else None,
            "conditions": conditions,
            "containerStatuses": [{"name": "main", "state": state}],
        },
    }
    view = pod_view(body)
    assert view is not None
    return view
