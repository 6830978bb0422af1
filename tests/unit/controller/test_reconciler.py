"""The shell around the planner, against an in-memory stand-in for the API server."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from shipway.controller.callpool import Priority
from shipway.controller.kube import KubeError
from shipway.controller.reconciler import Reconciler
from shipway.controller.reconciler.carry import CompileCache, compiled_spec
from shipway.models import PipelinePhase, PipelineStatus
from shipway.models.status import SourceStatus
from tests.unit.builders import NOW, WALKTHROUGH
from tests.unit.fakekube import KEY, FakeKube, snapshot


async def _drive(reconciler: Reconciler, kube: FakeKube, exit_codes: dict[str, int]) -> None:
    for _ in range(10):
        await reconciler.reconcile(snapshot(kube), kube.views(), KEY)
        for name, pod in kube.pods.items():
            if pod["status"].get("phase") == "Pending" and name in exit_codes:
                kube.finish(name, exit_codes[name])
        await asyncio.gather(*reconciler.background)


def _run_walkthrough() -> tuple[Reconciler, FakeKube]:
    """Both walkthrough steps succeed; the pipeline ends Succeeded."""
    kube = FakeKube()
    reconciler = Reconciler(kube, clock=lambda: NOW)
    codes = {"demo-4a49a-1-write-artifact": 0, "demo-4a49a-2-check-artifact": 0}
    asyncio.run(_drive(reconciler, kube, codes))
    assert kube.status["phase"] == PipelinePhase.SUCCEEDED
    return reconciler, kube


def test_the_walkthrough_costs_one_create_one_patch_and_one_event_per_step() -> None:
    _, kube = _run_walkthrough()
    assert kube.claims == ["demo-4a49a-workspace"]
    creates = [w for w in kube.writes if w.startswith("create pod")]
    assert creates == [
        "create pod demo-4a49a-1-write-artifact",
        "create pod demo-4a49a-2-check-artifact",
    ]
    # first pod, second pod, finished: one patch per step plus one
    assert kube.writes.count("patch status") == 3
    assert [r for r, _ in kube.events] == ["StepSucceeded", "PipelineSucceeded"]


def test_a_field_that_is_gone_is_deleted_from_the_status() -> None:
    """Written as a merge patch: without an explicit null the API server would keep the last
    running step's name in a finished pipeline (the STEP column of kubectl get pipelines)."""
    kube = FakeKube()
    reconciler = Reconciler(kube, clock=lambda: NOW)
    asyncio.run(reconciler.reconcile(snapshot(kube), kube.views(), KEY))
    assert kube.status["currentStep"] == "write artifact"
    codes = {"demo-4a49a-1-write-artifact": 0, "demo-4a49a-2-check-artifact": 0}
    asyncio.run(_drive(reconciler, kube, codes))
    assert kube.status["phase"] == PipelinePhase.SUCCEEDED
    assert "currentStep" not in kube.status


def test_a_restarted_operator_neither_loses_nor_duplicates_a_step() -> None:
    kube = FakeKube()
    asyncio.run(Reconciler(kube, clock=lambda: NOW).reconcile(snapshot(kube), kube.views(), KEY))
    kube.status = {}  # the status patch was lost: the operator died right after the create
    kube.finish("demo-4a49a-1-write-artifact", 0)
    fresh = Reconciler(kube, clock=lambda: NOW)
    asyncio.run(_drive(fresh, kube, {"demo-4a49a-2-check-artifact": 0}))
    creates = [w for w in kube.writes if w.startswith("create pod")]
    assert creates == [
        "create pod demo-4a49a-1-write-artifact",
        "create pod demo-4a49a-2-check-artifact",
    ]
    assert kube.status["phase"] == PipelinePhase.SUCCEEDED
    # its status was lost: to the new operator it looks like a pipeline not started yet
    assert kube.priorities["demo-4a49a-2-check-artifact"] == Priority.START


def test_started_pipelines_go_before_new_ones_and_resumed_ones_before_all() -> None:
    kube = FakeKube()
    first = Reconciler(kube, clock=lambda: NOW)
    asyncio.run(first.reconcile(snapshot(kube), kube.views(), KEY))
    assert kube.priorities == {"demo-4a49a-1-write-artifact": Priority.START}
    kube.finish("demo-4a49a-1-write-artifact", 0)
    restarted = Reconciler(kube, clock=lambda: NOW)
    asyncio.run(restarted.reconcile(snapshot(kube), kube.views(), KEY))
    assert kube.priorities["demo-4a49a-2-check-artifact"] == Priority.RESUME
    again = FakeKube()
    same = Reconciler(again, clock=lambda: NOW)
    asyncio.run(same.reconcile(snapshot(again), again.views(), KEY))
    again.finish("demo-4a49a-1-write-artifact", 0)
    asyncio.run(same.reconcile(snapshot(again), again.views(), KEY))
    assert again.priorities["demo-4a49a-2-check-artifact"] == Priority.STEP


def test_a_pod_rejected_by_admission_fails_its_step_with_the_api_message() -> None:
    kube = FakeKube()
    kube.reject["demo-4a49a-1-write-artifact"] = KubeError(
        403, "Forbidden", 'pods "x" is forbidden: violates PodSecurity "restricted:latest"'
    )
    reconciler = Reconciler(kube, clock=lambda: NOW)
    asyncio.run(_drive(reconciler, kube, {}))
    assert kube.status["phase"] == PipelinePhase.FAILED
    first = kube.status["steps"][0]
    assert first["reason"] == "PodRejected"
    assert "violates PodSecurity" in first["message"]
    assert kube.status["steps"][1]["phase"] == "Skipped"


def test_transient_api_errors_raise_and_record_nothing() -> None:
    """The work queue tries again later (tests/unit/controller/test_runtime.py); no status is written."""
    kube = FakeKube()
    kube.reject["demo-4a49a-1-write-artifact"] = KubeError(
        503, "ServiceUnavailable", "etcd leader changed"
    )
    reconciler = Reconciler(kube, clock=lambda: NOW)
    with pytest.raises(KubeError, match="etcd leader changed"):
        asyncio.run(reconciler.reconcile(snapshot(kube), [], KEY))
    assert kube.status == {}


def test_an_invalid_spec_fails_without_pods_and_names_the_field() -> None:
    kube = FakeKube()
    bad = {
        **WALKTHROUGH,
        "services": {
            **WALKTHROUGH["services"],
            "demo": {"image": "busybox", "volumes": ["./etc:x"]},
        },
    }
    reconciler = Reconciler(kube, clock=lambda: NOW)
    asyncio.run(reconciler.reconcile(snapshot(kube, bad), [], KEY))
    assert kube.pods == {}
    assert kube.status["phase"] == "Failed"
    assert "spec.services.demo.volumes[0]" in kube.status["message"]
    assert kube.status["conditions"][0]["reason"] == "InvalidSpec"


@pytest.mark.parametrize("deleting", [True, False])
def test_deleted_pipelines_are_forgotten(deleting: bool) -> None:
    kube = FakeKube()
    reconciler = Reconciler(kube, clock=lambda: NOW)
    asyncio.run(reconciler.reconcile(snapshot(kube), [], KEY))
    assert KEY in reconciler.memory
    gone = dataclasses.replace(snapshot(kube), deleting=True) if deleting else None
    asyncio.run(reconciler.reconcile(gone, [], KEY))
    assert KEY not in reconciler.memory


def test_metrics_count_pods_steps_and_pipelines() -> None:
    from prometheus_client import REGISTRY

    def value(name: str, labels: dict[str, str] | None = None) -> float:
        return REGISTRY.get_sample_value(name, labels or {}) or 0.0

    before = (
        value("shipway_step_pods_created_total"),
        value("shipway_steps_finished_total", {"phase": "Succeeded"}),
        value("shipway_pipelines_finished_total", {"phase": "Succeeded"}),
        value("shipway_pipelines_active"),
    )
    kube = FakeKube()
    codes = {"demo-4a49a-1-write-artifact": 0, "demo-4a49a-2-check-artifact": 0}
    asyncio.run(_drive(Reconciler(kube, clock=lambda: NOW), kube, codes))
    after = (
        value("shipway_step_pods_created_total"),
        value("shipway_steps_finished_total", {"phase": "Succeeded"}),
        value("shipway_pipelines_finished_total", {"phase": "Succeeded"}),
        value("shipway_pipelines_active"),
    )
    assert [a - b for a, b in zip(after, before, strict=True)] == [2, 2, 1, 0]
    assert value("shipway_reconcile_seconds_count") > 0


def test_the_node_of_a_read_write_once_workspace_is_written_with_the_next_change() -> None:
    kube = FakeKube()
    reconciler = Reconciler(kube, clock=lambda: NOW)
    asyncio.run(reconciler.reconcile(snapshot(kube), kube.views(), KEY))
    assert kube.writes.count("patch status") == 1
    kube.pods["demo-4a49a-1-write-artifact"]["spec"]["nodeName"] = "node-1"  # scheduled
    asyncio.run(reconciler.reconcile(snapshot(kube), kube.views(), KEY))
    assert kube.writes.count("patch status") == 1
    assert "nodeName" not in kube.status
    kube.finish("demo-4a49a-1-write-artifact", 0)
    asyncio.run(reconciler.reconcile(snapshot(kube), kube.views(), KEY))
    assert kube.writes.count("patch status") == 2
    assert kube.status["nodeName"] == "node-1"
    second = kube.pods["demo-4a49a-2-check-artifact"]["spec"]["affinity"]["nodeAffinity"]
    assert "node-1" in str(second)


def test_a_fresh_operator_pins_to_the_node_the_status_never_recorded() -> None:
    kube = FakeKube()
    asyncio.run(Reconciler(kube, clock=lambda: NOW).reconcile(snapshot(kube), kube.views(), KEY))
    kube.pods["demo-4a49a-1-write-artifact"]["spec"]["nodeName"] = "node-1"
    kube.finish("demo-4a49a-1-write-artifact", 0)
    assert "nodeName" not in kube.status
    fresh = Reconciler(kube, clock=lambda: NOW)
    asyncio.run(fresh.reconcile(snapshot(kube), kube.views(), KEY))
    second = kube.pods["demo-4a49a-2-check-artifact"]["spec"]["affinity"]["nodeAffinity"]
    assert "node-1" in str(second)
    assert kube.status["nodeName"] == "node-1"


def test_a_finished_pipeline_keeps_no_compiled_spec_and_still_reconciles() -> None:
    reconciler, kube = _run_walkthrough()
    assert reconciler.compiled == {}
    writes = len(kube.writes)
    again = asyncio.run(reconciler.reconcile(snapshot(kube), kube.views(), KEY))
    assert again is not None
    assert again.status.phase == PipelinePhase.SUCCEEDED
    assert len(kube.writes) == writes, "a finished pipeline costs no write"


def test_background_work_that_fails_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    reconciler = Reconciler(FakeKube(), clock=lambda: NOW)

    async def broken() -> None:
        raise RuntimeError("boom")

    async def run() -> None:
        reconciler.spawn(broken())
        await asyncio.gather(*reconciler.background, return_exceptions=True)
        await asyncio.sleep(0)

    with caplog.at_level("ERROR", logger="shipway"):
        asyncio.run(run())
    assert "boom" in caplog.text
    assert not reconciler.background


def test_a_spec_is_compiled_once_per_generation_and_build_tag_one_entry_per_pipeline() -> None:
    kube = FakeKube()
    cache: CompileCache = {}
    first = snapshot(kube)
    other = dataclasses.replace(first, uid="uid-2")
    status = PipelineStatus()
    compiled = compiled_spec(cache, first, status)
    assert compiled_spec(cache, first, status) is compiled  # the same generation: kept
    compiled_spec(cache, other, status)
    assert set(cache) == {"uid-1", "uid-2"}
    tagged = status.model_copy(update={"source": SourceStatus(kind="git", branch="main")})
    on_main = compiled_spec(cache, first, tagged)
    assert on_main is not compiled  # the checkout told the branch: compiled for it
    newer = compiled_spec(cache, dataclasses.replace(first, generation=2), tagged)
    assert newer is not on_main
    assert set(cache) == {"uid-1", "uid-2"}  # replaced, never piled up
    assert cache["uid-2"][1] is compiled_spec(cache, other, status)
