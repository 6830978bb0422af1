"""Issue 30, item 8: a step held back by a linked service's health check says so.

The kubelet starts the step's container only once every native sidecar with a startupProbe
has passed it; meanwhile the step is Running with reason WaitingForService, naming the service,
in its status, the STEP column and ``shipway status``.
"""

from __future__ import annotations

from typing import Any

from shipway.cli.statustree import step_detail
from shipway.engine.observe import pod_view
from shipway.engine.outcome import outcome
from shipway.engine.reasons import StepReason
from shipway.models import StepPhase, StepStatus
from tests.unit.builders import NOW, at


def pod(*, db_started: bool | None, main: dict[str, Any], probed: bool = True) -> dict[str, Any]:
    sidecar: dict[str, Any] = {"name": "db", "image": "postgres", "restartPolicy": "Always"}
    if probed:
        sidecar["startupProbe"] = {"exec": {"command": ["pg_isready"]}}
    db_status: dict[str, Any] = {"name": "db", "state": {"running": {"startedAt": at(1)}}}
    if db_started is not None:
        db_status["started"] = db_started
    return {
        "metadata": {
            "name": "demo-x-1-test",
            "uid": "u1",
            "creationTimestamp": at(0),
            "labels": {"shipway.dev/step": "1", "shipway.dev/attempt": "0"},
            "annotations": {"kubectl.kubernetes.io/default-container": "main"},
        },
        "spec": {"nodeName": "n1", "initContainers": [sidecar], "containers": [{"name": "main"}]},
        "status": {
            "phase": "Pending",
            "startTime": at(0),
            "initContainerStatuses": [db_status],
            "containerStatuses": [{"name": "main", "state": main}],
        },
    }


INITIALIZING = {"waiting": {"reason": "PodInitializing"}}


def test_a_step_waiting_for_a_health_check_names_the_service() -> None:
    view = pod_view(pod(db_started=False, main=INITIALIZING))
    assert view is not None
    result = outcome(view, NOW)
    assert result.phase == StepPhase.RUNNING
    assert result.reason == StepReason.WAITING_FOR_SERVICE
    assert result.message == "waiting for service db to become healthy"


def test_once_the_check_passed_the_step_just_runs() -> None:
    for main in (INITIALIZING, {"running": {"startedAt": at(3)}}):
        view = pod_view(pod(db_started=True, main=main))
        assert view is not None
        assert outcome(view, NOW).reason is None


def test_a_service_without_a_health_check_is_not_waited_for() -> None:
    view = pod_view(pod(db_started=False, main=INITIALIZING, probed=False))
    assert view is not None
    assert outcome(view, NOW).reason is None


def test_status_shows_what_it_waits_for() -> None:
    step = StepStatus(
        id="1",
        name="test",
        service="app",
        phase=StepPhase.RUNNING,
        reason=StepReason.WAITING_FOR_SERVICE,
        message="waiting for service db to become healthy",
    )
    assert step_detail(step) == "waiting for service db to become healthy"
