"""Issue 30 in the pure core: a retry's wait is named and bounded, a lost workspace claim
fails the run at once, and a namespace's pods are capped across its pipelines."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from shipway.controller.config import ConfigError, OperatorConfig
from shipway.controller.reconciler import Reconciler
from shipway.engine.naming import ANNOTATION_PIPELINE_UID as UID_ANNOTATION
from shipway.engine.objects import Key
from shipway.engine.observe import PodView
from shipway.engine.plan.claims import (
    ClaimProblem,
    ClaimStore,
    claim_problem,
    claim_view,
    workspace_in_use,
)
from shipway.engine.plan.planner import Plan, PlanInput, plan
from shipway.engine.podstore import PodStore, pod_entry
from shipway.engine.settings import Settings
from shipway.engine.slots import NamespaceSlots
from shipway.models import PipelinePhase, PipelineStatus, StepPhase
from tests.unit.builders import NOW, REF, WALKTHROUGH, compiled, pod, spec
from tests.unit.fakekube import KEY, FakeKube, snapshot

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
        PlanInput(
            REF, compiled(raw), status or PipelineStatus(), pods or [], kw.pop("now", NOW), **kw
        )
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


# -- item 7: the namespace cap ----------------------------------------------------------------

PARALLEL = spec(
    [{"type": "parallel", "steps": [{"service": "a", "command": f"echo {i}"} for i in range(5)]}]
)


def test_a_pipeline_takes_only_the_namespace_slots_left_and_says_why_the_rest_wait() -> None:
    capped = Settings(max_namespace_pods=4)
    first = run(PARALLEL, settings=capped, namespace_busy=2)
    assert len(first.create) == 2, "4 slots, 2 of them taken by other pipelines"
    held = [s for s in first.status.steps if s.reason == "NamespaceThrottled"]
    assert len(held) == 3
    assert all(s.phase == StepPhase.PENDING for s in held)
    assert held[0].message == (
        "waiting: 4 step pods of namespace 'ci' run at once, the most the operator allows"
    )
    assert first.namespace_held
    assert first.requeue_after is not None
    assert first.requeue_after <= 30, "woken when a slot frees; this is the safety net"
    assert first.status.phase == PipelinePhase.RUNNING
    running = [pod(c.name, c.step_id) for c in first.create]
    same = run(PARALLEL, first.status, running, settings=capped, namespace_busy=2)
    assert same.create == (), "its own two pods count against the cap too"
    freed = run(PARALLEL, first.status, running, settings=capped, namespace_busy=1)
    assert len(freed.create) == 1
    free = run(PARALLEL, settings=Settings(max_namespace_pods=None), namespace_busy=1000)
    assert len(free.create) == 5
    assert not free.namespace_held


def test_the_per_pipeline_cap_still_applies_under_the_namespace_one() -> None:
    both = Settings(max_running_pods=2, max_namespace_pods=10)
    first = run(PARALLEL, settings=both)
    assert len(first.create) == 2
    assert {s.reason for s in first.status.steps if not s.pod} == {"Throttled"}
    assert not first.namespace_held, "not waiting for the namespace"


class Woken(list[Key]):
    def __call__(self, key: Key) -> None:
        self.append(key)


A, B, C = ("ci", "a"), ("ci", "b"), ("ci", "c")


def test_slots_count_the_step_pods_the_watch_shows_and_those_about_to_be_created() -> None:
    clock = [0.0]
    slots = NamespaceSlots(3, clock=lambda: clock[0])
    slots.seen("ci", "a-1", A, pod("a-1", "1"))
    slots.seen("ci", "a-src", A, pod("a-src", "source"))  # a checkout: no slot
    slots.seen("ci", "a-2", A, pod("a-2", "2", phase="Succeeded", exit_code=0))
    slots.seen("ci", "a-3", A, pod("a-3", "3", exit_code=0))  # exited, phase not yet set
    slots.seen("other", "x-1", ("other", "x"), pod("x-1", "1"))
    assert (slots.busy("ci"), slots.others(A), slots.others(B)) == (1, 0, 1)
    slots.expect(B, ["b-1", "b-2"])
    assert (slots.busy("ci"), slots.others(A)) == (3, 2), "counted before the watch shows them"
    slots.seen("ci", "b-1", B, pod("b-1", "1"))
    slots.unexpect("ci", ["b-1", "b-2"])  # b-2 was refused; b-1 exists
    assert slots.busy("ci") == 2
    slots.expect(B, ["b-3"])
    clock[0] = 61
    assert slots.busy("ci") == 2, "an expected pod never shown stops counting"
    slots.seen("ci", "a-1", None, None)
    assert slots.busy("ci") == 1
    assert slots.busy("other") == 1


def test_expected_pods_stop_counting_each_after_its_own_minute_in_every_namespace() -> None:
    clock = [0.0]
    slots = NamespaceSlots(None, clock=lambda: clock[0])
    slots.expect(A, ["a-1"])
    clock[0] = 30
    slots.expect(("other", "x"), ["x-1"])
    slots.expect(B, ["b-1"])
    clock[0] = 45
    slots.seen("ci", "b-1", B, pod("b-1", "1"))  # shown: counts as the watch's from now
    clock[0] = 61
    assert (slots.busy("ci"), slots.busy("other")) == (1, 1), "a-1 expired, x-1 not yet"
    clock[0] = 91
    assert (slots.busy("ci"), slots.busy("other")) == (1, 0), "b-1 stays: the watch shows it"


def test_pipelines_held_by_the_cap_take_turns_and_are_woken_when_a_slot_frees() -> None:
    woken = Woken()
    slots = NamespaceSlots(2, wake=woken)
    for name in ("a-1", "a-2"):
        slots.seen("ci", name, A, pod(name, "1"))
    slots.settle(A, took=2, held=True)  # a wants more
    slots.settle(B, took=0, held=True)  # b arrived and waits behind a
    assert slots.held("ci") == [A, B]
    assert (slots.others(A), slots.others(B), slots.others(C)) == (0, 3, 4)
    slots.seen("ci", "a-1", A, pod("a-1", "1", phase="Succeeded", exit_code=0))
    assert woken == [A], "the first in line"
    slots.settle(A, took=1, held=True)  # a took it and still wants more: to the back
    assert slots.held("ci") == [B, A]
    assert (slots.others(A), slots.others(B)) == (1, 1), "b is ahead of a; a-2 is a's"
    slots.seen("ci", "a-3", A, pod("a-3", "1"))  # the slot a took
    woken.clear()
    slots.seen("ci", "a-2", A, pod("a-2", "1", phase="Failed", exit_code=1))
    assert woken == [B], "one slot free: the first in line"
    assert slots.others(B) == 1, "a's running pod; the freed slot is b's"
    assert slots.others(A) == 1, "b's place ahead: with its own running pod a is at the cap"
    slots.settle(B, took=0, held=False)  # b needed nothing after all: the next one is woken
    assert woken == [B, A]
    slots.forget(A)
    assert slots.held("ci") == []


def test_the_namespace_cap_holds_across_pipelines_reconciled_at_once() -> None:
    kube = FakeKube()
    slots = NamespaceSlots(3)
    store = PodStore(slots)
    reconciler = Reconciler(kube, Settings(max_namespace_pods=3), clock=lambda: NOW, slots=slots)
    second = "uid-2"

    def snap(name: str, uid: str) -> Any:
        base = snapshot(kube, PARALLEL)
        return replace(base, name=name, uid=uid, status_json="{}")

    async def both() -> None:
        await asyncio.gather(
            reconciler.reconcile(snap("demo", REF.uid), [], ("ci", "demo")),
            reconciler.reconcile(snap("other", second), [], ("ci", "other")),
        )

    asyncio.run(both())
    assert len(kube.pods) == 3, "never more than the cap, whoever plans first"
    for name, body in kube.pods.items():
        entry = pod_entry(body)
        assert entry is not None
        store.put("ci", name, entry)
    assert slots.busy("ci") == 3
    assert OperatorConfig.from_env({}).settings.max_namespace_pods == 50
    assert OperatorConfig.from_env({"SHIPWAY_MAX_NAMESPACE_PODS": "0"}).max_namespace_pods is None
    with pytest.raises(ConfigError, match="SHIPWAY_MAX_NAMESPACE_PODS must be a whole number"):
        OperatorConfig.from_env({"SHIPWAY_MAX_NAMESPACE_PODS": "-1"})


def test_a_held_pipeline_that_ends_leaves_the_line() -> None:
    kube = FakeKube()
    slots = NamespaceSlots(2)
    for name in ("x-1", "x-2"):
        slots.seen("ci", name, ("ci", "x"), pod(name, "1", owner_uid="uid-x"))
    reconciler = Reconciler(kube, Settings(max_namespace_pods=2), clock=lambda: NOW, slots=slots)
    reconcile_spec(kube, reconciler, PARALLEL)
    assert kube.pods == {}
    assert slots.held("ci") == [KEY]
    assert kube.status["steps"][0]["reason"] == "NamespaceThrottled"
    reconcile_spec(kube, reconciler, {**PARALLEL, "cancel": True}, generation=2)
    assert kube.status["phase"] == "Cancelled"
    assert slots.held("ci") == [], "a place in line it no longer needs would hold others up"


def test_a_held_pipeline_failed_by_an_error_leaves_the_line_too() -> None:
    kube = FakeKube()
    slots = NamespaceSlots(2)
    for name in ("x-1", "x-2"):
        slots.seen("ci", name, ("ci", "x"), pod(name, "1", owner_uid="uid-x"))
    reconciler = Reconciler(kube, Settings(max_namespace_pods=2), clock=lambda: NOW, slots=slots)
    patch = kube.patch_status
    broken = [True]

    async def patch_once_broken(namespace: str, name: str, status: Any) -> None:
        if broken.pop() if broken else False:
            raise RuntimeError("a bug")
        await patch(namespace, name, status)

    kube.patch_status = patch_once_broken  # type: ignore[method-assign]
    reconcile_spec(kube, reconciler, PARALLEL)
    assert kube.status["conditions"][0]["reason"] == "InternalError"
    assert slots.held("ci") == []


def reconcile_spec(
    kube: FakeKube, reconciler: Reconciler, raw: dict[str, Any], generation: int = 1
) -> None:
    async def go() -> None:
        snap = replace(snapshot(kube, raw), generation=generation)
        await reconciler.reconcile(snap, kube.views(), KEY)
        await asyncio.gather(*reconciler.background)

    asyncio.run(go())
