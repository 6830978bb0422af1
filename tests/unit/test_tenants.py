"""Issue 30 in the pure core: a retry's wait is named and bounded, a lost workspace claim
fails the run at once, and a namespace's pods are capped across its pipelines."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from shipway.controller.config import ConfigError, OperatorConfig
from shipway.controller.reconciler import Reconciler
from shipway.engine.claims import (
    ClaimProblem,
    ClaimStore,
    claim_problem,
    claim_view,
    workspace_in_use,
)
from shipway.engine.naming import ANNOTATION_PIPELINE_UID as UID_ANNOTATION
from shipway.engine.observe import PodView
from shipway.engine.planner import Plan, Settings, plan
from shipway.models import PipelinePhase, PipelineStatus, StepPhase

from .builders import NOW, REF, WALKTHROUGH, compiled, pod, spec
from .fakekube import KEY, FakeKube, snapshot

RETRY = spec(
    [
        {"service": "a", "name": "flaky", "command": "x", "retries": 1},
        {"service": "a", "name": "after", "command": "y"},
    ]
)
FIRST = "demo-4a49a-1-flaky"


def run(
    raw: dict[str, Any],
    status: PipelineStatus | None = None,
    pods: list[PodView] | None = None,
    **kw: Any,
) -> Plan:
    return plan(
        REF, compiled(raw), status or PipelineStatus(), pods or [], kw.pop("now", NOW), **kw
    )


def step(status: PipelineStatus, name: str) -> Any:
    return next(s for s in status.steps if s.name == name)


# -- item 5: a retry waiting for an old pod ---------------------------------------------------


def test_a_retry_names_the_pod_it_waits_for_then_gives_up_after_the_grace() -> None:
    settings = Settings(retry_grace=120)
    first = run(RETRY, settings=settings)
    held = pod(FIRST, "1", deleted=True)  # deleted at NOW; a finalizer keeps it
    waiting = run(RETRY, first.status, [held], settings=settings)
    flaky = step(waiting.status, "flaky")
    assert waiting.create == ()
    assert (flaky.phase, flaky.reason) == (StepPhase.RUNNING, "WaitingForRetry")
    assert flaky.message == (
        f"attempt 2 of 2 waits for pod {FIRST!r} of the previous attempt to go "
        "(it is being deleted); gives up after 2m"
    )
    assert [a.reason for a in flaky.attempts] == ["PodDeleted"]
    assert waiting.requeue_after == 120, "looked at again when the grace runs out"
    later = NOW + timedelta(seconds=60)
    still = run(RETRY, waiting.status, [held], settings=settings, now=later)
    assert step(still.status, "flaky").message == flaky.message, "no status write per look"
    assert still.requeue_after == 60
    late = run(RETRY, still.status, [held], settings=settings, now=NOW + timedelta(seconds=121))
    flaky = step(late.status, "flaky")
    assert (flaky.phase, flaky.reason) == (StepPhase.FAILED, "RetryBlocked")
    assert flaky.message.startswith(
        f"attempt 2 of 2 could not start: pod {FIRST!r} of the previous attempt is being "
        "deleted after 2m"
    )
    assert late.status.phase == PipelinePhase.FAILED
    assert step(late.status, "after").phase == StepPhase.SKIPPED
    assert (late.create, late.delete, late.stop) == ((), (), ())
    assert late.requeue_after is None


def test_a_retry_whose_old_pod_goes_in_time_starts_as_before() -> None:
    settings = Settings(retry_grace=120)
    first = run(RETRY, settings=settings)
    waiting = run(RETRY, first.status, [pod(FIRST, "1", deleted=True)], settings=settings)
    gone = run(RETRY, waiting.status, [], settings=settings, now=NOW + timedelta(seconds=100))
    assert [c.name for c in gone.create] == ["demo-4a49a-1-r1-flaky"]
    assert step(gone.status, "flaky").reason == "Retrying"


def test_an_old_pod_that_still_runs_is_waited_for_from_the_end_of_its_attempt() -> None:
    """A pod on a lost node: stopped, but the kubelet that would end it is gone."""
    settings = Settings(retry_grace=30, start_grace=10)
    first = run(RETRY, settings=settings)
    stuck = pod(FIRST, "1", waiting="ImagePullBackOff", created=-60, node="lost")
    failed = run(RETRY, first.status, [stuck], settings=settings)
    flaky = step(failed.status, "flaky")
    assert (flaky.reason, failed.stop) == ("WaitingForRetry", (FIRST,))
    assert "(it still runs)" in flaky.message
    late = run(RETRY, failed.status, [stuck], settings=settings, now=NOW + timedelta(seconds=31))
    assert step(late.status, "flaky").reason == "RetryBlocked"


def test_the_retry_grace_is_an_operator_setting() -> None:
    assert OperatorConfig.from_env({}).settings.retry_grace == 120
    assert OperatorConfig.from_env({"SHIPWAY_RETRY_GRACE": "15s"}).settings.retry_grace == 15
    with pytest.raises(ConfigError, match="SHIPWAY_RETRY_GRACE"):
        OperatorConfig.from_env({"SHIPWAY_RETRY_GRACE": "0"})
    with pytest.raises(ConfigError, match="SHIPWAY_RETRY_GRACE"):
        OperatorConfig.from_env({"SHIPWAY_RETRY_GRACE": "soon"})


# -- item 4: a deleted or lost workspace claim ------------------------------------------------

CLAIM = "demo-4a49a-workspace"
WRITE = "demo-4a49a-1-write-artifact"


def claim_body(
    name: str = CLAIM, *, uid: str = REF.uid, deleting: bool = False, phase: str = "Bound"
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "uid": f"uid-{name}",
        "ownerReferences": [
            {
                "apiVersion": "shipway.dev/v1alpha1",
                "kind": "Pipeline",
                "name": "demo",
                "uid": uid,
                "controller": True,
            }
        ],
    }
    if deleting:
        meta["deletionTimestamp"] = "2026-11-27T12:00:00Z"
        meta["finalizers"] = ["kubernetes.io/pvc-protection"]
    return {"metadata": meta, "status": {"phase": phase}}


def test_a_claim_that_is_gone_being_deleted_or_lost_is_a_problem_naming_it() -> None:
    ours = claim_view(claim_body())
    assert claim_problem(ours, CLAIM, REF.uid, reused=False) is None
    gone = claim_problem(None, CLAIM, REF.uid, reused=False)
    assert gone == ClaimProblem(
        "ClaimLost", f"the workspace claim {CLAIM!r} was deleted while the pipeline ran"
    )
    deleting = claim_problem(claim_view(claim_body(deleting=True)), CLAIM, REF.uid, False)
    assert deleting is not None
    assert (deleting.reason, deleting.message.split(" (")[0]) == (
        "ClaimLost",
        f"the workspace claim {CLAIM!r} is being deleted",
    )
    lost = claim_problem(claim_view(claim_body(phase="Lost")), CLAIM, REF.uid, False)
    assert lost is not None
    assert lost.reason == "ClaimLost"
    assert "lost its volume" in lost.message


def test_a_claim_replaced_by_someone_elses_is_a_name_conflict_unless_named_by_the_spec() -> None:
    other = claim_view(claim_body(uid="uid-of-another-demo"))
    conflict = claim_problem(other, CLAIM, REF.uid, reused=False)
    assert conflict is not None
    assert conflict.reason == "ClaimNameConflict"
    assert "it belongs to Pipeline 'demo'" in conflict.message
    assert claim_problem(other, "shared", REF.uid, reused=True) is None, "the user's to name"
    kept = claim_view({"metadata": {"name": CLAIM, "annotations": {UID_ANNOTATION: REF.uid}}})
    assert claim_problem(kept, CLAIM, REF.uid, reused=False) is None, "kept: no owner, our UID"


def test_a_pipeline_has_used_its_claim_once_a_pod_of_it_exists_or_was_recorded() -> None:
    assert not workspace_in_use(PipelineStatus(), has_pods=False)
    assert workspace_in_use(PipelineStatus(), has_pods=True)
    first = run(WALKTHROUGH)
    assert workspace_in_use(first.status, has_pods=False), "its first pod is recorded"


def test_the_claim_store_wakes_the_pipelines_using_a_claim_when_it_changes() -> None:
    store = ClaimStore()
    key = ("ci", "demo")
    reuser = ("ci", "other")
    store.use(reuser, "shared")
    assert store.replace("ci", [("ci", CLAIM, claim_view(claim_body()))]) == {key}, "its owner"
    assert store.put("ci", CLAIM, claim_view(claim_body())) == set(), "nothing changed"
    assert store.put("ci", "shared", claim_view({"metadata": {"name": "shared"}})) == {reuser}
    assert store.put("ci", CLAIM, claim_view(claim_body(deleting=True))) == {key}
    assert store.get("ci", CLAIM) is not None
    assert store.get("ci", CLAIM).deleting  # type: ignore[union-attr]
    assert store.replace("ci", []) == {key, reuser}, "a relist without them: both gone"
    store.release(reuser)
    assert store.put("ci", "shared", claim_view({"metadata": {"name": "shared"}})) == set()


def reconcile(kube: FakeKube, reconciler: Reconciler) -> Plan | None:
    async def go() -> Plan | None:
        result = await reconciler.reconcile(snapshot(kube), kube.views(), KEY)
        await asyncio.gather(*reconciler.background)
        return result

    return asyncio.run(go())


def test_a_claim_deleted_under_a_running_pipeline_fails_it_at_once_and_stops_its_pods() -> None:
    kube = FakeKube()
    reconciler = Reconciler(kube, clock=lambda: NOW)
    reconcile(kube, reconciler)
    assert kube.claims == [CLAIM]
    assert WRITE in kube.pods
    kube.pods[WRITE]["spec"]["nodeName"] = "node-1"
    kube.pods[WRITE]["status"] = {"phase": "Running", "startTime": "2026-11-27T12:00:00Z"}
    del kube.claim_bodies[CLAIM]
    reconcile(kube, reconciler)
    assert kube.status["phase"] == "Failed"
    assert kube.status["conditions"][0]["reason"] == "ClaimLost"
    assert kube.status["message"] == (
        f"the workspace claim {CLAIM!r} was deleted while the pipeline ran"
    )
    assert f"stop {WRITE}" in kube.writes


def test_a_restarted_operator_never_makes_a_deleted_claim_again_empty() -> None:
    kube = FakeKube()
    reconcile(kube, Reconciler(kube, clock=lambda: NOW))
    kube.finish(WRITE, 0)
    del kube.claim_bodies[CLAIM]
    kube.writes.clear()
    reconcile(kube, Reconciler(kube, clock=lambda: NOW))  # a new process: no memory
    assert "create claim" not in kube.writes
    assert not [w for w in kube.writes if w.startswith("create pod")]
    assert kube.status["conditions"][0]["reason"] == "ClaimLost"


def test_a_claim_seen_being_deleted_by_the_watch_fails_the_pipeline_without_a_read() -> None:
    kube = FakeKube()
    store = ClaimStore()
    reconciler = Reconciler(kube, clock=lambda: NOW, claims=store)
    reconcile(kube, reconciler)
    store.put("ci", CLAIM, claim_view(claim_body(deleting=True)))
    kube.claim_bodies.clear()  # a read would say it is gone: the store is what decides
    reconcile(kube, reconciler)
    assert kube.status["conditions"][0]["reason"] == "ClaimLost"
    assert "is being deleted" in kube.status["message"]
    assert store.put("ci", CLAIM, None) == {KEY}, "its owner, even once released"


def test_a_pipeline_not_started_yet_makes_its_claim_instead_of_calling_it_lost() -> None:
    kube = FakeKube()
    reconcile(kube, Reconciler(kube, clock=lambda: NOW, claims=ClaimStore()))
    assert kube.claims == [CLAIM]
    assert kube.status["phase"] == "Running"
